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
    #[cfg(feature = "tables")]
    #[error("parquet {uri}: {source}")]
    Parquet {
        uri: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow computation failed.
    #[cfg(feature = "tables")]
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

    /// An artifact another step wrote cannot be decoded (a truncated Parquet file, a
    /// model record that does not fit its config): rerun the step that wrote it (exit 2).
    #[error("corrupt artifact {uri}: {message}")]
    Corrupt { uri: String, message: String },

    /// What was being done when `source` happened; the exit code is `source`'s.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },

    /// A value that should have been valid was not: a bug.
    #[error("{0}")]
    Invalid(String),
}

/// Adds what was being done to an error, keeping the error (and its exit code) intact.
pub trait Context<T> {
    /// Wraps the error in [`Error::Context`].
    fn context(self, context: impl Into<String>) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e),
        })
    }
}

impl Error {
    /// The class of this error, which decides the exit code. It is a property of the
    /// whole chain: a connection reset that surfaces inside a Parquet read, a CSV parse
    /// or a context wrapper is still transient (75), so Argo retries it.
    pub fn class(&self) -> ExitClass {
        match self {
            Error::Spec { .. } | Error::Usage(_) | Error::InputNotFound { .. } => ExitClass::Usage,
            Error::Data { .. } | Error::Corrupt { .. } | Error::Json { .. } => ExitClass::Usage,
            Error::Gate { .. } => ExitClass::Gate,
            Error::Unreachable { .. } | Error::Interrupted(_) => ExitClass::Transient,
            Error::Context { source, .. } => source.class(),
            Error::Store { source, .. } => chain_class(source).unwrap_or(ExitClass::Internal),
            #[cfg(feature = "tables")]
            Error::Parquet { source, .. } => chain_class(source).unwrap_or(ExitClass::Internal),
            #[cfg(feature = "tables")]
            Error::Arrow(source) => chain_class(source).unwrap_or(ExitClass::Internal),
            Error::Io { source, .. } => chain_class(source).unwrap_or(ExitClass::Internal),
            Error::Invalid(_) => ExitClass::Internal,
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

    /// [`from_store`](Self::from_store) for an error held by reference (inside another
    /// library's error, e.g. DataFusion's): the same classes, the message kept.
    pub fn from_store_ref(uri: impl Into<String>, source: &object_store::Error) -> Self {
        let uri = uri.into();
        if let object_store::Error::NotFound { .. } = source {
            return Error::InputNotFound { uri };
        }
        if is_transient(source) {
            return Error::Unreachable {
                uri,
                message: innermost_message(source),
            };
        }
        Error::Store {
            uri,
            source: object_store::Error::Generic {
                store: "object store",
                source: innermost_message(source).into(),
            },
        }
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

/// The class that an error's chain decides, if any: a Kiln error inside it (an I/O
/// error can carry one, as the CSV reader's does) or a transient store, HTTP or socket
/// failure anywhere in it. `None` leaves the outer error's own class.
fn chain_class(err: &(dyn std::error::Error + 'static)) -> Option<ExitClass> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(kiln) = e.downcast_ref::<Error>() {
            return Some(kiln.class());
        }
        if let Some(store) = e.downcast_ref::<object_store::Error>() {
            return is_transient(store).then_some(ExitClass::Transient);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if is_transient_io(io.kind()) {
                return Some(ExitClass::Transient);
            }
            // `io::Error::other(inner)` hides `inner` from `source()`.
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn std::error::Error + 'static) = inner;
                if let Some(class) = chain_class(inner) {
                    return Some(class);
                }
            }
        }
        #[cfg(feature = "tables")]
        if let Some(class) = table_error_class(e) {
            return class;
        }
        current = e.source();
    }
    None
}

/// The class of an Arrow or Parquet error that wraps another (`Some(class)`: decided,
/// whatever the wrapped error says).
#[cfg(feature = "tables")]
fn table_error_class(e: &(dyn std::error::Error + 'static)) -> Option<Option<ExitClass>> {
    if let Some(parquet::errors::ParquetError::External(inner)) =
        e.downcast_ref::<parquet::errors::ParquetError>()
    {
        let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
        return Some(chain_class(inner));
    }
    match e.downcast_ref::<arrow::error::ArrowError>()? {
        arrow::error::ArrowError::ExternalError(inner) => {
            let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
            Some(chain_class(inner))
        }
        arrow::error::ArrowError::IoError(_, io) if is_transient_io(io.kind()) => {
            Some(Some(ExitClass::Transient))
        }
        _ => None,
    }
}

fn is_transient_io(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::TimedOut
    )
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
            && is_transient_io(io.kind())
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

    fn reset() -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        }
    }

    #[test]
    fn a_transient_store_error_is_transient_wherever_it_surfaces() {
        // Inside a Parquet read (the reader hands the store's error to the decoder).
        let parquet = Error::Parquet {
            uri: "s3://b/t.parquet".into(),
            source: parquet::errors::ParquetError::External(Box::new(reset())),
        };
        assert_eq!(parquet.class(), ExitClass::Transient, "{parquet}");
        // Inside a Parquet write (the upload's error comes as an I/O error).
        let upload = Error::Parquet {
            uri: "s3://b/t.parquet".into(),
            source: parquet::errors::ParquetError::External(Box::new(io::Error::other(reset()))),
        };
        assert_eq!(upload.class(), ExitClass::Transient, "{upload}");
        // Inside a CSV read: the byte stream's Kiln error travels in an I/O error.
        let csv = Error::io(
            "reading s3://b/d.csv",
            io::Error::other(Error::from_store("s3://b/d.csv", reset())),
        );
        assert_eq!(csv.class(), ExitClass::Transient, "{csv}");
        // Behind a context, as deep as it goes.
        let wrapped: Result<()> = Err(csv);
        let wrapped = wrapped.context("prepare").context("kiln run");
        assert_eq!(wrapped.unwrap_err().class().code(), 75);
        // Arrow's external error.
        let arrow = Error::Arrow(arrow::error::ArrowError::ExternalError(Box::new(reset())));
        assert_eq!(arrow.class(), ExitClass::Transient);
    }

    #[test]
    fn the_chain_keeps_non_transient_classes() {
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "no".into(),
        };
        let parquet = Error::Parquet {
            uri: "s3://b/t.parquet".into(),
            source: parquet::errors::ParquetError::External(Box::new(denied)),
        };
        assert_eq!(parquet.class(), ExitClass::Internal);
        // A usage error carried through I/O stays a usage error.
        let io = Error::io("reading", io::Error::other(Error::usage("bad column")));
        assert_eq!(io.class(), ExitClass::Usage);
        let plain = Error::io("reading", io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(plain.class(), ExitClass::Internal);
        let corrupt = Error::Corrupt {
            uri: "t.parquet".into(),
            message: "bad magic".into(),
        };
        assert_eq!(corrupt.class().code(), 2);
        assert_eq!(Error::Invalid("a bug".into()).class().code(), 1);
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let err = Error::io("writing stdout", io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(err.is_broken_pipe());
        assert!(!Error::usage("x").is_broken_pipe());
    }
}
