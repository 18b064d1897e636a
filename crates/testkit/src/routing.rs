//! HAProxy as the canary router on loopback: one frontend, a backend with a `stable`
//! and a `canary` server (health-checked on `/v2/health/ready`), the runtime API on a
//! TCP port, and HAProxy's own Prometheus exporter.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http_request, workspace_root};

/// `scripts/haproxy.sh` (Debian's HAProxy under `.cache/tools/haproxy`, from `make test-deps`).
pub fn haproxy_bin() -> PathBuf {
    workspace_root().join("scripts/haproxy.sh")
}

/// A running HAProxy. Stopped when dropped.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
    /// Where clients send requests (`host:port`).
    pub url: String,
    /// The runtime API (`host:port`).
    pub admin: String,
    /// HAProxy's Prometheus exporter (`host:port`, path `/metrics`).
    pub metrics: String,
}

impl Haproxy {
    /// HAProxy in front of `stable` and `canary` (`host:port`), with `canary_weight` of
    /// 100 to the canary.
    pub fn start(stable: &str, canary: &str, canary_weight: u8) -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, admin, metrics) = (free_port(), free_port(), free_port());
        let config = format!(
            "global\n  stats socket ipv4@127.0.0.1:{admin} level admin\n  maxconn 2000\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             frontend kiln\n  bind 127.0.0.1:{port}\n  default_backend kiln\n\
             frontend metrics\n  bind 127.0.0.1:{metrics}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n\
             backend kiln\n  balance roundrobin\n  option httpchk GET /v2/health/ready\n\
             \x20 server stable {stable} weight {} check inter 500ms fall 2 rise 1\n\
             \x20 server canary {canary} weight {canary_weight} check inter 500ms fall 2 rise 1\n",
            100 - canary_weight
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let log = dir.path().join("haproxy.log");
        let child = Command::new(haproxy_bin())
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start haproxy");
        let server = Haproxy {
            child,
            _dir: dir,
            url: format!("127.0.0.1:{port}"),
            admin: format!("127.0.0.1:{admin}"),
            metrics: format!("127.0.0.1:{metrics}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_request(
            &server.metrics,
            "GET",
            "/metrics",
            b"",
            Duration::from_secs(2),
        )
        .map(|r| r.0)
            != Some(200)
        {
            assert!(
                Instant::now() < deadline,
                "haproxy did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// One runtime API command's answer.
    pub fn command(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(&self.admin).expect("haproxy runtime API");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    /// A server's current weight.
    pub fn weight(&self, server: &str) -> u32 {
        let answer = self.command(&format!("get weight kiln/{server}"));
        answer
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("get weight kiln/{server}: {answer}"))
    }

    /// A `show stat` field of a proxy row (`kiln`, `FRONTEND`: `req_tot`, …).
    pub fn stat(&self, proxy: &str, server: &str, field: &str) -> String {
        let csv = self.command("show stat");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .expect("show stat header")
            .split(',')
            .collect();
        let column = header
            .iter()
            .position(|h| *h == field)
            .unwrap_or_else(|| panic!("no column {field}"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&proxy) && f.get(1) == Some(&server))
            .and_then(|f| f.get(column).map(|v| v.to_string()))
            .unwrap_or_else(|| panic!("no {proxy}/{server} in show stat"))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
