//! MLflow's error codes, the client's errors, and their exit codes.

use serde_json::Value;

/// MLflow's `error_code`s that callers act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    InvalidParameterValue,
    PermissionDenied,
    Unauthenticated,
    Other(String),
}

impl ErrorCode {
    pub(super) fn parse(code: &str) -> ErrorCode {
        match code {
            "RESOURCE_ALREADY_EXISTS" => ErrorCode::ResourceAlreadyExists,
            "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" => ErrorCode::ResourceDoesNotExist,
            "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" => ErrorCode::InvalidParameterValue,
            "PERMISSION_DENIED" => ErrorCode::PermissionDenied,
            "UNAUTHENTICATED" => ErrorCode::Unauthenticated,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

/// Errors of the MLflow client.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The server could not be reached, or kept failing (connection errors, 429, 5xx).
    #[error("MLflow at {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// 401/403: the credentials were refused.
    #[error(
        "MLflow {endpoint}: credentials refused (HTTP {status}); check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
    )]
    Auth { endpoint: String, status: u16 },
    /// MLflow answered with an error.
    #[error("MLflow {endpoint}: {code:?}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A response that is not what MLflow's API documents.
    #[error("MLflow {endpoint}: unexpected response: {message}")]
    Protocol { endpoint: String, message: String },
}

impl MlflowError {
    /// The MLflow error code, for API errors.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            MlflowError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<MlflowError> for kiln_core::Error {
    fn from(e: MlflowError) -> Self {
        match e {
            MlflowError::Unreachable { url, message } => kiln_core::Error::Unreachable {
                uri: format!("MLflow at {url}"),
                message,
            },
            MlflowError::Auth { .. } | MlflowError::Config(_) => {
                kiln_core::Error::Usage(e.to_string())
            }
            // A model, run or experiment the command named is not there (a mistyped
            // `--model`): fix the command, do not retry it.
            MlflowError::Api {
                code: ErrorCode::ResourceDoesNotExist,
                ..
            } => kiln_core::Error::Usage(e.to_string()),
            other => kiln_core::Error::Invalid(other.to_string()),
        }
    }
}

/// The error of a failed call, from its status and MLflow's JSON error body (or the
/// first 200 characters of whatever else the server said).
pub(crate) fn api_error(endpoint: &str, status: u16, body: &[u8]) -> MlflowError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["error_code"].as_str().unwrap_or(if status == 404 {
        "NOT_FOUND"
    } else {
        "HTTP_ERROR"
    });
    let message = parsed["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )
        });
    MlflowError::Api {
        endpoint: endpoint.to_string(),
        status,
        code: ErrorCode::parse(code),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_parse() {
        assert_eq!(
            ErrorCode::parse("RESOURCE_ALREADY_EXISTS"),
            ErrorCode::ResourceAlreadyExists
        );
        assert_eq!(
            ErrorCode::parse("RESOURCE_DOES_NOT_EXIST"),
            ErrorCode::ResourceDoesNotExist
        );
        let e = api_error(
            "x",
            400,
            br#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}"#,
        );
        assert_eq!(e.code(), Some(&ErrorCode::InvalidParameterValue));
        assert_eq!(e.to_string(), "MLflow x: InvalidParameterValue: bad");
        let e = api_error("y", 404, b"<html>");
        assert_eq!(e.code(), Some(&ErrorCode::ResourceDoesNotExist));
    }

    #[test]
    fn unreachable_is_transient_and_auth_is_usage() {
        let e: kiln_core::Error = MlflowError::Unreachable {
            url: "u".into(),
            message: "m".into(),
        }
        .into();
        assert_eq!(e.class().code(), 75);
        let e: kiln_core::Error = MlflowError::Auth {
            endpoint: "e".into(),
            status: 401,
        }
        .into();
        assert_eq!(e.class().code(), 2);
        let e: kiln_core::Error = api_error(
            "registered-models/get",
            404,
            br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=adlt not found"}"#,
        )
        .into();
        assert_eq!(e.class().code(), 2, "{e}");
        assert!(e.to_string().contains("adlt"), "{e}");
    }
}
