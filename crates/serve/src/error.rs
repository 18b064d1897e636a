//! What a request can get wrong, and how each protocol says it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A request's failure. Every variant names what was wrong; none is a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServeError {
    /// Malformed input: bad JSON, wrong datatype or shape, a missing or unknown
    /// column, a value of the wrong type, too many rows.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown model or version.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the server's limit.
    #[error("{0}")]
    TooLarge(String),
    /// The client sent its request too slowly (408; the connection is closed).
    #[error("{0}")]
    Timeout(String),
    /// Overloaded (shed at once) or not ready yet: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server, not of the request.
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    pub fn bad(message: impl Into<String>) -> Self {
        ServeError::BadRequest(message.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ServeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status of this error.
    pub fn grpc(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            ServeError::BadRequest(_) => tonic::Status::invalid_argument(message),
            ServeError::NotFound(_) => tonic::Status::not_found(message),
            ServeError::TooLarge(_) => tonic::Status::resource_exhausted(message),
            ServeError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            ServeError::Unavailable(_) => tonic::Status::unavailable(message),
            ServeError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

impl From<kiln_core::Error> for ServeError {
    fn from(e: kiln_core::Error) -> Self {
        match e.class() {
            kiln_core::ExitClass::Usage => ServeError::BadRequest(e.to_string()),
            _ => ServeError::Internal(e.to_string()),
        }
    }
}

/// `{"error": "..."}` with the error's status; overload adds `Retry-After`, a slow
/// client's 408 closes the connection.
impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
