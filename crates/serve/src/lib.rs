//! # kiln-serve
//!
//! The model server for Kiln's bundles: what KServe runs as a custom predictor and what
//! a data scientist starts on a laptop with `kiln serve --model adult-income@staging`.
//!
//! - Loads exactly a bundle ([`model::ServedModel`]): a folder or store URI, a local
//!   registry reference (`adult-income@staging`, `adult-income/3`) or an MLflow one
//!   (`models:/adult-income@staging`). Ready only after one self-check prediction.
//! - Scores through the bundle's own transform, burn model and decision policy, the
//!   code paths evaluate uses, so served scores equal evaluate's.
//! - Speaks KServe V1 and the Open Inference Protocol (V2) over REST ([`http`]) and
//!   gRPC ([`grpc`]); malformed requests get a 4xx naming what was wrong.
//! - Scores on its own threads with dynamic batching ([`engine`]); sheds load at once
//!   past a concurrency limit or a full queue (503 with `Retry-After`).
//! - Exposes `/metrics` on a separate admin listener ([`metrics`]): KServe's stage
//!   histograms, requests by code and version, in-flight and shed requests, decisions,
//!   scores, online drift ([`drift`]).
//! - Faces clients it does not control ([`net`]): header and body timeouts with a
//!   minimum body rate, a scoring slot only once the body is in, request memory bounded
//!   in bytes, optional TLS (re-read on rotation, optional client certificates) and
//!   bearer tokens ([`auth`]). A listener off loopback with neither TLS nor tokens is
//!   refused unless the operator says `--insecure` (a mesh sidecar terminates mTLS).
//! - Takes the features a request cannot carry (an entity's history aggregates) from
//!   a feature table by the entity's key ([`lookup`]), refreshed while serving.
//! - Logs predictions as Parquet to the object store, off the request path ([`predlog`]).
//! - On SIGTERM stops accepting, finishes in-flight requests within the grace period,
//!   closes whatever connection is still open when it ends, flushes the prediction log
//!   and returns.

pub mod auth;
pub mod drift;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod http;
pub mod inputs;
pub mod lookup;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod net;
pub mod predlog;
pub mod service;

#[cfg(feature = "cli")]
pub mod args;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_core::{Error, Result};

pub use engine::BatchOptions;
pub use error::ServeError;
pub use model::{ModelSource, ServedModel};
pub use predlog::LogOptions;

use crate::drift::DriftOptions;
use crate::engine::{Engine, JobContext};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::service::AppState;

/// Everything `kiln serve` is told.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model: ModelSource,
    /// HTTP (V1, V2 REST, health).
    pub http: SocketAddr,
    /// V2 gRPC; `None` turns it off.
    pub grpc: Option<SocketAddr>,
    /// Health and `/metrics`.
    pub admin: SocketAddr,
    pub security: Security,
    pub timeouts: net::Timeouts,
    pub batching: BatchOptions,
    pub limits: service::Limits,
    pub drift: DriftOptions,
    pub log: Option<LogOptions>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How often the feature table's version is checked (`None`: never).
    pub feature_refresh: Option<Duration>,
}

/// Who may call the inference listeners.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS on the HTTP and gRPC listeners.
    pub tls: Option<net::TlsFiles>,
    /// Bearer tokens, one per line, re-read when the file changes.
    pub token_file: Option<std::path::PathBuf>,
    /// Allow a listener off loopback with neither TLS nor tokens.
    pub insecure: bool,
}

/// The addresses a started server listens on (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    pub admin: SocketAddr,
}

/// Refuses an inference listener off loopback that nobody authenticates or encrypts.
fn check_exposure(options: &ServeOptions) -> Result<()> {
    let security = &options.security;
    if security.insecure || security.tls.is_some() || security.token_file.is_some() {
        return Ok(());
    }
    for (what, addr) in [("--http", Some(options.http)), ("--grpc", options.grpc)] {
        if let Some(addr) = addr
            && !addr.ip().is_loopback()
        {
            return Err(Error::usage(format!(
                "refusing to serve {what} {addr} off loopback without TLS or authentication: give --tls-cert and --tls-key, or --auth-token-file, or --insecure when a sidecar (Istio) terminates mTLS in front of the server"
            )));
        }
    }
    Ok(())
}

