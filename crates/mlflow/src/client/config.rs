//! Where the tracking server is and how to authenticate, from MLflow's environment
//! variables.

use super::*;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

/// Where the tracking server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct MlflowConfig {
    /// `http(s)://host:port[/prefix]`, without a trailing slash.
    pub tracking_uri: String,
    pub auth: Auth,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long to keep retrying a failing call before giving up.
    pub retry_for: Duration,
}

impl MlflowConfig {
    /// From `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN` or
    /// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`, `MLFLOW_HTTP_REQUEST_TIMEOUT`
    /// (seconds, default 120) and `KILN_MLFLOW_RETRY_TIMEOUT_SECS` (default 30). `None`
    /// when `MLFLOW_TRACKING_URI` is not set.
    pub fn from_env() -> Result<Option<MlflowConfig>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(uri) = var("MLFLOW_TRACKING_URI") else {
            return Ok(None);
        };
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(MlflowError::Config(format!(
                "MLFLOW_TRACKING_URI `{uri}`: Kiln talks to a tracking server over REST (http:// or https://); without one, leave the variable unset and the run's own files are the record"
            )));
        }
        let auth = match (
            var("MLFLOW_TRACKING_TOKEN"),
            var("MLFLOW_TRACKING_USERNAME"),
        ) {
            (Some(token), _) => Auth::Bearer(token),
            (None, Some(user)) => Auth::Basic {
                user,
                password: var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default(),
            },
            (None, None) => Auth::None,
        };
        let seconds = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Ok(Some(MlflowConfig {
            tracking_uri: uri.trim_end_matches('/').to_string(),
            auth,
            timeout: Duration::from_secs(seconds("MLFLOW_HTTP_REQUEST_TIMEOUT", 120)),
            retry_for: Duration::from_secs(seconds("KILN_MLFLOW_RETRY_TIMEOUT_SECS", 30)),
        }))
    }
}
