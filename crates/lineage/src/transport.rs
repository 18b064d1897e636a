//! Where events go, configured the way OpenLineage's own clients are, from the
//! environment:
//!
//! - `OPENLINEAGE_URL` (+ `OPENLINEAGE_ENDPOINT`, default `api/v1/lineage`;
//!   `OPENLINEAGE_API_KEY`, sent as a bearer token): HTTP POST of each event;
//! - `OPENLINEAGE__TRANSPORT__TYPE=file` with `OPENLINEAGE__TRANSPORT__LOG_FILE_PATH`:
//!   one JSON line per event appended to that file;
//! - `OPENLINEAGE__TRANSPORT__TYPE=console`: one JSON line per event on stderr;
//! - `OPENLINEAGE_DISABLED=true`, or none of these: no events.
//!
//! `OPENLINEAGE__TRANSPORT__TIMEOUT` (seconds, default 5) bounds each HTTP attempt.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// A transport that could not be configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// One way to deliver events.
#[derive(Debug, Clone)]
pub enum Transport {
    Http {
        /// The full endpoint (`OPENLINEAGE_URL` + `/` + `OPENLINEAGE_ENDPOINT`).
        endpoint: String,
        api_key: Option<String>,
        timeout: Duration,
        client: reqwest::Client,
    },
    File {
        path: PathBuf,
    },
    Console,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Transport {
    /// The transport the environment names; `None` when lineage is off.
    pub fn from_env() -> Result<Option<Transport>, ConfigError> {
        if var("OPENLINEAGE_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let timeout = match var("OPENLINEAGE__TRANSPORT__TIMEOUT") {
            Some(t) => Duration::from_secs_f64(
                t.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "OPENLINEAGE__TRANSPORT__TIMEOUT: `{t}` is not a positive number of seconds"
                        ))
                    })?,
            ),
            None => Duration::from_secs(5),
        };
        let kind = var("OPENLINEAGE__TRANSPORT__TYPE").map(|k| k.to_ascii_lowercase());
        match kind.as_deref() {
            Some("file") => {
                let path = var("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH").ok_or_else(|| {
                    ConfigError(
                        "OPENLINEAGE__TRANSPORT__TYPE=file needs OPENLINEAGE__TRANSPORT__LOG_FILE_PATH"
                            .into(),
                    )
                })?;
                Ok(Some(Transport::File {
                    path: PathBuf::from(path),
                }))
            }
            Some("console") => Ok(Some(Transport::Console)),
            Some("http") | None => {
                let Some(url) =
                    var("OPENLINEAGE_URL").or_else(|| var("OPENLINEAGE__TRANSPORT__URL"))
                else {
                    return match kind {
                        Some(_) => Err(ConfigError(
                            "OPENLINEAGE__TRANSPORT__TYPE=http needs OPENLINEAGE_URL".into(),
                        )),
                        None => Ok(None),
                    };
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError(format!(
                        "OPENLINEAGE_URL: `{url}` is not an http(s) URL"
                    )));
                }
                let endpoint = var("OPENLINEAGE_ENDPOINT")
                    .or_else(|| var("OPENLINEAGE__TRANSPORT__ENDPOINT"))
                    .unwrap_or_else(|| "api/v1/lineage".into());
                let client = reqwest::Client::builder()
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .build()
                    .map_err(|e| ConfigError(format!("OPENLINEAGE_URL: {e}")))?;
                Ok(Some(Transport::Http {
                    endpoint: format!(
                        "{}/{}",
                        url.trim_end_matches('/'),
                        endpoint.trim_start_matches('/')
                    ),
                    api_key: var("OPENLINEAGE_API_KEY")
                        .or_else(|| var("OPENLINEAGE__TRANSPORT__AUTH__API_KEY")),
                    timeout,
                    client,
                }))
            }
            Some(other) => Err(ConfigError(format!(
                "OPENLINEAGE__TRANSPORT__TYPE: `{other}` is not one of http, file, console"
            ))),
        }
    }

    /// Where events go, for messages.
    pub fn describe(&self) -> String {
        match self {
            Transport::Http { endpoint, .. } => endpoint.clone(),
            Transport::File { path } => path.display().to_string(),
            Transport::Console => "stderr".into(),
        }
    }

    /// One delivery attempt. `Err` says why it failed and whether a retry may help.
    pub async fn send_once(&self, event: &Value) -> Result<(), (String, bool)> {
        let line = serde_json::to_string(event).map_err(|e| (e.to_string(), false))?;
        match self {
            Transport::Http {
                endpoint,
                api_key,
                client,
                timeout,
            } => {
                let mut request = client
                    .post(endpoint)
                    .header("content-type", "application/json")
                    .body(line);
                if let Some(key) = api_key {
                    request = request.bearer_auth(key);
                }
                let response = request.send().await.map_err(|e| {
                    let why = if e.is_timeout() {
                        format!("no answer within {timeout:?}")
                    } else {
                        e.without_url().to_string()
                    };
                    (why, true)
                })?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    // A 4xx other than 429 will not change on a retry.
                    let retry = status.is_server_error() || status.as_u16() == 429;
                    Err((format!("HTTP {status}"), retry))
                }
            }
            Transport::File { path } => {
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| (e.to_string(), true))?;
                file.write_all(format!("{line}\n").as_bytes())
                    .await
                    .map_err(|e| (e.to_string(), true))?;
                file.flush().await.map_err(|e| (e.to_string(), true))
            }
            Transport::Console => {
                // One short line: written at once, not worth a blocking-pool hop.
                use std::io::Write;
                std::io::stderr()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes())
                    .map_err(|e| (e.to_string(), false))
            }
        }
    }

    /// Delivers with up to three attempts (backing off 0.2 s, then 1 s) while a retry
    /// may help. `Err` is the last reason.
    pub async fn send(&self, event: &Value) -> Result<(), String> {
        let mut last = String::new();
        for (attempt, pause) in [0u64, 200, 1000].into_iter().enumerate() {
            if pause > 0 {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            match self.send_once(event).await {
                Ok(()) => return Ok(()),
                Err((why, retry)) => {
                    last = format!("{why} (attempt {})", attempt + 1);
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last)
    }
}