/// How often the TLS and token files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Loads the model, binds, serves until `shutdown` resolves (or SIGTERM/SIGINT when
/// `None`), then drains. `on_ready` is called once the server answers ready.
pub async fn serve(
    options: ServeOptions,
    shutdown: Option<tokio::sync::oneshot::Receiver<()>>,
    on_ready: impl FnOnce(Bound),
) -> Result<()> {
    let started = Instant::now();
    check_exposure(&options)?;
    let security = &options.security;
    let tls = |alpn: &[&[u8]]| -> Result<Option<Arc<net::Tls>>> {
        security
            .tls
            .clone()
            .map(|files| net::Tls::load(files, alpn).map(Arc::new))
            .transpose()
            .map_err(Error::usage)
    };
    let http_tls = tls(&[b"http/1.1"])?;
    let grpc_tls = tls(&[b"h2"])?;
    let tokens = security
        .token_file
        .as_deref()
        .map(|path| auth::Tokens::load(path).map(Arc::new))
        .transpose()
        .map_err(Error::usage)?;
    let model = Arc::new(ServedModel::load(&options.model).await?);
    let metrics = Arc::new(Metrics::new(&model.name));
    metrics
        .model_info
        .with_label_values(&[&model.version, &model.bundle_sha256])
        .set(1);
    let (log, writer) = match &options.log {
        Some(log) => {
            let (sender, writer) = predlog::start(
                log.clone(),
                model.inputs.arrow.clone(),
                model.name.clone(),
                model.version.clone(),
                metrics.clone(),
            )?;
            (Some(sender), Some(writer))
        }
        None => (None, None),
    };
    let monitor = Arc::new(Monitor::new(&model, metrics.clone(), options.drift, log));
    let fatal = engine::Fatal::default();
    let (engine, threads) = Engine::start(
        model.clone(),
        options.batching,
        metrics.clone(),
        monitor.clone(),
        fatal.clone(),
    )
    .map_err(|e| Error::io("starting the scoring threads", e))?;
    self_check(&model, &engine).await?;
    let state = AppState::new(
        model.clone(),
        engine,
        monitor.clone(),
        metrics.clone(),
        options.limits,
    );

    let bind = |addr: SocketAddr, what: &'static str| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::usage(format!("cannot listen on {addr} ({what}): {e}")))
    };
    let http = bind(options.http, "HTTP").await?;
    let grpc = match options.grpc {
        Some(addr) => Some(bind(addr, "gRPC").await?),
        None => None,
    };
    let admin = bind(options.admin, "admin").await?;
    let bound = Bound {
        http: http
            .local_addr()
            .map_err(|e| Error::io("HTTP address", e))?,
        grpc: grpc.as_ref().and_then(|l| l.local_addr().ok()),
        admin: admin
            .local_addr()
            .map_err(|e| Error::io("admin address", e))?,
    };
    metrics.ready.set(1);
    tracing::info!(
        model = %model.name,
        version = %model.version,
        source = %model.source,
        http = %bound.http,
        grpc = ?bound.grpc,
        admin = %bound.admin,
        tls = http_tls.is_some(),
        client_certificates = security.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        bearer_tokens = tokens.is_some(),
        ready_ms = started.elapsed().as_millis() as u64,
        "serving"
    );
    on_ready(bound);

    // One signal fans out to every listener.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let guard = auth::Guard {
        tokens: tokens.clone(),
        metrics: metrics.clone(),
    };
    let body_limits = net::BodyLimits {
        timeouts: options.timeouts,
        metrics: metrics.clone(),
    };
    let listener = |tcp, tls, http2_only| net::Listener {
        tcp,
        tls,
        http2_only,
        timeouts: options.timeouts,
    };
    let mut http_task = tokio::spawn(net::run(
        listener(http, http_tls.clone(), false),
        http::router(state.clone(), guard.clone(), body_limits.clone()),
        metrics.clone(),
        stop_rx.clone(),
    ));
    let mut grpc_task = grpc.map(|tcp| {
        let routes = tonic::service::Routes::new(grpc::InferenceService::new(state.clone()));
        let app = routes
            .prepare()
            .into_axum_router()
            .layer(axum::middleware::from_fn_with_state(
                guard.clone(),
                auth::grpc,
            ))
            .layer(axum::middleware::from_fn_with_state(
                body_limits.clone(),
                net::body_deadline,
            ));
        tokio::spawn(net::run(
            listener(tcp, grpc_tls.clone(), true),
            app,
            metrics.clone(),
            stop_rx.clone(),
        ))
    });
    // The admin listener answers until the process ends: probes and the last scrape
    // see the drain.
    let (_admin_stop, admin_stop_rx) = tokio::sync::watch::channel(false);
    let admin_task = tokio::spawn(net::run(
        listener(admin, None, false),
        http::admin_router(state.clone()),
        metrics.clone(),
        admin_stop_rx,
    ));
    let reloader = tokio::spawn(reload_files(
        [http_tls.clone(), grpc_tls.clone()],
        tokens.clone(),
    ));
    let features = model.inputs.lookup.as_ref().and_then(|l| l.store.clone());
    let feature_refresh = features.and_then(|store| {
        store.attach(metrics.clone());
        options
            .feature_refresh
            .map(|every| tokio::spawn(store.refresh_every(every)))
    });
    drop(state);

    tokio::select! {
        () = wait_for_stop(shutdown) => {}
        message = fatal.wait() => tracing::error!(%message, "stopping: a scoring thread panicked; the model is not ready"),
    }
    tracing::info!(
        grace_s = options.shutdown_grace.as_secs_f64(),
        "stopping: no new connections, finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drain = async {
        let _ = (&mut http_task).await;
        if let Some(task) = grpc_task.as_mut() {
            let _ = task.await;
        }
    };
    let drained = tokio::time::timeout(options.shutdown_grace, drain)
        .await
        .is_ok();
    if !drained {
        // Clients that still hold a connection (a stuck upload, a request that never
        // ends) do not keep the process: it exits now, as Kubernetes would make it.
        tracing::warn!(
            "in-flight requests did not finish within the grace period: closing their connections"
        );
        http_task.abort();
        if let Some(task) = &grpc_task {
            task.abort();
        }
    }
    // No new log record from here on: the writer writes what it holds (or counts what
    // it could not write) and ends, even while a cut connection's state lingers.
    monitor.close_log();
    drop(monitor);
    if let Some(writer) = writer {
        writer.finish().await;
    }
    // The admin listener holds the state too: gone before the threads are waited for.
    admin_task.abort();
    let _ = admin_task.await;
    reloader.abort();
    if let Some(task) = feature_refresh {
        task.abort();
    }
    if drained {
        // Every connection is gone, and with them the engine's senders: the scoring
        // threads end. After a cut, a lingering connection may still hold one, so the
        // threads end with the process instead of being waited for.
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
    if let Some(message) = fatal.message() {
        return Err(Error::Invalid(format!(
            "stopped after a scoring thread panicked ({message}): exiting non-zero so that the pod is restarted"
        )));
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads rotated TLS and token files, off the async workers.
async fn reload_files(tls: [Option<Arc<net::Tls>>; 2], tokens: Option<Arc<auth::Tokens>>) {
    if tls.iter().all(Option::is_none) && tokens.is_none() {
        return;
    }
    let mut every = tokio::time::interval(RELOAD_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (tls, tokens) = (tls.clone(), tokens.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for t in tls.iter().flatten() {
                t.reload_if_changed();
            }
            if let Some(t) = &tokens {
                t.reload_if_changed();
            }
        })
        .await;
    }
}

async fn wait_for_stop(shutdown: Option<tokio::sync::oneshot::Receiver<()>>) {
    if let Some(rx) = shutdown {
        let _ = rx.await;
        return;
    }
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
}

/// Scores one typical row before the server says it is ready.
async fn self_check(model: &ServedModel, engine: &Engine) -> Result<()> {
    let row = model.typical_row();
    let batch = model
        .inputs
        .from_records(std::slice::from_ref(&row))
        .map_err(|e| Error::Invalid(format!("self-check row {row}: {e}")))?;
    let context = JobContext {
        request_id: "self-check".into(),
        protocol: engine::SELF_CHECK,
    };
    let reply = engine.score(batch, context).await;
    match reply.result {
        Ok(scored) if scored.probabilities.iter().all(|p| (0.0..=1.0).contains(p)) => {
            tracing::debug!(probability = scored.probabilities[0], "self-check passed");
            Ok(())
        }
        Ok(scored) => Err(Error::Invalid(format!(
            "self-check: the model scored {:?}, not a probability",
            scored.probabilities
        ))),
        Err(e) => Err(Error::Invalid(format!("self-check failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_testkit::{MODEL, http_request, pipeline, predict_path, v1_body};
    use std::sync::atomic::Ordering;

    /// The fault hook ([`engine::PANIC_ON_ROWS`]) exists only in this crate's tests.
    #[test]
    fn a_scoring_panic_answers_500_marks_the_model_not_ready_and_ends_the_server_non_zero() {
        let p = pipeline();
        engine::PANIC_ON_ROWS.store(13, Ordering::SeqCst);
        let grace = Duration::from_secs(2);
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let options = ServeOptions {
            model: ModelSource {
                reference: format!("{MODEL}@staging"),
                registry: p.registry.to_str().expect("path").into(),
                name: None,
                max_request_rows: 10_000,
                bundle_sha256: None,
                verify_with: None,
                feature_table: None,
            },
            http: loopback(0),
            grpc: None,
            admin: loopback(0),
            security: Security::default(),
            timeouts: net::Timeouts::default(),
            batching: BatchOptions {
                threads: 2,
                max_batch_rows: 256,
                max_wait: Duration::ZERO,
                queue_capacity: 64,
            },
            limits: service::Limits {
                max_concurrency: 64,
                max_body_bytes: 1 << 20,
                max_inflight_bytes: 1 << 24,
            },
            drift: DriftOptions {
                window: 100,
                min_rows: 10,
                max_idle: Duration::from_secs(300),
                threshold: 0.2,
            },
            log: None,
            shutdown_grace: grace,
            feature_refresh: None,
        };
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (_stop, stop_rx) = tokio::sync::oneshot::channel();
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let result = runtime.block_on(serve(options, Some(stop_rx), move |b| {
                let _ = bound_tx.send(b);
            }));
            (result, Instant::now())
        });
        let bound = bound_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serving");
        let http = bound.http.to_string();
        let admin = bound.admin.to_string();
        let post = |rows: usize| {
            http_request(
                &http,
                "POST",
                &predict_path(),
                &v1_body(&p.rows[..rows]),
                Duration::from_secs(10),
            )
            .expect("answer")
        };
        assert_eq!(post(12).0, 200);
        // A client stuck mid-upload keeps the drain busy for the grace period, so the
        // not-ready state can be observed before the process ends.
        let mut stuck = std::net::TcpStream::connect(&http).expect("connect");
        std::io::Write::write_all(
            &mut stuck,
            format!(
                "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{",
                predict_path()
            )
            .as_bytes(),
        )
        .expect("send");
        let (status, text) = post(13);
        assert_eq!(status, 500, "{text}");
        assert!(text.contains("injected scoring fault"), "{text}");
        let failed = Instant::now();
        let ready = |addr: &str| {
            http_request(addr, "GET", "/v2/health/ready", b"", Duration::from_secs(5)).map(|r| r.0)
        };
        // The admin listener answers until the process ends; the inference listener
        // answers 503 or has already stopped accepting.
        assert_eq!(ready(&admin), Some(503), "not ready on the admin listener");
        assert!(matches!(ready(&http), Some(503) | None));
        let later = http_request(
            &http,
            "POST",
            &predict_path(),
            &v1_body(&p.rows[..12]),
            Duration::from_secs(10),
        );
        assert!(
            matches!(later.as_ref().map(|r| r.0), Some(503) | None),
            "later requests are refused: {later:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the server kept running after the panic"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (result, ended) = server.join().expect("server thread");
        let e = result.expect_err("a failed server ends with an error");
        assert!(e.to_string().contains("a scoring thread panicked"), "{e}");
        assert_ne!(e.class().code(), 0, "non-zero exit");
        assert!(ended - failed <= grace + Duration::from_secs(1));
        drop(stuck);
        engine::PANIC_ON_ROWS.store(0, Ordering::SeqCst);
    }
}
