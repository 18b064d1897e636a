//! A fault-injecting TCP proxy in front of a real server: failed, slowed or lost
//! requests, and S3 reads or uploads that fail from the Nth on.

use super::*;

#[derive(Clone)]
enum Fault {
    FailFirst {
        pattern: String,
        failures: usize,
    },
    SlowBody {
        every: usize,
        delay: Duration,
    },
    /// Every request whose request line contains `pattern` fails once
    /// [`FaultProxy::arm`] was called.
    FailWhenArmed {
        pattern: String,
    },
    /// The first `failures` requests whose request line contains `pattern` reach the
    /// server, which acts on them, but their replies are dropped.
    LoseReply {
        pattern: String,
        failures: usize,
    },
    /// While armed, the `nth` S3 request of kind `op` and every later one fail.
    S3 {
        op: S3Op,
        nth: usize,
    },
    /// Nothing fails: every request is forwarded (and recorded, as always).
    None,
}

/// The kinds of S3 request a [`FaultProxy::s3`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Op {
    /// A ranged read of an object (`GET` with a `Range` header): Parquet reads.
    ReadRange,
    /// Any read of an object's bytes (`GET` of a key, ranged or not; not a listing).
    Read,
    /// An upload: `PUT` of an object or of a multipart part (not a server-side copy).
    Upload,
}

impl S3Op {
    fn matches(self, request_line: &str, head: &str) -> bool {
        let lower = head.to_ascii_lowercase();
        let target = request_line.split_whitespace().nth(1).unwrap_or_default();
        let object = target.trim_start_matches('/').contains('/');
        match self {
            S3Op::ReadRange => {
                request_line.starts_with("GET ") && object && lower.contains("\r\nrange:")
            }
            S3Op::Read => request_line.starts_with("GET ") && object,
            S3Op::Upload => {
                request_line.starts_with("PUT ")
                    && object
                    && !lower.contains("\r\nx-amz-copy-source:")
            }
        }
    }
}

