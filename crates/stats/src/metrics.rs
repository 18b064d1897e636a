//! Binary classification metrics, computed as scikit-learn computes them (tests compare
//! with values scikit-learn produced on fixture files, ties in scores included).
//!
//! Conventions (scikit-learn's): a row is predicted positive when `score >= threshold`;
//! precision, recall and F1 are 0 when undefined (`zero_division=0`); ROC AUC and
//! average precision are `None` (undefined) when only one class is present; log loss
//! clips probabilities to `[ε, 1 − ε]` with ε = f64::EPSILON.

pub use kiln_core::contracts::measures::{Calibration, CalibrationBin, Confusion};
use kiln_core::spec::ModelMetric;

/// Row indices sorted by score, descending (ties keep input order).
fn descending<S: Copy + Into<f64>>(scores: &[S]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].into().total_cmp(&scores[a].into()));
    order
}

/// ROC AUC by the rank-sum (Mann–Whitney U) formula with tied scores sharing their
/// average rank — equal to scikit-learn's `roc_auc_score`. `None` when only one class
/// is present or a score is NaN.
pub fn roc_auc<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|&s| s.into().is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order = descending(scores);
    order.reverse();
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]].into() == scores[order[i]].into() {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k] == 1).count();
        rank_sum += average_rank * tied_positives as f64;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Average precision, scikit-learn's `average_precision_score`: Σ (Rₖ − Rₖ₋₁)·Pₖ over
/// the distinct score thresholds, high to low. `None` without positives.
pub fn average_precision<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> Option<f64> {
    let positives = labels.iter().filter(|&&y| y == 1).count() as f64;
    if positives == 0.0 || scores.iter().any(|&s| s.into().is_nan()) {
        return None;
    }
    let c = threshold_counts(scores, labels);
    let mut previous_recall = 0.0;
    let mut ap = 0.0;
    for (&tp, &fp) in c.tps.iter().zip(&c.fps) {
        let recall = tp / positives;
        ap += (recall - previous_recall) * (tp / (tp + fp));
        previous_recall = recall;
    }
    Some(ap)
}

/// Points of the ROC curve, (FPR, TPR), from (0, 0) through every distinct score
/// threshold, high to low (scikit-learn's `roc_curve` without dropping points).
/// Empty when a class is missing.
pub fn roc_curve<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> Vec<(f64, f64)> {
    let c = threshold_counts(scores, labels);
    if c.positives == 0.0 || c.negatives == 0.0 {
        return Vec::new();
    }
    std::iter::once((0.0, 0.0))
        .chain(
            c.tps
                .iter()
                .zip(&c.fps)
                .map(|(&t, &f)| (f / c.negatives, t / c.positives)),
        )
        .collect()
}

/// Points of the precision–recall curve, (recall, precision), from (0, 1) through every
/// distinct score threshold, high to low. Empty when a class is missing.
pub fn pr_curve<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> Vec<(f64, f64)> {
    let c = threshold_counts(scores, labels);
    if c.positives == 0.0 || c.negatives == 0.0 {
        return Vec::new();
    }
    std::iter::once((0.0, 1.0))
        .chain(
            c.tps
                .iter()
                .zip(&c.fps)
                .map(|(&t, &f)| (t / c.positives, t / (t + f))),
        )
        .collect()
}

/// Cumulative counts at each distinct score threshold, high to low.
struct ThresholdCounts {
    thresholds: Vec<f64>,
    tps: Vec<f64>,
    fps: Vec<f64>,
    positives: f64,
    negatives: f64,
}

/// One pass over the rows sorted by score, descending, grouping tied scores.
fn threshold_counts<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> ThresholdCounts {
    let order = descending(scores);
    let mut counts = ThresholdCounts {
        thresholds: Vec::new(),
        tps: Vec::new(),
        fps: Vec::new(),
        positives: 0.0,
        negatives: 0.0,
    };
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let score = scores[order[i]].into();
        while i < order.len() && scores[order[i]].into() == score {
            if labels[order[i]] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        counts.thresholds.push(score);
        counts.tps.push(tp);
        counts.fps.push(fp);
    }
    counts.positives = tp;
    counts.negatives = fp;
    counts
}

/// Mean binary cross-entropy, probabilities clipped to [ε, 1 − ε] (scikit-learn's `log_loss`).
pub fn log_loss<S: Copy + Into<f64>>(probabilities: &[S], labels: &[u8]) -> f64 {
    let eps = f64::EPSILON;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.into().clamp(eps, 1.0 - eps);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / probabilities.len().max(1) as f64
}

/// Mean squared error of the probabilities (scikit-learn's `brier_score_loss`).
pub fn brier<S: Copy + Into<f64>>(probabilities: &[S], labels: &[u8]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (f64::from(y) - p.into()).powi(2))
        .sum();
    total / probabilities.len().max(1) as f64
}

/// Share of correct predictions at a threshold (`score >= threshold` is positive).
pub fn accuracy<S: Copy + Into<f64>>(scores: &[S], labels: &[u8], threshold: f64) -> f64 {
    Confusion::at(scores, labels, threshold).accuracy()
}

