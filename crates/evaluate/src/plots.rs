//! The evaluation plots, as small SVG files (see `kiln_charts`).

use kiln_charts::{Series, bar_chart, confusion_matrix, line_chart};
use kiln_stats::metrics::{pr_curve, roc_curve};

use crate::EvaluationReport;

/// Bins of the score histogram.
const HISTOGRAM_BINS: usize = 20;

/// (file name, SVG) for every plot.
pub fn render(
    report: &EvaluationReport,
    scores: &[f64],
    labels: &[u8],
) -> Vec<(&'static str, String)> {
    let mut plots = Vec::new();
    let roc = roc_curve(scores, labels);
    if !roc.is_empty() {
        let name = format!("model (AUC {:.3})", report.roc_auc.unwrap_or(f64::NAN));
        plots.push((
            "roc.svg",
            line_chart(
                "ROC curve",
                "false positive rate",
                "true positive rate",
                (0.0, 1.0),
                (0.0, 1.0),
                &[Series {
                    name: &name,
                    points: &roc,
                    markers: false,
                }],
                true,
            ),
        ));
        let pr = pr_curve(scores, labels);
        let name = format!(
            "model (AP {:.3})",
            report.average_precision.unwrap_or(f64::NAN)
        );
        let base_rate = report.positives as f64 / report.rows as f64;
        let baseline = [(0.0, base_rate), (1.0, base_rate)];
        plots.push((
            "precision_recall.svg",
            line_chart(
                "Precision–recall curve",
                "recall",
                "precision",
                (0.0, 1.0),
                (0.0, 1.0),
                &[
                    Series {
                        name: &name,
                        points: &pr,
                        markers: false,
                    },
                    Series {
                        name: "base rate",
                        points: &baseline,
                        markers: false,
                    },
                ],
                false,
            ),
        ));
    }
    let calibration: Vec<(f64, f64)> = report
        .calibration
        .bins
        .iter()
        .map(|b| (b.mean_predicted, b.fraction_positive))
        .collect();
    let name = format!(
        "model (ECE {:.3})",
        report.calibration.expected_calibration_error
    );
    plots.push((
        "calibration.svg",
        line_chart(
            "Calibration",
            "mean predicted probability",
            "fraction positive",
            (0.0, 1.0),
            (0.0, 1.0),
            &[Series {
                name: &name,
                points: &calibration,
                markers: true,
            }],
            true,
        ),
    ));
    let c = &report.confusion;
    plots.push((
        "confusion_matrix.svg",
        confusion_matrix(
            &format!("Confusion matrix at threshold {}", report.threshold),
            c.tn,
            c.fp,
            c.fn_,
            c.tp,
        ),
    ));
    // Score histogram by class, as shares of each class so both are visible.
    let mut counts = [vec![0u64; HISTOGRAM_BINS], vec![0u64; HISTOGRAM_BINS]];
    for (&s, &y) in scores.iter().zip(labels) {
        let bin = ((s * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1);
        counts[usize::from(y == 1)][bin] += 1;
    }
    let share = |class: usize| -> Vec<Option<f64>> {
        let total = counts[class].iter().sum::<u64>().max(1) as f64;
        counts[class]
            .iter()
            .map(|&c| Some(c as f64 / total))
            .collect()
    };
    let (negative, positive) = (share(0), share(1));
    let y_max = negative
        .iter()
        .chain(&positive)
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b))
        * 1.1;
    let categories: Vec<String> = (0..HISTOGRAM_BINS)
        .map(|i| {
            if i % 4 == 0 {
                format!("{:.1}", i as f64 / HISTOGRAM_BINS as f64)
            } else {
                String::new()
            }
        })
        .collect();
    plots.push((
        "score_histogram.svg",
        bar_chart(
            "Scores by class",
            "share of class",
            &categories,
            &[("negative", negative), ("positive", positive)],
            y_max,
        ),
    ));
    plots
}
