//! Kiln's SLOs.
//!
//! - [`spec`]: Sloth's `prometheus/v1` SLO spec, read and validated.
//! - [`windows`]: the SLO period and the multiwindow alert windows (Sloth's
//!   `AlertWindows`, with its 30d and 28d defaults).
//! - [`rules`]: Prometheus rules with Sloth's names and semantics, as a rule file or a
//!   prometheus-operator `PrometheusRule`.
//! - [`check`]: each SLO's SLI, budget and burn rates from a live Prometheus.
//! - [`dashboards`]: the Grafana dashboards, the SLO one built from the spec.
//! - [`probe`]: the throughput SLO's fixed-rate load check.

pub mod check;
pub mod dashboards;
pub mod error;
pub mod probe;
pub use kiln_prometheus as prometheus;
pub mod rules;
pub mod spec;
pub mod windows;

#[cfg(feature = "cli")]
pub mod args;
#[cfg(feature = "cli")]
mod command;

#[cfg(feature = "cli")]
pub use command::execute;
pub use error::{Result, SloError};
