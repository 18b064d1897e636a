//! Kiln's canary rollout.
//!
//! KServe splits traffic by `canaryTrafficPercent` but never rolls back on errors or
//! latency by itself; this crate is the analysis that does. A rollout gives the new
//! version 10 % of the traffic, checks its 5xx ratio and p99 latency against the
//! stable version's every interval from Prometheus, and promotes it (100 %, the
//! `production` alias) or rolls it back (0 %, the alias on the stable version). It
//! never promotes without data.
//!
//! - [`settings`]: intervals, limits, thresholds and the PromQL templates.
//! - [`analysis`]: one check's verdict from the numbers.
//! - [`rollout`]: the loop, from the first traffic to the decision.
//! - [`router`]: KServe (Kubernetes API patches) and HAProxy (runtime API).
//! - [`report`]: what `rollout.json` holds.
//! - [`pinning`]: a rendered manifest's aliases resolved to versions and bundle digests.
//! - [`tracking`]: the rollout as an MLflow run.
//! - [`smoke`]: the deploy workflow's V2 request against a new revision.
//!
//! Exit codes: 0 promoted; 3 rolled back or halted without data (not retryable);
//! 75 Prometheus, the router or the Kubernetes API unreachable (retryable); 2 usage.

pub mod analysis;
#[cfg(feature = "cli")]
pub mod args;
#[cfg(feature = "cli")]
pub mod command;
pub mod error;
pub mod pinning;
pub mod report;
pub mod rollout;
pub mod router;
pub mod settings;
pub mod smoke;
pub mod tracking;

#[cfg(feature = "cli")]
pub use command::execute;
pub use error::{Result, RolloutError};
pub use rollout::{Finished, Plan, Rollout};
