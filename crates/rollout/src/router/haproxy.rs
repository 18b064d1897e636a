//! HAProxy as the router: one backend with a `stable` and a `canary` server, weights
//! set through the runtime API (`stats socket … level admin`, TCP or a Unix socket).
//! Weights are percentages: stable `100 - p`, canary `p`; a server at weight 0 gets
//! no new requests. Readiness is HAProxy's own health check of the canary server
//! (`option httpchk GET /v2/health/ready`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Result, RolloutError};
use crate::router::Router;

/// A backend behind HAProxy's runtime API.
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    /// `host:port` of a TCP stats socket, or a Unix socket path (starting with `/`).
    pub admin: String,
    pub backend: String,
    pub stable_server: String,
    pub canary_server: String,
}

impl HaproxyRouter {
    /// Sends one runtime API command and returns HAProxy's answer.
    pub async fn command(&self, command: &str) -> Result<String> {
        let unreachable = |e: std::io::Error| RolloutError::Unreachable {
            url: format!("HAProxy runtime API {}", self.admin),
            message: e.to_string(),
        };
        let line = format!("{command}\n");
        let mut answer = Vec::new();
        let exchange = async {
            if self.admin.starts_with('/') {
                #[cfg(unix)]
                {
                    let mut s = tokio::net::UnixStream::connect(&self.admin).await?;
                    s.write_all(line.as_bytes()).await?;
                    s.read_to_end(&mut answer).await?;
                }
            } else {
                let mut s = tokio::net::TcpStream::connect(&self.admin).await?;
                s.write_all(line.as_bytes()).await?;
                s.read_to_end(&mut answer).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(result) => result.map_err(unreachable)?,
            Err(_) => {
                return Err(unreachable(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer in 10 s",
                )));
            }
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// `set weight`; HAProxy answers nothing on success, a message otherwise.
    async fn set_weight(&self, server: &str, weight: u8) -> Result<()> {
        let answer = self
            .command(&format!("set weight {}/{server} {weight}", self.backend))
            .await?;
        let answer = answer.trim();
        if answer.is_empty() {
            Ok(())
        } else {
            Err(self.refused(format!(
                "set weight {}/{server} {weight}: {answer}",
                self.backend
            )))
        }
    }

    /// A server's current weight (`get weight` answers `10 (initial 0)`).
    pub async fn weight(&self, server: &str) -> Result<u32> {
        let answer = self
            .command(&format!("get weight {}/{server}", self.backend))
            .await?;
        answer
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| {
                self.refused(format!(
                    "get weight {}/{server}: {}",
                    self.backend,
                    answer.trim()
                ))
            })
    }

    /// One row of `show stat` for a server (or `FRONTEND`/`BACKEND`), by column name.
    pub async fn stat(&self, proxy: &str, server: &str) -> Result<Vec<(String, String)>> {
        let csv = self.command("show stat").await?;
        let mut lines = csv.lines();
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .ok_or_else(|| self.refused(format!("show stat: not HAProxy's CSV: {}", csv.trim())))?;
        let names: Vec<&str> = header.split(',').collect();
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.first() == Some(&proxy) && fields.get(1) == Some(&server) {
                return Ok(names
                    .iter()
                    .zip(fields)
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect());
            }
        }
        Err(self.refused(format!("show stat: no {proxy}/{server}")))
    }

    fn refused(&self, message: String) -> RolloutError {
        RolloutError::Router {
            router: format!("HAProxy {}", self.admin),
            message,
        }
    }
}

impl Router for HaproxyRouter {
    fn describe(&self) -> String {
        format!(
            "haproxy {} backend {} (stable {}, canary {})",
            self.admin, self.backend, self.stable_server, self.canary_server
        )
    }

    async fn start_canary(&self, _version: &str, percent: u8) -> Result<()> {
        self.set_canary_percent(percent).await
    }

    async fn canary_ready(&self) -> Result<bool> {
        let row = self.stat(&self.backend, &self.canary_server).await?;
        let field = |name: &str| {
            row.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (status, check) = (field("status"), field("check_status"));
        if status == "no check" {
            return Err(self.refused(format!(
                "server {}/{} has no health check, so its readiness is unknown (add `check` to it, with `option httpchk GET /v2/health/ready`)",
                self.backend, self.canary_server
            )));
        }
        // HAProxy starts a server UP before its first check ran (`INI`); `* ` marks a
        // check in progress.
        let check = check.trim_start_matches("* ");
        Ok(status.starts_with("UP") && !check.is_empty() && !check.starts_with("INI"))
    }

    /// The canary's weight first: a promotion never leaves both at 0, a rollback never
    /// gives the canary more than it had.
    async fn set_canary_percent(&self, percent: u8) -> Result<()> {
        let percent = percent.min(100);
        self.set_weight(&self.canary_server, percent).await?;
        self.set_weight(&self.stable_server, 100 - percent).await
    }

    async fn revert(&self, _previous: &str) -> Result<()> {
        self.set_canary_percent(0).await
    }
}