/// Calibration over `n_bins` equal-width bins of [0, 1], binned as scikit-learn's
/// `calibration_curve(strategy="uniform")` bins (a score on an inner edge goes to the
/// lower bin).
pub fn calibration<S: Copy + Into<f64>>(
    probabilities: &[S],
    labels: &[u8],
    n_bins: usize,
) -> Calibration {
    let n_bins = n_bins.max(1);
    let step = 1.0 / n_bins as f64;
    let mut sums = vec![(0u64, 0.0f64, 0u64); n_bins];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let p = p.into();
        // numpy.searchsorted(inner_edges, p, side="left"): edges strictly below p.
        let bin = (1..n_bins).filter(|&k| (k as f64) * step < p).count();
        let entry = &mut sums[bin];
        entry.0 += 1;
        entry.1 += p;
        entry.2 += u64::from(y == 1);
    }
    let total = probabilities.len().max(1) as f64;
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(k, &(count, sum, positives))| {
            let mean_predicted = sum / count as f64;
            let fraction_positive = positives as f64 / count as f64;
            ece += count as f64 / total * (fraction_positive - mean_predicted).abs();
            CalibrationBin {
                lower: k as f64 * step,
                upper: if k + 1 == n_bins {
                    1.0
                } else {
                    (k + 1) as f64 * step
                },
                count,
                mean_predicted,
                fraction_positive,
            }
        })
        .collect();
    Calibration {
        bins,
        expected_calibration_error: ece,
    }
}

/// The threshold (among the distinct scores) that maximises F1, and that F1; ties go
/// to the higher threshold. `None` without positives.
pub fn best_f1_threshold<S: Copy + Into<f64>>(scores: &[S], labels: &[u8]) -> Option<(f64, f64)> {
    if !labels.contains(&1) {
        return None;
    }
    let c = threshold_counts(scores, labels);
    let mut best: Option<(f64, f64)> = None;
    for ((&score, &tp), &fp) in c.thresholds.iter().zip(&c.tps).zip(&c.fps) {
        // 2TP / (2TP + FP + FN), with FN = positives − TP.
        let f1 = 2.0 * tp / (2.0 * tp + fp + (c.positives - tp));
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((score, f1));
        }
    }
    best
}

/// A named metric of scores and labels at a threshold; `None` when undefined. Used
/// to compare a champion with a challenger on one test set.
pub fn named_metric(
    metric: ModelMetric,
    scores: &[f64],
    labels: &[u8],
    threshold: f64,
) -> Option<f64> {
    named_metric_of(metric, scores, labels, || {
        Confusion::at(scores, labels, threshold)
    })
}

/// [`named_metric`] where the threshold metrics count given decisions (those of a
/// [`DecisionPolicy`](crate::decision::DecisionPolicy), group thresholds included).
pub fn named_metric_decided(
    metric: ModelMetric,
    scores: &[f64],
    labels: &[u8],
    decisions: &[u8],
) -> Option<f64> {
    named_metric_of(metric, scores, labels, || {
        Confusion::of_decisions(decisions, labels)
    })
}

fn named_metric_of(
    metric: ModelMetric,
    scores: &[f64],
    labels: &[u8],
    confusion: impl Fn() -> Confusion,
) -> Option<f64> {
    match metric {
        ModelMetric::RocAuc => roc_auc(scores, labels),
        ModelMetric::AveragePrecision => average_precision(scores, labels),
        ModelMetric::Accuracy => Some(confusion().accuracy()),
        ModelMetric::Precision => Some(confusion().precision()),
        ModelMetric::Recall => Some(confusion().recall()),
        ModelMetric::F1 => Some(confusion().f1()),
        ModelMetric::LogLoss => Some(log_loss(scores, labels)),
        ModelMetric::Brier => Some(brier(scores, labels)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_scikit_learn_with_ties() {
        // sklearn.metrics.roc_auc_score([0,0,1,1,0,1], [0.1,0.4,0.35,0.8,0.4,0.4]) == 0.6666666666666666
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8, 0.4, 0.4], &[0, 0, 1, 1, 0, 1]).unwrap();
        assert!((auc - 0.666_666_666_666_666_6).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[0.2f32, 0.9], &[0, 1]), Some(1.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[0, 1]), Some(0.5));
    }

    #[test]
    fn undefined_metrics_are_none_not_nan() {
        assert_eq!(roc_auc(&[0.2, 0.9], &[1, 1]), None);
        assert_eq!(roc_auc::<f64>(&[], &[]), None);
        assert_eq!(roc_auc(&[f64::NAN, 0.1], &[0, 1]), None);
        assert_eq!(average_precision(&[0.2, 0.9], &[0, 0]), None);
        assert_eq!(best_f1_threshold(&[0.2, 0.9], &[0, 0]), None);
        let c = Confusion::at(&[0.1, 0.2], &[0, 0], 0.5);
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
    }

    #[test]
    fn curves_match_scikit_learn() {
        // sklearn.metrics.roc_curve([0,0,1,1], [0.1,0.4,0.35,0.8], drop_intermediate=False)
        // fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1]
        let roc = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]);
        assert_eq!(
            roc,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        let pr = pr_curve(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]);
        assert_eq!(pr[1], (0.5, 1.0));
        assert_eq!(pr[3], (1.0, 2.0 / 3.0));
        assert!(roc_curve(&[0.1], &[1]).is_empty());
    }

    #[test]
    fn best_f1_threshold_finds_the_cut() {
        // Predicting positive from 0.6 up catches both positives and no negative.
        let (threshold, f1) = best_f1_threshold(&[0.1, 0.6, 0.9, 0.3], &[0, 1, 1, 0]).unwrap();
        assert_eq!((threshold, f1), (0.6, 1.0));
    }
}
