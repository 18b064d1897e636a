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
    /// Request bytes in memory, in KiB (tokio's permits are counted in u32).
    memory: Arc<Semaphore>,
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

/// Memory reserved for one request's body while it is read, decoded and scored.
pub struct MemoryReservation {
    _permit: OwnedSemaphorePermit,
}

/// The settings of [`AppState`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests being scored at once before new ones are shed.
    pub max_concurrency: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Request bodies in memory at once (their declared length, or the body limit when
    /// undeclared) before new requests are shed.
    pub max_inflight_bytes: usize,
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
        limits: Limits,
    ) -> Self {
        let id_prefix = format!("{:x}", chrono::Utc::now().timestamp_millis());
        AppState {
            inner: Arc::new(Inner {
                model,
                engine,
                monitor,
                metrics,
                limit: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
                memory: Arc::new(Semaphore::new(kib(limits.max_inflight_bytes) as usize)),
                max_body_bytes: limits.max_body_bytes,
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

    /// Reserves memory for a body of `declared` bytes (the body limit when the client
    /// did not say), or sheds the request at once when the server holds too many bytes.
    pub fn reserve_memory(&self, declared: Option<u64>) -> Result<MemoryReservation, ServeError> {
        let limit = self.inner.max_body_bytes;
        let bytes = declared.map_or(limit, |d| (d as usize).min(limit));
        self.inner
            .memory
            .clone()
            .try_acquire_many_owned(kib(bytes))
            .map(|permit| MemoryReservation { _permit: permit })
            .map_err(|_| {
                self.inner
                    .metrics
                    .shed
                    .with_label_values(&["memory"])
                    .inc();
                ServeError::Unavailable(
                    "overloaded: too many request bytes in memory (--max-inflight-bytes); retry later"
                        .into(),
                )
            })
    }

    /// Lets a request in for scoring, or sheds it at once when the server is at its limit.
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

    /// Counts a finished inference request. A request shed with 503 is counted (it
    /// spends the availability budget) but not timed: it was refused, not served, and
    /// its near-zero duration must not make the latency SLI look better.
    pub fn record(&self, protocol: &'static str, code: u16, started: Instant) {
        let metrics = &self.inner.metrics;
        metrics
            .requests
            .with_label_values(&[protocol, &self.inner.model.version, &code.to_string()])
            .inc();
        if code != 503 {
            metrics
                .request_duration
                .with_label_values(&[protocol, &self.inner.model.version])
                .observe(started.elapsed().as_secs_f64());
        }
    }
}

/// Bytes as KiB permits, rounded up (at least one), within a semaphore's range.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 3)
}
