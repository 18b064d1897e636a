//! `evaluate/metrics.json`: every number evaluate reports on the test rows.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::contracts::measures::BootstrapIntervals;
use crate::contracts::measures::{Calibration, Confusion};
use crate::spec::ModelMetric;

use super::Artifact;

/// The F1-maximising threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BestF1 {
    pub threshold: f64,
    pub f1: f64,
}

/// The evaluation of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvaluationReport {
    /// [`Artifact::FORMAT_VERSION`] of the Kiln that wrote it (1 when absent).
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    pub rows: u64,
    pub positives: u64,
    pub negatives: u64,
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// `null` when only one class is present (undefined).
    pub roc_auc: Option<f64>,
    /// `null` when there is no positive (undefined).
    pub average_precision: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub confusion: Confusion,
    pub best_f1: Option<BestF1>,
    pub calibration: Calibration,
    /// `null` when `bootstrap_resamples` is 0.
    pub bootstrap: Option<BootstrapIntervals>,
}

impl Artifact for EvaluationReport {
    const STEP: &'static str = "evaluate";
    const FILE: &'static str = "metrics.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl EvaluationReport {
    /// The value of a named model metric; `None` when it is undefined (one class).
    pub fn metric(&self, metric: ModelMetric) -> Option<f64> {
        match metric {
            ModelMetric::RocAuc => self.roc_auc,
            ModelMetric::AveragePrecision => self.average_precision,
            ModelMetric::Accuracy => Some(self.accuracy),
            ModelMetric::Precision => Some(self.precision),
            ModelMetric::Recall => Some(self.recall),
            ModelMetric::F1 => Some(self.f1),
            ModelMetric::LogLoss => Some(self.log_loss),
            ModelMetric::Brier => Some(self.brier),
        }
    }

    /// A readable table for the terminal.
    pub fn table(&self) -> String {
        let optional = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.4}"));
        let interval = |i: Option<crate::contracts::measures::Interval>| {
            i.map_or(String::new(), |i| {
                format!("  (95 % CI {:.4} – {:.4})", i.low, i.high)
            })
        };
        let b = self.bootstrap.as_ref();
        let c = &self.confusion;
        let mut out = String::new();
        out.push_str(&format!(
            "rows            {} ({} positive, {} negative)\n",
            self.rows, self.positives, self.negatives
        ));
        out.push_str(&format!("threshold       {}\n", self.threshold));
        out.push_str(&format!(
            "roc auc         {}{}\n",
            optional(self.roc_auc),
            interval(b.and_then(|b| b.roc_auc))
        ));
        out.push_str(&format!(
            "avg precision   {}\n",
            optional(self.average_precision)
        ));
        out.push_str(&format!("accuracy        {:.4}\n", self.accuracy));
        out.push_str(&format!("precision       {:.4}\n", self.precision));
        out.push_str(&format!("recall          {:.4}\n", self.recall));
        out.push_str(&format!(
            "f1              {:.4}{}\n",
            self.f1,
            interval(b.and_then(|b| b.f1))
        ));
        out.push_str(&format!("log loss        {:.4}\n", self.log_loss));
        out.push_str(&format!("brier           {:.4}\n", self.brier));
        out.push_str(&format!(
            "calibration ece {:.4}\n",
            self.calibration.expected_calibration_error
        ));
        if let Some(best) = self.best_f1 {
            out.push_str(&format!(
                "best f1         {:.4} at threshold {:.4}\n",
                best.f1, best.threshold
            ));
        }
        out.push_str(&format!(
            "confusion       tn {}  fp {}  fn {}  tp {}\n",
            c.tn, c.fp, c.fn_, c.tp
        ));
        out
    }
}
