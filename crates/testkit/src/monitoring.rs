//! The monitoring stack as real processes on loopback: Prometheus, Alertmanager, their
//! command-line checkers, oha for load, and a webhook receiver that records what
//! Alertmanager delivers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http_request, tool, url_encode};

/// Debian's `prometheus` binary, unpacked under `.cache/tools` by `make test-deps`.
pub fn prometheus_bin() -> PathBuf {
    tool(
        "KILN_TEST_PROMETHEUS",
        ".cache/tools/prometheus/usr/bin/prometheus",
        "make test-deps",
    )
}

/// A real Prometheus on loopback with the given scrape targets (`host:port`), scraping
/// every `interval`. Stopped when dropped.
pub struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus with one job per `(job, targets)` and extra config `rules`
    /// (rule file paths), and waits until it is ready.
    pub fn start(jobs: &[(&str, Vec<String>)], interval: &str, rules: &[PathBuf]) -> Prometheus {
        Prometheus::start_alerting(jobs, interval, rules, None)
    }

    /// As [`Prometheus::start`], sending alerts to the Alertmanager at `alertmanager`
    /// (`host:port`) when given.
    pub fn start_alerting(
        jobs: &[(&str, Vec<String>)],
        interval: &str,
        rules: &[PathBuf],
        alertmanager: Option<&str>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config =
            format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n");
        if let Some(target) = alertmanager {
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{target}']\n"
            ));
        }
        if !rules.is_empty() {
            config.push_str("rule_files:\n");
            for rule in rules {
                config.push_str(&format!("  - {}\n", rule.display()));
            }
        }
        config.push_str("scrape_configs:\n");
        for (job, targets) in jobs {
            let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let server = Prometheus {
            child,
            _dir: dir,
            url: format!("127.0.0.1:{port}"),
        };
        wait_ready(&server.url, "prometheus");
        server
    }

    /// An instant query through the HTTP API: the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let Some((200, body)) = http_request(&self.url, "GET", &path, b"", Duration::from_secs(10))
        else {
            panic!("prometheus query failed: {promql}");
        };
        let value: serde_json::Value =
            serde_json::from_str(&body).expect("prometheus answers JSON");
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 30 s for `GET /-/ready` (Prometheus's and Alertmanager's) to answer 200.
fn wait_ready(addr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_request(addr, "GET", "/-/ready", b"", Duration::from_secs(2)).map(|r| r.0)
        != Some(200)
    {
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// promtool, from the same Debian package as Prometheus.
pub fn promtool_bin() -> PathBuf {
    prometheus_bin().with_file_name("promtool")
}

/// Debian's `prometheus-alertmanager`, unpacked under `.cache/tools` by `make test-deps`.
pub fn alertmanager_bin() -> PathBuf {
    tool(
        "KILN_TEST_ALERTMANAGER",
        ".cache/tools/alertmanager/usr/bin/prometheus-alertmanager",
        "make test-deps",
    )
}

/// amtool, from the same package as Alertmanager.
pub fn amtool_bin() -> PathBuf {
    alertmanager_bin().with_file_name("amtool")
}

/// oha (open-loop HTTP load), installed under `.cache/tools/bin` by `make test-deps`.
pub fn oha_bin() -> PathBuf {
    tool("KILN_TEST_OHA", ".cache/tools/bin/oha", "make test-deps")
}

/// A real Alertmanager on loopback with the given configuration file. Stopped when dropped.
pub struct Alertmanager {
    child: Child,
    _dir: tempfile::TempDir,
    /// `host:port`
    pub addr: String,
}

impl Alertmanager {
    pub fn start(config: &std::path::Path) -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        // Through scripts/alertmanager.sh: Debian's build needs its template at a fixed
        // system path, which the script provides without installing anything.
        let package = alertmanager_bin()
            .ancestors()
            .nth(3)
            .expect("<dir>/usr/bin/prometheus-alertmanager")
            .to_path_buf();
        let child = Command::new(crate::workspace_root().join("scripts/alertmanager.sh"))
            .env("KILN_ALERTMANAGER_DIR", package)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: one instance, no cluster port to collide with.
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let server = Alertmanager {
            child,
            _dir: dir,
            addr: format!("127.0.0.1:{port}"),
        };
        wait_ready(&server.addr, "alertmanager");
        server
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP receiver that records the JSON body of every POST (what Alertmanager's
/// webhook receiver sends), with the path it came to.
pub struct Webhook {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        break (0, 0);
                    };
                    if n == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                if head_end == 0 {
                    continue;
                }
                while buf.len() < head_end + length {
                    let Ok(n) = stream.read(&mut chunk) else {
                        break;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                if let Ok(body) = serde_json::from_slice(&buf[head_end..]) {
                    sink.lock().expect("webhook log").push((path, body));
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhook { url, received }
    }

    /// Every delivery so far: `(path, body)`.
    pub fn received(&self) -> Vec<(String, serde_json::Value)> {
        self.received.lock().expect("webhook log").clone()
    }
}
