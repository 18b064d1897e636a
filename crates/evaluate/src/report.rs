//! `metrics.json`: every number evaluate reports, from scores and labels alone.

use kiln_core::bootstrap::{BootstrapIntervals, bootstrap};
use kiln_core::metrics::{
    Calibration, Confusion, average_precision, best_f1_threshold, brier, calibration, log_loss,
    roc_auc,
};
use kiln_core::spec::EvaluateSpec;
use kiln_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The F1-maximising threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestF1 {
    pub threshold: f64,
    pub f1: f64,
}

/// The evaluation of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
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

/// Checks scores and labels, then computes the report. Empty input, a NaN or a score
/// outside [0, 1] is a usage error naming the row.
pub fn evaluate_scores(
    scores: &[f64],
    labels: &[u8],
    options: &EvaluateSpec,
    source: &str,
) -> Result<EvaluationReport> {
    if scores.is_empty() {
        return Err(Error::usage(format!(
            "{source}: no predictions to evaluate"
        )));
    }
    if let Some(row) = scores.iter().position(|s| !(0.0..=1.0).contains(s)) {
        return Err(Error::usage(format!(
            "{source}: score {} in row {} is not a probability in [0, 1]",
            scores[row],
            row + 1
        )));
    }
    let confusion = Confusion::at(scores, labels, options.threshold);
    let positives = labels.iter().filter(|&&y| y == 1).count() as u64;
    Ok(EvaluationReport {
        rows: scores.len() as u64,
        positives,
        negatives: scores.len() as u64 - positives,
        threshold: options.threshold,
        accuracy: confusion.accuracy(),
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        roc_auc: roc_auc(scores, labels),
        average_precision: average_precision(scores, labels),
        log_loss: log_loss(scores, labels),
        brier: brier(scores, labels),
        confusion,
        best_f1: best_f1_threshold(scores, labels).map(|(threshold, f1)| BestF1 { threshold, f1 }),
        calibration: calibration(scores, labels, options.calibration_bins),
        bootstrap: (options.bootstrap_resamples > 0).then(|| {
            bootstrap(
                scores,
                labels,
                options.threshold,
                options.bootstrap_resamples,
                options.seed,
                0.95,
            )
        }),
    })
}

impl EvaluationReport {
    /// A readable table for the terminal.
    pub fn table(&self) -> String {
        let optional = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.4}"));
        let interval = |i: Option<kiln_core::bootstrap::Interval>| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs() {
        let options = EvaluateSpec {
            bootstrap_resamples: 20,
            ..EvaluateSpec::default()
        };
        // One class: AUC undefined, written as null, not NaN.
        let report = evaluate_scores(&[0.2, 0.7], &[1, 1], &options, "p.csv").unwrap();
        assert_eq!(report.roc_auc, None);
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains("\"roc_auc\":null") && !json.contains("NaN"),
            "{json}"
        );
        // No positives: precision/recall/F1 are 0, AP undefined.
        let report = evaluate_scores(&[0.2, 0.7], &[0, 0], &options, "p.csv").unwrap();
        assert_eq!(
            (report.recall, report.f1, report.average_precision),
            (0.0, 0.0, None)
        );
        // Empty, NaN, out of range: usage errors naming the row.
        let err = evaluate_scores(&[], &[], &options, "p.csv").unwrap_err();
        assert_eq!(
            (err.to_string().as_str(), err.class().code()),
            ("p.csv: no predictions to evaluate", 2)
        );
        let err = evaluate_scores(&[0.1, f64::NAN], &[0, 1], &options, "p.csv").unwrap_err();
        assert!(err.to_string().contains("score NaN in row 2"), "{err}");
        let err = evaluate_scores(&[1.5], &[1], &options, "p.csv").unwrap_err();
        assert!(
            err.to_string()
                .contains("score 1.5 in row 1 is not a probability"),
            "{err}"
        );
    }
}
