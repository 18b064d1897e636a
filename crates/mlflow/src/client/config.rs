//! Where the tracking server is and how to authenticate, from MLflow's environment
//! variables.

use super::*;

/// How to authenticate. `Debug` shows who, never the secret.
#[derive(Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = format_args!("<redacted>");
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.debug_tuple("Bearer").field(&redacted).finish(),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &redacted)
                .finish(),
        }
    }
}

/// A tracking URI without the credentials it may carry (`https://user:secret@host`),
/// and those credentials, percent-decoded. The URI Kiln keeps, logs and writes into
/// `mlflow.json` is the first; the second authenticates.
pub fn split_credentials(uri: &str) -> (String, Option<(String, String)>) {
    let Ok(mut url) = url::Url::parse(uri) else {
        return (uri.to_string(), None);
    };
    if url.username().is_empty() && url.password().is_none() {
        return (uri.to_string(), None);
    }
    // The URL keeps user and password percent-encoded.
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    // Setting both cannot fail on an http(s) URL, which has a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut clean = url.to_string();
    if !uri.ends_with('/') && clean.ends_with('/') {
        clean.pop();
    }
    (clean, Some((user, password)))
}

/// Where the tracking server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct MlflowConfig {
    /// `http(s)://host:port[/prefix]`, without a trailing slash or credentials.
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
        // Credentials inside the URI authenticate (when no variable does) and are never
        // kept in the URI, which logs, errors and mlflow.json carry.
        let (uri, credentials) = split_credentials(&uri);
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
            (None, None) => match credentials {
                Some((user, password)) => Auth::Basic { user, password },
                None => Auth::None,
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let config = MlflowConfig {
            tracking_uri: "https://mlflow.example.com".into(),
            auth: Auth::Basic {
                user: "alice".into(),
                password: "s3cret-pw".into(),
            },
            timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(1),
        };
        let text = format!("{config:?}");
        assert!(
            text.contains("alice") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("s3cret-pw"), "{text}");
        let text = format!("{:?}", Auth::Bearer("tok-123".into()));
        assert_eq!(text, "Bearer(<redacted>)");
    }

    #[test]
    fn credentials_leave_the_uri() {
        assert_eq!(
            split_credentials("https://alice:p%40ss%2Bw@mlflow.example.com:5000/prefix"),
            (
                "https://mlflow.example.com:5000/prefix".to_string(),
                Some(("alice".to_string(), "p@ss+w".to_string()))
            )
        );
        assert_eq!(
            split_credentials("http://127.0.0.1:5000"),
            ("http://127.0.0.1:5000".to_string(), None)
        );
        let (clean, credentials) = split_credentials("http://token-only@host:1/");
        assert_eq!(clean, "http://host:1/");
        assert_eq!(credentials, Some(("token-only".to_string(), String::new())));
        // Not a URL at all: left as it is for the scheme check to refuse.
        assert_eq!(split_credentials("file:relative").1, None);
    }
}
