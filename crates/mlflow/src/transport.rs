//! How the client talks to the server: one request, the retry loop around it (backoff
//! with jitter, `Retry-After`), and creates that are never made twice.
//!
//! A call that only reads or sets a value can be repeated safely. A call that
//! *creates* something (a run, a model version) cannot: when the reply is lost after
//! the server acted (a timeout, a dropped connection, a proxy's 5xx), sending it again
//! creates a second one. [`MlflowClient::create`] therefore sends it once, and after a
//! transient failure first asks the server whether the object exists (by a client
//! token the request carried) before it sends it again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::client::{Auth, MlflowClient, MlflowError, api_error};

type Result<T, E = MlflowError> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

/// Why one attempt failed.
enum Failure {
    /// Do not retry: the answer will not change (4xx, auth, bad response).
    Fatal(MlflowError),
    /// Worth retrying (connection, timeout, 429, 5xx); the server may have acted.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

/// Exponential backoff from 0.2 s doubling to 5 s, each wait drawn between half and
/// all of it ("equal jitter"), so clients that failed together do not retry together.
struct Backoff {
    delay: Duration,
    state: u64,
}

impl Backoff {
    fn new() -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            delay: Duration::from_millis(200),
            state: nanos ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// Raises the next wait to at least `floor` (a server's `Retry-After`, capped).
    fn at_least(&mut self, floor: Duration) {
        self.delay = self.delay.max(floor.min(Duration::from_secs(30)));
    }

    /// The wait before the next attempt, with jitter.
    fn next_wait(&mut self) -> Duration {
        // xorshift64: enough randomness to spread retries, no dependency for it.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = 0.5 + (self.state % 1000) as f64 / 2000.0;
        let wait = self.delay.mul_f64(fraction);
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
        wait
    }

