//! `metrics.json`: every number evaluate reports, from scores and labels alone.

use kiln_core::contracts::Artifact;
use kiln_core::spec::EvaluateSpec;
use kiln_core::{Error, Result};
use kiln_stats::bootstrap::bootstrap;
use kiln_stats::metrics::{
    Confusion, average_precision, best_f1_threshold, brier, calibration, log_loss, roc_auc,
};

pub use kiln_core::contracts::evaluate::{BestF1, EvaluationReport};

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
        format_version: EvaluationReport::FORMAT_VERSION,
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
