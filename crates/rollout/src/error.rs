//! Errors of a rollout, and how they map onto Kiln's exit codes.

/// What can stop a rollout before it reaches a decision, or fail a command.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// A settings file or a flag is invalid (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Prometheus, the router or the Kubernetes API could not be reached (exit 75).
    #[error("{url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// The router refused a change or answered what its API does not document (exit 1).
    #[error("{router}: {message}")]
    Router { router: String, message: String },
    /// The analysis ended without promoting: rolled back or halted (exit 3).
    #[error("{summary}")]
    NotPromoted {
        summary: String,
        failures: Vec<String>,
    },
    /// The registry or the store failed (its own exit code).
    #[error(transparent)]
    Core(#[from] kiln_core::Error),
    /// Prometheus answered, but not as its API documents (exit 1).
    #[error(transparent)]
    Prometheus(kiln_prometheus::PrometheusError),
}

impl From<kiln_prometheus::PrometheusError> for RolloutError {
    fn from(e: kiln_prometheus::PrometheusError) -> Self {
        use kiln_prometheus::PrometheusError;
        match e {
            PrometheusError::Unreachable { url, message } => {
                RolloutError::Unreachable { url, message }
            }
            PrometheusError::Usage(message) => RolloutError::Usage(message),
            other => RolloutError::Prometheus(other),
        }
    }
}

impl From<RolloutError> for kiln_core::Error {
    fn from(e: RolloutError) -> Self {
        match e {
            RolloutError::Usage(message) => kiln_core::Error::Usage(message),
            RolloutError::Unreachable { url, message } => {
                kiln_core::Error::Unreachable { uri: url, message }
            }
            RolloutError::NotPromoted { summary, failures } => {
                kiln_core::Error::Gate { summary, failures }
            }
            RolloutError::Core(inner) => inner,
            other => kiln_core::Error::Invalid(other.to_string()),
        }
    }
}

pub type Result<T, E = RolloutError> = std::result::Result<T, E>;

pub(crate) use kiln_prometheus::error_chain;
