//! The shapes of measured quantities that evaluate's and fairness's artifacts carry:
//! confusion counts, a reliability diagram, bootstrap intervals. The computations
//! that produce them live in `kiln-stats`; the shapes live here because the artifacts
//! that hold them are contracts.

use serde::{Deserialize, Serialize};

/// Confusion matrix counts at a threshold.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Confusion {
    pub tn: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub tp: u64,
}

impl Confusion {
    /// Counts at `threshold`.
    pub fn at<S: Copy + Into<f64>>(scores: &[S], labels: &[u8], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&s, &y) in scores.iter().zip(labels) {
            match (s.into() >= threshold, y == 1) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// Counts of 0/1 decisions against labels.
    pub fn of_decisions(decisions: &[u8], labels: &[u8]) -> Self {
        let mut c = Confusion::default();
        for (&d, &y) in decisions.iter().zip(labels) {
            match (d == 1, y == 1) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tn + self.fp + self.fn_ + self.tp
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// True positive rate (= recall).
    pub fn tpr(&self) -> f64 {
        self.recall()
    }

    /// False positive rate.
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }

    /// Share predicted positive.
    pub fn selection_rate(&self) -> f64 {
        ratio(self.tp + self.fp, self.total())
    }

    pub fn f1(&self) -> f64 {
        // 2TP / (2TP + FP + FN): scikit-learn's formula, 0 when undefined.
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub fraction_positive: f64,
}

/// A reliability diagram over equal-width bins and its expected calibration error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Calibration {
    /// Non-empty bins only, as scikit-learn's `calibration_curve` returns them.
    pub bins: Vec<CalibrationBin>,
    /// Σ (nᵦ / N) · |fraction positive − mean predicted| over the bins.
    pub expected_calibration_error: f64,
}

/// A two-sided percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Bootstrap intervals and how they were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapIntervals {
    pub resamples: usize,
    pub seed: u64,
    pub confidence: f64,
    /// `None` when too few resamples had both classes.
    pub roc_auc: Option<Interval>,
    pub f1: Option<Interval>,
}
