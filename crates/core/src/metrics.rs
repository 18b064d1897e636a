//! Classification metrics shared by the steps that score models.

/// ROC AUC by the rank-sum (Mann–Whitney U) formula, with tied scores sharing their
/// average rank — the same value as scikit-learn's `roc_auc_score`. `None` when only
/// one class is present (AUC is undefined) or a score is NaN.
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
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

/// Mean binary cross-entropy of probabilities, clipped away from 0 and 1 by `eps`
/// (as scikit-learn's `log_loss` does).
pub fn log_loss(probabilities: &[f32], labels: &[u8]) -> f64 {
    let eps = 1e-15f64;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(eps, 1.0 - eps);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / probabilities.len().max(1) as f64
}

/// Share of correct predictions at a threshold (`p >= threshold` is positive).
pub fn accuracy(probabilities: &[f32], labels: &[u8], threshold: f32) -> f64 {
    let correct = probabilities
        .iter()
        .zip(labels)
        .filter(|&(&p, &y)| (p >= threshold) == (y == 1))
        .count();
    correct as f64 / probabilities.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_scikit_learn_with_ties() {
        // sklearn.metrics.roc_auc_score([0,0,1,1,0,1], [0.1,0.4,0.35,0.8,0.4,0.4]) == 0.6666666666666666
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8, 0.4, 0.4], &[0, 0, 1, 1, 0, 1]).unwrap();
        assert!((auc - 0.666_666_666_666_666_6).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[0.2, 0.9], &[0, 1]), Some(1.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[0, 1]), Some(0.5));
    }

    #[test]
    fn auc_is_undefined_for_one_class() {
        assert_eq!(roc_auc(&[0.2, 0.9], &[1, 1]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[f32::NAN, 0.1], &[0, 1]), None);
    }

    #[test]
    fn log_loss_and_accuracy() {
        // sklearn.metrics.log_loss([1, 0], [0.9, 0.2]) == 0.164252033486018
        assert!((log_loss(&[0.9, 0.2], &[1, 0]) - 0.164_252_033_486_018).abs() < 1e-7);
        assert_eq!(accuracy(&[0.9, 0.2, 0.6], &[1, 0, 0], 0.5), 2.0 / 3.0);
    }
}
