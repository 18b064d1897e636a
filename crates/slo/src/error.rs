//! Errors of the SLO tools, and how they map onto Kiln's exit codes.

/// What can go wrong reading a spec, generating rules or checking SLOs.
#[derive(Debug, thiserror::Error)]
pub enum SloError {
    /// The SLO spec or an alert-windows file is unreadable or invalid (exit 2).
    #[error("{file}: {message}")]
    Spec { file: String, message: String },
    /// A command-line value is invalid (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Prometheus (or the probed server) could not be reached at all (exit 75).
    #[error("{url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// Prometheus answered, but not with what its HTTP API documents (exit 1).
    #[error("Prometheus at {url}: {message}")]
    Api { url: String, message: String },
    /// An SLO is breached: a budget is exhausted, a page alert fires or the probe failed (exit 3).
    #[error("{summary}")]
    Breached {
        summary: String,
        failures: Vec<String>,
    },
    /// Writing an output file failed (exit 1).
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SloError {
    pub(crate) fn spec(file: &str, message: impl Into<String>) -> SloError {
        SloError::Spec {
            file: file.to_string(),
            message: message.into(),
        }
    }
}

impl From<kiln_prometheus::PrometheusError> for SloError {
    fn from(e: kiln_prometheus::PrometheusError) -> Self {
        use kiln_prometheus::PrometheusError;
        match e {
            PrometheusError::Usage(message) => SloError::Usage(message),
            PrometheusError::Unreachable { url, message } => SloError::Unreachable { url, message },
            PrometheusError::Api { url, message } => SloError::Api { url, message },
        }
    }
}

impl From<SloError> for kiln_core::Error {
    fn from(e: SloError) -> Self {
        match e {
            SloError::Spec { file, message } => kiln_core::Error::Spec { file, message },
            SloError::Usage(message) => kiln_core::Error::Usage(message),
            SloError::Unreachable { url, message } => {
                kiln_core::Error::Unreachable { uri: url, message }
            }
            SloError::Breached { summary, failures } => {
                kiln_core::Error::Gate { summary, failures }
            }
            other => kiln_core::Error::Invalid(other.to_string()),
        }
    }
}

pub type Result<T, E = SloError> = std::result::Result<T, E>;
