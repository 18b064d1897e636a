//! The command-line flags of `kiln-serve` and `kiln serve` (feature `cli`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::drift::DriftOptions;
use crate::net::{Timeouts, TlsFiles};
use crate::service::Limits;
use crate::{BatchOptions, LogOptions, ModelSource, Security, ServeOptions};

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
    /// The digest the bundle must have (the registry's `kiln.bundle_sha256` tag);
    /// a bundle with any other is refused at load (exit 2).
    #[arg(long, env = "KILN_BUNDLE_SHA256", value_name = "SHA256")]
    pub bundle_sha256: Option<String>,
    /// A PEM public key (P-256, P-384 or P-521): load only a bundle whose OMS
    /// signature (`model.sig`) verifies with it; an unsigned or changed bundle is
    /// refused at load (exit 2), before its files are decoded.
    #[arg(long, env = "KILN_VERIFY_WITH", value_name = "PUBLIC_KEY")]
    pub verify_with: Option<String>,
    /// The local registry for `name@alias` and `name/version` references.
    #[arg(
        long,
        env = "KILN_REGISTRY",
        default_value = "kiln-runs/registry",
        value_name = "URI"
    )]
    pub registry: String,
    /// HTTP address: KServe V1, V2 REST, health.
    #[arg(long, env = "KILN_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// V2 gRPC address.
    #[arg(long, env = "KILN_GRPC", default_value = "127.0.0.1:8081")]
    pub grpc: SocketAddr,
    /// Turn the gRPC server off.
    #[arg(long)]
    pub no_grpc: bool,
    /// Admin address: health and /metrics (plain HTTP, no token).
    #[arg(long, env = "KILN_ADMIN", default_value = "127.0.0.1:8082")]
    pub admin: SocketAddr,
    /// PEM certificate chain: serve HTTP and gRPC over TLS (re-read when it changes).
    #[arg(long, env = "KILN_TLS_CERT", requires = "tls_key", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KILN_TLS_KEY", requires = "tls_cert", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: require client certificates signed by them (mutual TLS).
    #[arg(
        long,
        env = "KILN_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PATH"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Bearer tokens, one per line: V1, V2 REST and gRPC calls must send one
    /// (`authorization: Bearer <token>`). Re-read when the file changes.
    #[arg(long, env = "KILN_AUTH_TOKEN_FILE", value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,
    /// Allow listening off loopback with neither TLS nor tokens (a mesh sidecar such as
    /// Istio's terminates mTLS and authorises callers in front of the server).
    #[arg(long, env = "KILN_INSECURE")]
    pub insecure: bool,
    /// Seconds a client may take to send a request head; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub header_timeout: f64,
    /// Seconds a request body may take to start; after that it must average
    /// --min-body-rate (408 otherwise).
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub body_timeout: f64,
    /// Bytes per second a request body must average once --body-timeout is spent.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub min_body_rate: u64,
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
    /// Largest request body in bytes (413 beyond); also gRPC's largest message.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Request bytes held in memory at once (declared body lengths, or
    /// --max-body-bytes when undeclared) before new requests are shed (503). Keep it
    /// well under the pod's memory limit.
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub max_inflight_bytes: usize,
    /// Served rows in the online drift window.
    #[arg(long, default_value_t = 1000)]
    pub drift_window: usize,
    /// Rows the window needs before drift is reported.
    #[arg(long, default_value_t = 200)]
    pub drift_min_rows: usize,
    /// Seconds without a served row after which drift reads "no data" (NaN).
    #[arg(long, default_value_t = 300.0, value_name = "S")]
    pub drift_max_idle: f64,
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
    /// Bytes of served rows the prediction-log buffer holds before records are dropped
    /// (and counted).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub log_buffer_bytes: usize,
    /// Local folder where prediction-log files wait while the store is unreachable
    /// (re-sent when it is back; default: kiln-prediction-log/<hash of the URI> under
    /// the temp folder).
    #[arg(long, env = "KILN_LOG_SPILL_DIR", value_name = "PATH")]
    pub log_spill_dir: Option<PathBuf>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, default_value_t = 20.0, value_name = "S")]
    pub shutdown_grace: f64,
    /// The feature table (Parquet: the key and the looked-up columns, one row per key;
    /// prepare's `features.parquet`) for a model whose transform looks features up by
    /// key: a request may then leave those columns out.
    #[arg(long, env = "KILN_FEATURE_TABLE", value_name = "URI")]
    pub feature_table: Option<String>,
    /// How often to check the feature table for a new version (seconds; 0: never).
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub feature_refresh: f64,
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
                bundle_sha256: self.bundle_sha256.clone(),
                verify_with: self.verify_with.clone(),
                feature_table: self.feature_table.clone(),
            },
            http: self.http,
            grpc: (!self.no_grpc).then_some(self.grpc),
            admin: self.admin,
            security: Security {
                tls: self
                    .tls_cert
                    .clone()
                    .zip(self.tls_key.clone())
                    .map(|(cert, key)| TlsFiles {
                        cert,
                        key,
                        client_ca: self.tls_client_ca.clone(),
                    }),
                token_file: self.auth_token_file.clone(),
                insecure: self.insecure,
            },
            timeouts: Timeouts {
                header: seconds(self.header_timeout),
                body: seconds(self.body_timeout),
                min_body_rate: self.min_body_rate,
                handshake: seconds(self.header_timeout),
            },
            batching: BatchOptions {
                threads,
                max_batch_rows: self.max_batch_rows,
                max_wait: Duration::from_micros(self.max_batch_wait_us),
                queue_capacity: self.queue_capacity,
            },
            limits: Limits {
                max_concurrency: self.max_concurrency,
                max_body_bytes: self.max_body_bytes,
                max_inflight_bytes: self.max_inflight_bytes,
            },
            drift: DriftOptions {
                window: self.drift_window,
                min_rows: self.drift_min_rows,
                max_idle: seconds(self.drift_max_idle),
                threshold: self.drift_threshold,
            },
            log: self.log_predictions.as_ref().map(|uri| LogOptions {
                uri: uri.clone(),
                batch_rows: self.log_batch_rows,
                flush_interval: Duration::from_millis(self.log_flush_ms.max(1)),
                buffer_bytes: self.log_buffer_bytes,
                spill_dir: self.log_spill_dir.clone().unwrap_or_else(|| {
                    // One folder per log URI: servers sharing a machine never re-send
                    // each other's files to the wrong store.
                    use sha2::Digest;
                    let key = sha2::Sha256::digest(uri.as_bytes());
                    std::env::temp_dir()
                        .join("kiln-prediction-log")
                        .join(format!("{key:x}").get(..16).unwrap_or_default())
                }),
            }),
            shutdown_grace: seconds(self.shutdown_grace),
            feature_refresh: (self.feature_refresh > 0.0).then(|| seconds(self.feature_refresh)),
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}
