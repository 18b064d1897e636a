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
//! - Exposes `/metrics` ([`metrics`]): KServe's stage histograms, requests by code and
//!   version, in-flight and shed requests, decisions, scores, online drift ([`drift`]).
//! - Logs predictions as Parquet to the object store, off the request path ([`predlog`]).
//! - On SIGTERM stops accepting, finishes in-flight requests within the grace period,
//!   flushes the prediction log and returns.

pub mod drift;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod http;
pub mod inputs;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod predlog;
pub mod service;

#[cfg(feature = "cli")]
pub mod args;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
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
    /// HTTP (V1, V2 REST, health, metrics).
    pub http: SocketAddr,
    /// V2 gRPC; `None` turns it off.
    pub grpc: Option<SocketAddr>,
    pub batching: BatchOptions,
    /// Requests in flight before new ones are shed (503).
    pub max_concurrency: usize,
    pub max_body_bytes: usize,
    pub drift: DriftOptions,
    pub log: Option<LogOptions>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

/// The addresses a started server listens on (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
}

/// Loads the model, binds, serves until `shutdown` resolves (or SIGTERM/SIGINT when
/// `None`), then drains. `on_ready` is called once the server answers ready.
pub async fn serve(
    options: ServeOptions,
    shutdown: Option<tokio::sync::oneshot::Receiver<()>>,
    on_ready: impl FnOnce(Bound),
) -> Result<()> {
    let started = Instant::now();
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
    let (engine, threads) = Engine::start(
        model.clone(),
        options.batching,
        metrics.clone(),
        monitor.clone(),
    )
    .map_err(|e| Error::io("starting the scoring threads", e))?;
    self_check(&model, &engine).await?;
    let state = AppState::new(
        model.clone(),
        engine,
        monitor.clone(),
        metrics.clone(),
        options.max_concurrency,
        options.max_body_bytes,
    );

    let http = tokio::net::TcpListener::bind(options.http)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {} (HTTP): {e}", options.http)))?;
    let grpc = match options.grpc {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::usage(format!("cannot listen on {addr} (gRPC): {e}")))?,
        ),
        None => None,
    };
    let bound = Bound {
        http: http
            .local_addr()
            .map_err(|e| Error::io("HTTP address", e))?,
        grpc: grpc.as_ref().and_then(|l| l.local_addr().ok()),
    };
    metrics.ready.set(1);
    tracing::info!(
        model = %model.name,
        version = %model.version,
        source = %model.source,
        http = %bound.http,
        grpc = ?bound.grpc,
        ready_ms = started.elapsed().as_millis() as u64,
        "serving"
    );
    on_ready(bound);

    // One signal fans out to both servers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // TCP_NODELAY: small responses must not wait for Nagle's algorithm.
    let nodelay = |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    };
    let http_server = axum::serve(http.tap_io(nodelay), http::router(state.clone()))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let mut http_task = tokio::spawn(async move { http_server.await });
    let mut grpc_task = grpc.map(|listener| {
        let routes = tonic::service::Routes::new(grpc::InferenceService::new(state.clone()));
        let server = axum::serve(
            listener.tap_io(nodelay),
            routes.prepare().into_axum_router(),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()));
        tokio::spawn(async move { server.await })
    });
    drop(state);

    wait_for_stop(shutdown).await;
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
    tracing::info!("stopped");
    Ok(())
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
