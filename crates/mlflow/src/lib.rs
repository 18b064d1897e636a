//! # kiln-mlflow
//!
//! A typed async client for MLflow's REST API on reqwest — experiments, runs,
//! batched logging within MLflow's limits, artifact upload through the tracking
//! server's proxy, registered models, versions, aliases and tags — configured as MLflow
//! users expect (`MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN` or
//! `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`), with timeouts, retries with
//! backoff on 429, 5xx and connection errors, and MLflow's error codes as types.
//!
//! [`tracking`] logs every pipeline step to one MLflow run per pipeline run;
//! [`observer`] makes it an observer of the step driver ([`driver`]).

pub mod client;
#[cfg(feature = "tracking")]
pub mod datasets;
#[cfg(feature = "tracking")]
pub mod observer;
pub mod run;
#[cfg(feature = "tracking")]
pub mod tracking;
mod transport;

pub use client::{
    Auth, ErrorCode, Metric, MlflowClient, MlflowConfig, MlflowError, ModelVersion, RunInfo, Tag,
    split_credentials,
};
#[cfg(feature = "tracking")]
pub use observer::Tracking;
pub use run::{RUN_FILE, RunLink, TrackedRun, ensure_run, finish_run};
#[cfg(feature = "tracking")]
pub use tracking::log_step;
