//! kiln-serve's listeners: its own accept loop on hyper, because a server that faces
//! clients it does not control needs what `axum::serve` does not offer:
//!
//! - a **header timeout**: a request head must arrive within `header`, and a keep-alive
//!   connection idle for as long is closed (hyper starts the same timer while waiting
//!   for the next request);
//! - a **body deadline with a minimum rate** ([`BodyDeadline`]): the body's first bytes
//!   must arrive within `body`, and after that at least `min_body_rate` bytes a second on
//!   average, as Apache's mod_reqtimeout does; a client that dawdles gets 408;
//! - a **TLS handshake timeout**, TLS from files that are re-read when rotated;
//! - HTTP/2 keep-alive pings, so dead gRPC peers are noticed;
//! - **bounded shutdown**: every connection is tracked, and dropping the serving future
//!   (when the grace period is over) closes them all.

pub mod tls;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::metrics::Metrics;
pub use tls::{Tls, TlsFiles};

/// How long a client may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The request head (HTTP/1), and the idle time of a keep-alive connection.
    pub header: Duration,
    /// Until the body's first bytes; the body may take longer only at `min_body_rate`.
    pub body: Duration,
    /// Bytes a second a body must average once `body` is spent.
    pub min_body_rate: u64,
    /// The TLS handshake.
    pub handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(10),
            min_body_rate: 64 * 1024,
            handshake: Duration::from_secs(10),
        }
    }
}

/// One listener's settings.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<Tls>>,
    /// gRPC: HTTP/2 only.
    pub http2_only: bool,
    pub timeouts: Timeouts,
}

/// Serves `app` on the listener until `stop` turns true, then stops accepting and
/// waits for open connections to finish their requests. Dropping (aborting) the
/// returned future closes every connection at once.
pub async fn run(
    listener: Listener,
    app: Router,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let builder = Arc::new(Builders::new(&listener));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let connection = Connection {
                        builder: builder.clone(),
                        app: app.clone(),
                        watcher: graceful.watcher(),
                        metrics: metrics.clone(),
                        handshake: listener.timeouts.handshake,
                    };
                    connections.spawn(connection.serve(tcp, listener.tls.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut stopped => break,
        }
    }
    drop(listener.tcp);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

/// HTTP/1.1 for the REST listener (KServe's and Triton's REST clients speak it), HTTP/2
/// alone for gRPC. Each protocol's own builder: hyper's HTTP/1 header timer runs from
/// the connection's start and between keep-alive requests, which the auto-detecting
/// builder's version sniffing would bypass.
enum Builders {
    Http1(hyper::server::conn::http1::Builder),
    Http2(hyper::server::conn::http2::Builder<TokioExecutor>),
}

impl Builders {
    fn new(listener: &Listener) -> Builders {
        let t = listener.timeouts;
        if listener.http2_only {
            let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .keep_alive_interval(Some(t.header))
                .keep_alive_timeout(t.header)
                .max_concurrent_streams(256);
            Builders::Http2(b)
        } else {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(t.header)
                .keep_alive(true);
            Builders::Http1(b)
        }
    }

    async fn serve<I>(&self, io: I, app: Router, watcher: Watcher) -> Result<(), hyper::Error>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(app);
        match self {
            Builders::Http1(b) => {
                let connection = b.serve_connection(TokioIo::new(io), service);
                watcher.watch(connection).await
            }
            Builders::Http2(b) => {
                let connection = b.serve_connection(TokioIo::new(io), service);
                watcher.watch(connection).await
            }
        }
    }
}

struct Connection {
    builder: Arc<Builders>,
    app: Router,
    watcher: Watcher,
    metrics: Arc<Metrics>,
    handshake: Duration,
}

impl Connection {
    async fn serve(self, tcp: tokio::net::TcpStream, tls: Option<Arc<Tls>>) {
        let result = match tls {
            None => self.builder.serve(tcp, self.app, self.watcher).await,
            Some(tls) => {
                let stream =
                    match tokio::time::timeout(self.handshake, tls.acceptor().accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            self.metrics
                                .timeouts
                                .with_label_values(&["tls_handshake"])
                                .inc();
                            return;
                        }
                    };
                self.builder.serve(stream, self.app, self.watcher).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// The error a body gives when its client is too slow.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyTimeout(pub String);

/// The body deadline's settings, as axum middleware state.
#[derive(Clone)]
pub struct BodyLimits {
    pub timeouts: Timeouts,
    pub metrics: Arc<Metrics>,
}

/// Axum middleware: every request body gets a [`BodyDeadline`].
pub async fn body_deadline(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let request = request.map(|body| {
        Body::new(BodyDeadline {
            inner: body,
            started: Instant::now(),
            received: 0,
            sleep: Box::pin(tokio::time::sleep(limits.timeouts.body)),
            limits: limits.clone(),
        })
    });
    next.run(request).await
}

/// A request body that fails with [`BodyTimeout`] when its client falls behind: the
/// deadline is `body` after the request started, plus one second for every
/// `min_body_rate` bytes received so far.
pub struct BodyDeadline {
    inner: Body,
    started: Instant,
    received: u64,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limits: BodyLimits,
}

impl HttpBody for BodyDeadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let t = this.limits.timeouts;
                    let earned = Duration::from_secs_f64(
                        this.received as f64 / t.min_body_rate.max(1) as f64,
                    );
                    this.sleep
                        .as_mut()
                        .reset((this.started + t.body + earned).into());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.limits
                        .metrics
                        .timeouts
                        .with_label_values(&["body"])
                        .inc();
                    let t = this.limits.timeouts;
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(format!(
                        "the request body was too slow: {} bytes in {:.1} s (the body must start within {} s and then average at least {} bytes/s; --body-timeout, --min-body-rate)",
                        this.received,
                        this.started.elapsed().as_secs_f64(),
                        t.body.as_secs_f64(),
                        t.min_body_rate
                    ))))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (or one of its sources) is a [`BodyTimeout`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(inner) = cause {
        if inner.is::<BodyTimeout>() {
            return true;
        }
        cause = inner.source();
    }
    false
}
