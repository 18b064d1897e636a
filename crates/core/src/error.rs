//! One error type for every Kiln library, and the mapping from error to exit code.
//!
//! Exit codes are part of Kiln's API (see ARCHITECTURE.md): Argo's retry strategy
//! retries only [`ExitClass::Transient`], and a gate failure must never be retried.

use std::io;

/// The result type used across Kiln libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an error is; decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// Usage, spec or input-contract error: fix the command, spec or data (exit 2).
    Usage,
    /// A quality gate failed: data quality, metric or fairness (exit 3, not retryable).
    Gate,
    /// The object store or a service was unreachable (exit 75, retryable).
    Transient,
    /// Anything else (exit 1).
    Internal,
}

impl ExitClass {
    /// The process exit code for this class.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Usage => 2,
            ExitClass::Gate => 3,
            ExitClass::Transient => 75,
            ExitClass::Internal => 1,
        }
    }
}

/// Every error a Kiln library reports. Each message names the thing that failed
/// (file, column, field, URL) so that it stands alone as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline spec could not be read or is invalid.
    #[error("spec {file}: {message}")]
    Spec { file: String, message: String },

    /// A command-line argument or option is invalid.
    #[error("{0}")]
    Usage(String),

    /// An input artifact or data file does not exist.
    #[error("input not found: {uri}")]
    InputNotFound { uri: String },

    /// The input data breaks the contract the spec declares (row shape, types, labels).
    #[error("{file}:{line}: {message}")]
    Data {
        file: String,
        line: u64,
        message: String,
    },

    /// A quality gate failed; each line names one failed check.
    #[error("{summary}")]
    Gate {
        summary: String,
        failures: Vec<String>,
    },

    /// The object store or a service (MLflow) could not be reached (network,
    /// timeouts, 5xx); `uri` says which.
    #[error("{uri} unreachable: {message}")]
    Unreachable { uri: String, message: String },

    /// Any other object-store failure (permissions, invalid path, ...).
    #[error("object store error at {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },

    /// A Parquet file could not be read or written.
    #[error("parquet {uri}: {source}")]
    Parquet {
        uri: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow computation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// A JSON artifact could not be parsed or written.
    #[error("json {uri}: {message}")]
    Json { uri: String, message: String },

    /// A local I/O failure.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// The process was asked to stop (SIGTERM, e.g. a spot interruption) and saved
    /// what it needs to resume; running it again continues (exit 75, retryable).
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A value that should have been valid was not; a bug or a corrupt artifact.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The class of this error, which decides the exit code.
    pub fn class(&self) -> ExitClass {
        match self {
            Error::Spec { .. } | Error::Usage(_) | Error::InputNotFound { .. } => ExitClass::Usage,
            Error::Data { .. } => ExitClass::Usage,
            Error::Gate { .. } => ExitClass::Gate,
            Error::Unreachable { .. } | Error::Interrupted(_) => ExitClass::Transient,
            Error::Store { .. }
            | Error::Parquet { .. }
            | Error::Arrow(_)
            | Error::Json { .. }
            | Error::Io { .. }
            | Error::Invalid(_) => ExitClass::Internal,
        }
    }

    /// Wraps an object-store error for `uri`, telling "not there" and "cannot reach"
    /// apart from other failures so each gets its exit code.
    pub fn from_store(uri: impl Into<String>, source: object_store::Error) -> Self {
        let uri = uri.into();
        if let object_store::Error::NotFound { .. } = source {
            return Error::InputNotFound { uri };
        }
        if is_transient(&source) {
            return Error::Unreachable {
                uri,
                message: innermost_message(&source),
            };
        }
        Error::Store { uri, source }
    }

    /// A usage error with a message.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the error chain holds a broken pipe (`kiln ... | head`), which a
    /// command-line tool treats as a normal end.
    pub fn is_broken_pipe(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = current {
            if let Some(io) = err.downcast_ref::<io::Error>()
                && io.kind() == io::ErrorKind::BrokenPipe
            {
                return true;
            }
            current = err.source();
        }
        false
    }
}

/// Connection failures, timeouts, throttling and server errors are worth retrying;
/// permission errors, bad paths and missing objects are not.
fn is_transient(err: &object_store::Error) -> bool {
    use object_store::client::HttpErrorKind;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::TimedOut
            )
        {
            return true;
        }
        let text = e.to_string();
        if text.contains("status code: 5") || text.contains("status code: 429") {
            return true;
        }
        current = e.source();
    }
    false
}

/// The most specific message in an error chain, for a one-line report.
fn innermost_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() {
            message = text;
        }
        current = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_architecture_contract() {
        assert_eq!(Error::usage("x").class().code(), 2);
        let gate = Error::Gate {
            summary: "1 gate failed".into(),
            failures: vec!["auc".into()],
        };
        assert_eq!(gate.class().code(), 3);
        let down = Error::Unreachable {
            uri: "s3://b".into(),
            message: "refused".into(),
        };
        assert_eq!(down.class().code(), 75);
        assert_eq!(Error::Invalid("bug".into()).class().code(), 1);
    }

    #[test]
    fn not_found_is_an_input_error() {
        let source = object_store::Error::NotFound {
            path: "a/b".into(),
            source: "gone".into(),
        };
        let err = Error::from_store("file:///a/b", source);
        assert!(matches!(err, Error::InputNotFound { .. }));
        assert_eq!(err.to_string(), "input not found: file:///a/b");
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let err = Error::io("writing stdout", io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(err.is_broken_pipe());
        assert!(!Error::usage("x").is_broken_pipe());
    }
}
