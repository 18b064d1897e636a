//! What every protocol shares: admission (the concurrency limit that sheds load at
//! once), scoring through the engine, and the request metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::{Engine, JobContext};
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::model::{Scored, SharedModel};
use crate::monitor::Monitor;

/// The name and version `GET /v2` reports.
pub const SERVER_NAME: &str = "kiln-serve";
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// State shared by the HTTP and gRPC handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    model: SharedModel,
    engine: Engine,
    monitor: Arc<Monitor>,
    metrics: Arc<Metrics>,
    limit: Arc<Semaphore>,
    max_body_bytes: usize,
    next_id: AtomicU64,
    id_prefix: String,
}

/// A request that was let in: holds its concurrency permit and the in-flight gauge.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
    pub started: Instant,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// The outputs of one scored request and the id it was served under.
pub struct Inference {
    pub scored: Scored,
    pub request_id: String,
}

impl AppState {
    pub fn new(
        model: SharedModel,
        engine: Engine,
        monitor: Arc<Monitor>,
        metrics: Arc<Metrics>,
        max_concurrency: usize,
        max_body_bytes: usize,
    ) -> Self {
        let id_prefix = format!("{:x}", chrono::Utc::now().timestamp_millis());
        AppState {
            inner: Arc::new(Inner {
                model,
                engine,
                monitor,
                metrics,
                limit: Arc::new(Semaphore::new(max_concurrency.max(1))),
                max_body_bytes,
                next_id: AtomicU64::new(1),
                id_prefix,
            }),
        }
    }

    pub fn model(&self) -> &SharedModel {
        &self.inner.model
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.inner.monitor
    }

    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// Lets a request in, or sheds it at once when the server is at its limit.
    pub fn admit(&self) -> Result<Admission, ServeError> {
        let permit = self.inner.limit.clone().try_acquire_owned().map_err(|_| {
            self.inner
                .metrics
                .shed
                .with_label_values(&["concurrency"])
                .inc();
            ServeError::Unavailable(
                "overloaded: too many requests in flight (--max-concurrency); retry later".into(),
            )
        })?;
        self.inner.metrics.in_flight.inc();
        Ok(Admission {
            _permit: permit,
            metrics: self.inner.metrics.clone(),
            started: Instant::now(),
        })
    }

    /// Checks that `name` (and `version`, if given) is the served model.
    pub fn check_model(&self, name: &str, version: Option<&str>) -> Result<(), ServeError> {
        let model = &self.inner.model;
        if name != model.name {
            return Err(ServeError::NotFound(format!(
                "model `{name}` not found; this server serves `{}`",
                model.name
            )));
        }
        match version {
            Some(v) if !v.is_empty() && v != model.version => Err(ServeError::NotFound(format!(
                "model `{name}` has no version `{v}`; it serves version `{}`",
                model.version
            ))),
            _ => Ok(()),
        }
    }

    /// The request id: the client's, else a new one.
    pub fn request_id(&self, given: Option<&str>) -> String {
        match given {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!(
                "{}-{}",
                self.inner.id_prefix,
                self.inner.next_id.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// Decodes (timed as preprocess) and scores (timed as predict) a request.
    pub async fn infer(
        &self,
        protocol: &'static str,
        request_id: String,
        decode: impl FnOnce(&crate::inputs::InputSchema) -> Result<RecordBatch, ServeError>,
    ) -> Result<Inference, ServeError> {
        let started = Instant::now();
        let batch = decode(&self.inner.model.inputs)?;
        let metrics = &self.inner.metrics;
        metrics.preprocess.observe(started.elapsed().as_secs_f64());
        metrics.request_rows.observe(batch.num_rows() as f64);
        let context = JobContext {
            request_id: request_id.clone(),
            protocol,
        };
        let reply = self.inner.engine.score(batch, context).await;
        if reply.predict > Duration::ZERO {
            metrics.predict.observe(reply.predict.as_secs_f64());
        }
        if let Err(ServeError::Unavailable(_)) = &reply.result {
            metrics.shed.with_label_values(&["queue"]).inc();
        }
        Ok(Inference {
            scored: reply.result?,
            request_id,
        })
    }

    /// Counts a finished inference request.
    pub fn record(&self, protocol: &'static str, code: u16, started: Instant) {
        let metrics = &self.inner.metrics;
        metrics
            .requests
            .with_label_values(&[protocol, &self.inner.model.version, &code.to_string()])
            .inc();
        metrics
            .request_duration
            .with_label_values(&[protocol, &self.inner.model.version])
            .observe(started.elapsed().as_secs_f64());
    }
}