/// An HTTP proxy in front of a server that answers `500` to the first `failures`
/// requests whose request line contains `pattern`, and forwards everything else.
pub struct FaultProxy {
    pub uri: String,
    pub injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, pattern: &str, failures: usize) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::FailFirst {
                pattern: pattern.into(),
                failures,
            },
        )
    }

    /// A proxy that forwards every request, but for every `every`-th one with a body sends the
    /// upstream the head at once and the body only after `delay`: a slow client as the
    /// server sees it (its request timer and its concurrency slot both run meanwhile).
    /// `injected` counts the slowed requests.
    pub fn slow_bodies(upstream: &str, every: usize, delay: Duration) -> FaultProxy {
        FaultProxy::with_fault(upstream, Fault::SlowBody { every, delay })
    }

    /// A proxy that forwards everything until [`FaultProxy::arm`], then answers `500` to
    /// every request whose request line contains `pattern` (a release whose inference
    /// breaks under traffic while its health checks still pass).
    pub fn armable(upstream: &str, pattern: &str) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::FailWhenArmed {
                pattern: pattern.into(),
            },
        )
    }

    /// From now on, [`FaultProxy::armable`]'s proxy fails every request.
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A proxy in front of an S3-protocol server that, from the start, answers
    /// `503 SlowDown` to the `nth` request of kind `op` (1-based) and to every later
    /// one, so the client's own retries give up too; everything else is forwarded.
    /// [`FaultProxy::disarm`] ends the outage (what an Argo retry finds).
    pub fn s3(upstream: &str, op: S3Op, nth: usize) -> FaultProxy {
        let proxy = FaultProxy::with_fault(upstream, Fault::S3 { op, nth });
        proxy.arm();
        proxy
    }

    /// A proxy that forwards every request, but for the first `failures` whose request
    /// line contains `pattern` closes the connection once the server has answered,
    /// without passing the answer on: a create call that timed out after the server
    /// completed it, as the client sees it. `injected` counts the lost replies.
    pub fn lose_replies(upstream: &str, pattern: &str, failures: usize) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::LoseReply {
                pattern: pattern.into(),
                failures,
            },
        )
    }

    /// A proxy that fails nothing: it forwards every request and records its request
    /// line ([`FaultProxy::requests`]), to count what a client asked a server for.
    pub fn recording(upstream: &str) -> FaultProxy {
        FaultProxy::with_fault(upstream, Fault::None)
    }

    /// The request line (`GET /bucket/key HTTP/1.1`) of every request received so far,
    /// in arrival order, whatever the proxy did with it.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forwards everything from now on.
    pub fn disarm(&self) {
        self.armed.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn with_fault(upstream: &str, fault: Fault) -> FaultProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let uri = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let injected = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = injected.clone();
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let armed_here = armed.clone();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests_here = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, fault, counter, seen, armed, log) = (
                    upstream.clone(),
                    fault.clone(),
                    counter.clone(),
                    seen.clone(),
                    armed_here.clone(),
                    requests_here.clone(),
                );
                std::thread::spawn(move || {
                    let mut client = stream;
                    // Read the head, then the body by Content-Length.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let request_line = head.lines().next().unwrap_or_default().to_string();
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(request_line.clone());
                    let lose_reply = match &fault {
                        Fault::LoseReply { pattern, failures } => {
                            let lose = request_line.contains(pattern.as_str())
                                && seen.fetch_add(1, Ordering::SeqCst) < *failures;
                            if lose {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                            lose
                        }
                        _ => false,
                    };
                    // `None`: answer 500 here; `Some(d)`: forward, the body `d` late.
                    let stall = match &fault {
                        Fault::LoseReply { .. } | Fault::None => Some(Duration::ZERO),
                        Fault::FailFirst { pattern, failures } => (!(request_line
                            .contains(pattern.as_str())
                            && counter.fetch_add(1, Ordering::SeqCst) < *failures))
                            .then_some(Duration::ZERO),
                        Fault::FailWhenArmed { pattern } => {
                            if armed.load(Ordering::SeqCst)
                                && request_line.contains(pattern.as_str())
                            {
                                counter.fetch_add(1, Ordering::SeqCst);
                                None
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                        Fault::S3 { op, nth } => {
                            if armed.load(Ordering::SeqCst)
                                && op.matches(&request_line, &head)
                                && seen.fetch_add(1, Ordering::SeqCst) + 1 >= *nth
                            {
                                counter.fetch_add(1, Ordering::SeqCst);
                                None
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                        // A request without a body (a health check) cannot be slow in it.
                        Fault::SlowBody { .. } if length == 0 => Some(Duration::ZERO),
                        Fault::SlowBody { every, delay } => {
                            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                            if n.is_multiple_of(*every) {
                                counter.fetch_add(1, Ordering::SeqCst);
                                Some(*delay)
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                    };
                    let Some(stall) = stall else {
                        if let Fault::S3 { .. } = fault {
                            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>";
                            let _ = write!(
                                client,
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            return;
                        }
                        let body = r#"{"error_code": "INTERNAL_ERROR", "message": "injected by the test proxy"}"#;
                        let _ = write!(
                            client,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    };
                    // Forward with `Connection: close`, so the reply ends at EOF.
                    let mut forwarded = String::new();
                    for line in head[..head_end].split("\r\n").filter(|l| !l.is_empty()) {
                        if !line.to_ascii_lowercase().starts_with("connection:") {
                            forwarded.push_str(line);
                            forwarded.push_str("\r\n");
                        }
                    }
                    forwarded.push_str("Connection: close\r\n\r\n");
                    let Ok(mut server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    let _ = server.write_all(forwarded.as_bytes());
                    if !stall.is_zero() {
                        let _ = server.flush();
                        std::thread::sleep(stall);
                    }
                    let _ = server.write_all(&buf[head_end..]);
                    let mut reply = Vec::new();
                    let _ = server.read_to_end(&mut reply);
                    if lose_reply {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = client.write_all(&reply);
                });
            }
        });
        FaultProxy {
            uri,
            injected,
            armed,
            requests,
        }
    }
}
