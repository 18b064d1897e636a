//! The command-line flags of `kiln-serve` and `kiln serve` (feature `cli`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::drift::DriftOptions;
use crate::{BatchOptions, LogOptions, ModelSource, ServeOptions};

/// Flags of the model server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The model: a bundle folder or URI (`kiln-runs/adult/train/model`, `s3://…`,
    /// `/mnt/models`), a local registry reference (`adult-income@staging`,
    /// `adult-income/3`) or an MLflow one (`models:/adult-income@staging`, needs
    /// MLFLOW_TRACKING_URI).
    #[arg(long, env = "KILN_MODEL", value_name = "REF")]
    pub model: String,
    /// The name clients use in URLs (default: the registered model's name, else `model`).
    #[arg(long, env = "KILN_MODEL_NAME")]
    pub model_name: Option<String>,
    /// The local registry for `name@alias` and `name/version` references.
    #[arg(
        long,
        env = "KILN_REGISTRY",
        default_value = "kiln-runs/registry",
        value_name = "URI"
    )]
    pub registry: String,
    /// HTTP address: KServe V1, V2 REST, health, /metrics.
    #[arg(long, env = "KILN_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// V2 gRPC address.
    #[arg(long, env = "KILN_GRPC", default_value = "127.0.0.1:8081")]
    pub grpc: SocketAddr,
    /// Turn the gRPC server off.
    #[arg(long)]
    pub no_grpc: bool,
    /// Scoring threads (default: the CPUs this process may use).
    #[arg(long, env = "KILN_SCORING_THREADS")]
    pub threads: Option<usize>,
    /// Most rows scored in one pass (dynamic batching across concurrent requests).
    #[arg(long, default_value_t = 256)]
    pub max_batch_rows: usize,
    /// Longest a scoring thread waits for more requests to batch, in microseconds
    /// (0: batch only requests already waiting; never delays a request).
    #[arg(long, default_value_t = 0, value_name = "US")]
    pub max_batch_wait_us: u64,
    /// Requests waiting for a scoring thread before new ones are shed (503).
    #[arg(long, default_value_t = 1024)]
    pub queue_capacity: usize,
    /// Requests in flight before new ones are shed (503 with Retry-After).
    #[arg(long, env = "KILN_MAX_CONCURRENCY", default_value_t = 512)]
    pub max_concurrency: usize,
    /// Most rows in one request (400 beyond).
    #[arg(long, default_value_t = 10_000)]
    pub max_request_rows: usize,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Served rows in the online drift window.
    #[arg(long, default_value_t = 1000)]
    pub drift_window: usize,
    /// Rows the window needs before drift is reported.
    #[arg(long, default_value_t = 200)]
    pub drift_min_rows: usize,
    /// PSI above which an input counts as drifted.
    #[arg(long, default_value_t = 0.2)]
    pub drift_threshold: f64,
    /// Write the prediction log (Parquet) under this folder or URI (`s3://…`).
    #[arg(long, env = "KILN_LOG_PREDICTIONS", value_name = "URI")]
    pub log_predictions: Option<String>,
    /// Rows per prediction-log file (at most).
    #[arg(long, default_value_t = 10_000)]
    pub log_batch_rows: usize,
    /// Longest a logged row waits before its file is written, in milliseconds.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub log_flush_ms: u64,
    /// Requests the prediction-log buffer holds before records are dropped (and counted).
    #[arg(long, default_value_t = 65_536)]
    pub log_buffer: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, default_value_t = 20.0, value_name = "S")]
    pub shutdown_grace: f64,
}

impl ServeArgs {
    /// The server's options.
    pub fn options(&self) -> ServeOptions {
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        ServeOptions {
            model: ModelSource {
                reference: self.model.clone(),
                registry: self.registry.clone(),
                name: self.model_name.clone(),
                max_request_rows: self.max_request_rows,
            },
            http: self.http,
            grpc: (!self.no_grpc).then_some(self.grpc),
            batching: BatchOptions {
                threads,
                max_batch_rows: self.max_batch_rows,
                max_wait: Duration::from_micros(self.max_batch_wait_us),
                queue_capacity: self.queue_capacity,
            },
            max_concurrency: self.max_concurrency,
            max_body_bytes: self.max_body_bytes,
            drift: DriftOptions {
                window: self.drift_window,
                min_rows: self.drift_min_rows,
                threshold: self.drift_threshold,
            },
            log: self.log_predictions.as_ref().map(|uri| LogOptions {
                uri: uri.clone(),
                batch_rows: self.log_batch_rows,
                flush_interval: Duration::from_millis(self.log_flush_ms.max(1)),
                buffer_records: self.log_buffer,
            }),
            shutdown_grace: Duration::from_secs_f64(self.shutdown_grace.max(0.0)),
        }
    }
}
