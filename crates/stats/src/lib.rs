//! # kiln-stats
//!
//! The statistics Kiln computes over its data and its predictions:
//!
//! - [`sketch`]: a mergeable quantile sketch with a fixed memory bound;
//! - [`profile`]: the column profiles prepare writes to `profile.json`, the reference
//!   for validate's drift checks and the model server's skew checks;
//! - [`metrics`]: binary-classification metrics as scikit-learn computes them;
//! - [`bootstrap`]: seeded Poisson-bootstrap intervals for ROC AUC and F1;
//! - [`drift`]: the bins and the PSI offline and online drift share.
//!
//! The shapes these produce for artifacts (confusion counts, calibration, intervals)
//! are contracts and live in `kiln_core::contracts::measures`; they are re-exported
//! here beside the functions that compute them.

pub mod bootstrap;
pub mod drift;
pub mod metrics;
pub mod profile;
pub mod sketch;