    /// The wait the next attempt would get, at most (for the deadline check).
    fn upper(&self) -> Duration {
        self.delay
    }
}

/// A token unique to one create call, sent as the `kiln.client_token` tag so that a
/// retry can find what an earlier attempt created.
pub(crate) fn client_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The tag that carries [`client_token`].
pub(crate) const CLIENT_TOKEN_TAG: &str = "kiln.client_token";

impl MlflowClient {
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        }
    }

    /// The request of a REST call: `body` as JSON (POST, DELETE) or as the query (GET).
    fn rest_request(
        &self,
        method: Method,
        endpoint: &str,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.config.tracking_uri);
        let with_json = |request: reqwest::RequestBuilder| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
        };
        let request = match method {
            Method::Get => {
                let query: Vec<(String, String)> = body
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.http.get(&url).query(&query)
            }
            Method::Post => with_json(self.http.post(&url)),
            Method::Delete => with_json(self.http.delete(&url)),
        };
        self.authorize(request)
    }

    /// One REST call with retries; the reply parsed as JSON (`{}` when empty).
    pub(crate) async fn call(&self, method: Method, endpoint: &str, body: Value) -> Result<Value> {
        let bytes = self
            .send(endpoint, || self.rest_request(method, endpoint, &body))
            .await?;
        parse_reply(endpoint, &bytes)
    }

    /// A REST call that creates something, made at most once: after a transient
    /// failure, `lookup` (which finds the object by the client token the request
    /// carries) runs before any retry, and what it finds is the result.
    pub(crate) async fn create<F, Fut>(
        &self,
        endpoint: &str,
        body: Value,
        lookup: F,
    ) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        let started = Instant::now();
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.rest_request(Method::Post, endpoint, &body);
            let message = match self.attempt_with(endpoint, request, &mut backoff).await? {
                Ok(bytes) => return parse_reply(endpoint, &bytes),
                Err(message) => message,
            };
            // The server may have acted before the failure reached us.
            if let Some(found) = lookup().await? {
                tracing::info!(
                    endpoint,
                    attempt,
                    "MLflow made it before the reply was lost; not creating it again"
                );
                return Ok(found);
            }
            if started.elapsed() + backoff.upper() > self.config.retry_for {
                return Err(self.unreachable(endpoint, &message, attempt));
            }
            tracing::warn!(endpoint, attempt, error = %message, "MLflow create failed and made nothing; retrying");
            tokio::time::sleep(backoff.next_wait()).await;
        }
    }

    /// Sends a request built by `build`, retrying transient failures with backoff for
    /// up to `retry_for`.
    pub(crate) async fn send(
        &self,
        endpoint: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Bytes> {
        let started = Instant::now();
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let message = match self.attempt_with(endpoint, build(), &mut backoff).await? {
                Ok(bytes) => return Ok(bytes),
                Err(message) => message,
            };
            if started.elapsed() + backoff.upper() > self.config.retry_for {
                return Err(self.unreachable(endpoint, &message, attempt));
            }
            tracing::warn!(endpoint, attempt, error = %message, "MLflow call failed; retrying");
            tokio::time::sleep(backoff.next_wait()).await;
        }
    }

    fn unreachable(&self, endpoint: &str, failure: &str, attempts: u32) -> MlflowError {
        MlflowError::Unreachable {
            url: self.config.tracking_uri.clone(),
            message: format!("{endpoint}: {failure} (after {attempts} attempts)"),
        }
    }

    /// One attempt for a retry loop: `Ok(Ok(body))`, `Ok(Err(message))` when it is worth
    /// retrying (a server's `Retry-After` raises `backoff`), or the error that ends it.
    async fn attempt_with(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        backoff: &mut Backoff,
    ) -> Result<Result<Bytes, String>> {
        match self.attempt(endpoint, request).await {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Transient {
                message,
                retry_after,
            }) => {
                if let Some(wait) = retry_after {
                    backoff.at_least(wait);
                }
                Ok(Err(message))
            }
        }
    }

    /// One attempt: the reply's body, or why it failed.
    async fn attempt(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Bytes, Failure> {
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = match response.bytes().await {
                    Ok(body) => body,
                    // The reply broke off: the server may have acted.
                    Err(e) => {
                        return Err(Failure::Transient {
                            message: chain(&e),
                            retry_after: None,
                        });
                    }
                };
                if status.is_success() {
                    return Ok(body);
                }
                if status.as_u16() == 401 || status.as_u16() == 403 {
                    return Err(Failure::Fatal(MlflowError::Auth {
                        endpoint: endpoint.to_string(),
                        status: status.as_u16(),
                    }));
                }
                if status.as_u16() != 429 && !status.is_server_error() {
                    return Err(Failure::Fatal(api_error(endpoint, status.as_u16(), &body)));
                }
                Err(Failure::Transient {
                    message: format!(
                        "HTTP {status} ({})",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ),
                    retry_after,
                })
            }
            Err(e) => Err(Failure::Transient {
                message: chain(&e),
                retry_after: None,
            }),
        }
    }

    /// Every page of a list call: `items` from each reply, following
    /// `next_page_token` until the server gives none.
    pub(crate) async fn all_pages(
        &self,
        method: Method,
        endpoint: &str,
        body: Value,
        items: &str,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut body = body;
        body["max_results"] = match method {
            Method::Get => json!(self.page_size.to_string()),
            _ => json!(self.page_size),
        };
        loop {
            let reply = self.call(method, endpoint, body.clone()).await?;
            if let Some(page) = reply[items].as_array() {
                out.extend(page.iter().cloned());
            }
            match reply["next_page_token"].as_str().filter(|t| !t.is_empty()) {
                Some(token) => body["page_token"] = json!(token),
                None => return Ok(out),
            }
        }
    }
}

fn parse_reply(endpoint: &str, bytes: &[u8]) -> Result<Value> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| MlflowError::Protocol {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new();
        let mut ceiling = Duration::from_millis(200);
        for _ in 0..8 {
            let wait = backoff.next_wait();
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} vs {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(5));
        }
        backoff.at_least(Duration::from_secs(60));
        assert_eq!(backoff.upper(), Duration::from_secs(30));
        // Two clients that start together draw different waits.
        let mut other = Backoff::new();
        other.state ^= 0x9e37_79b9_7f4a_7c15;
        let a: Vec<Duration> = (0..4).map(|_| Backoff::next_wait(&mut backoff)).collect();
        let b: Vec<Duration> = (0..4).map(|_| other.next_wait()).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn client_tokens_are_unique() {
        let tokens: std::collections::BTreeSet<String> = (0..100).map(|_| client_token()).collect();
        assert_eq!(tokens.len(), 100);
    }
}
