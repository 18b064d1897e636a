//! Bearer-token authentication of the inference endpoints (V1, V2 REST, V2 gRPC).
//!
//! Tokens come from a file, one per line (blank lines and `#` comments ignored), so
//! that a rotation can list the old and the new token for a while. The file is re-read
//! when it changes. A presented token is hashed and compared with every known token's
//! hash in constant time: neither the comparison nor the position of a match tells an
//! attacker how much of a guess was right.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted tokens, following their file.
pub struct Tokens {
    path: PathBuf,
    current: RwLock<(Option<SystemTime>, Vec<[u8; 32]>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens, not even their hashes.
        f.debug_struct("Tokens").field("path", &self.path).finish()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Unknown,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "authentication required: send `authorization: Bearer <token>`",
            Refusal::Malformed => "the authorization header is not `Bearer <token>`",
            Refusal::Unknown => "the bearer token is not accepted",
        }
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn read(path: &Path) -> Result<Vec<[u8; 32]>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the token file: {e}", path.display()))?;
    let tokens: Vec<[u8; 32]> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| digest(l.as_bytes()))
        .collect();
    if tokens.is_empty() {
        return Err(format!(
            "{}: the token file holds no token (one per line)",
            path.display()
        ));
    }
    Ok(tokens)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Tokens {
    /// Reads the token file; an unreadable or empty file is an error.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let stamp = modified(path);
        let tokens = read(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            current: RwLock::new((stamp, tokens)),
        })
    }

    /// Re-reads the file if it changed (blocking I/O: call it off the async workers).
    /// An unreadable or empty file keeps the previous tokens.
    pub fn reload_if_changed(&self) -> bool {
        let stamp = modified(&self.path);
        if self.current.read().unwrap_or_else(|e| e.into_inner()).0 == stamp {
            return false;
        }
        match read(&self.path) {
            Ok(tokens) => {
                let count = tokens.len();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (stamp, tokens);
                tracing::info!(path = %self.path.display(), tokens = count, "bearer tokens reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "keeping the previous bearer tokens");
                false
            }
        }
    }

    /// Checks an `authorization` header value.
    pub fn check(&self, value: Option<&HeaderValue>) -> Result<(), Refusal> {
        let value = value.ok_or(Refusal::Missing)?;
        let value = value.to_str().map_err(|_| Refusal::Malformed)?;
        let (scheme, token) = value.split_once(' ').ok_or(Refusal::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(Refusal::Malformed);
        }
        let presented = digest(token.trim().as_bytes());
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        // Every token is compared, match or not.
        let mut matched = subtle::Choice::from(0);
        for known in &current.1 {
            matched |= known.ct_eq(&presented);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(Refusal::Unknown)
        }
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check(headers.get(header::AUTHORIZATION))
    }
}

/// What a guard needs: the tokens (none: every request passes) and the metrics.
#[derive(Clone)]
pub struct Guard {
    pub tokens: Option<std::sync::Arc<Tokens>>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Guard {
    fn refuse(&self, protocol: &str, request: &Request) -> Option<Refusal> {
        let tokens = self.tokens.as_ref()?;
        let refusal = tokens.check_headers(request.headers()).err()?;
        self.metrics
            .unauthenticated
            .with_label_values(&[protocol])
            .inc();
        Some(refusal)
    }
}

/// Axum middleware for the REST endpoints: 401 with a JSON error and
/// `WWW-Authenticate: Bearer`.
pub async fn rest(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if let Some(refusal) = guard.refuse("rest", &request) {
        let body = serde_json::json!({ "error": refusal.message() });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        let challenge = match refusal {
            Refusal::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        return response;
    }
    next.run(request).await
}

/// Axum middleware for gRPC: the `authorization` metadata is an HTTP/2 header; a
/// refusal is `UNAUTHENTICATED`.
pub async fn grpc(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if let Some(refusal) = guard.refuse("grpc", &request) {
        return tonic::Status::unauthenticated(refusal.message()).into_http::<axum::body::Body>();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> (tempfile::NamedTempFile, Tokens) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        let tokens = Tokens::load(file.path()).expect("load");
        (file, tokens)
    }

    fn h(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("header")
    }

    #[test]
    fn bearer_tokens_are_checked_by_scheme_and_value() {
        let (_file, t) = tokens("# rotation: old and new\nold-token\n\n  new-token  \n");
        assert_eq!(t.check(Some(&h("Bearer old-token"))), Ok(()));
        assert_eq!(t.check(Some(&h("bearer new-token"))), Ok(()));
        assert_eq!(t.check(None), Err(Refusal::Missing));
        assert_eq!(
            t.check(Some(&h("Basic b2xkLXRva2Vu"))),
            Err(Refusal::Malformed)
        );
        assert_eq!(t.check(Some(&h("Bearer "))), Err(Refusal::Malformed));
        assert_eq!(t.check(Some(&h("old-token"))), Err(Refusal::Malformed));
        assert_eq!(t.check(Some(&h("Bearer old-toke"))), Err(Refusal::Unknown));
        assert_eq!(
            t.check(Some(&h("Bearer # rotation: old and new"))),
            Err(Refusal::Unknown)
        );
        assert!(!format!("{t:?}").contains("token\""), "{t:?}");
    }

    #[test]
    fn a_rotated_file_is_followed_and_an_emptied_one_keeps_the_old_tokens() {
        let (file, t) = tokens("first\n");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(file.path(), "second\n").expect("write");
        // Some file systems keep coarse modification times: make the change visible.
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(file.path())
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert!(t.reload_if_changed());
        assert_eq!(t.check(Some(&h("Bearer second"))), Ok(()));
        assert_eq!(t.check(Some(&h("Bearer first"))), Err(Refusal::Unknown));
        std::fs::write(file.path(), "\n# nothing\n").expect("write");
        let later = later + std::time::Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(file.path())
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert!(!t.reload_if_changed());
        assert_eq!(t.check(Some(&h("Bearer second"))), Ok(()));
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let e = Tokens::load(empty.path()).expect_err("empty");
        assert!(e.contains("holds no token"), "{e}");
    }
}
