//! # kiln-prometheus
//!
//! A small client of Prometheus's HTTP API, what Kiln's SLO check and its rollout
//! controller read their verdicts from: instant queries (vectors and scalars, with
//! `NaN` and the infinities as Prometheus spells them), and Prometheus's duration
//! syntax. It links no Kiln crate.

mod client;
mod duration;

pub use client::{PrometheusClient, Sample, error_chain};
pub use duration::PromDuration;

/// What can go wrong asking Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The server's URL (or the HTTP client built for it) is invalid.
    #[error("{0}")]
    Usage(String),
    /// Prometheus could not be reached at all.
    #[error("{url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// Prometheus answered, but not with what its HTTP API documents.
    #[error("Prometheus at {url}: {message}")]
    Api { url: String, message: String },
}

pub type Result<T, E = PrometheusError> = std::result::Result<T, E>;
