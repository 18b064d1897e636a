//! Seeded bootstrap confidence intervals for ROC AUC and F1.
//!
//! The rows are sorted by score once and reduced to tie groups with their positive and
//! negative counts. Each resample is a Poisson bootstrap (every row weighted by an
//! independent Poisson(1) count, drawn per tie group and class as Poisson(count)), and
//! AUC and F1 of the resample come from one pass over the tie groups: O(distinct
//! scores) per resample, on every core, reproducible for a seed whatever the core
//! count. For large n the Poisson bootstrap and the classic multinomial one agree.

pub use kiln_core::contracts::measures::{BootstrapIntervals, Interval};
use kiln_core::split::SplitMix64;

/// Percentile intervals (numpy's linear percentiles) of ROC AUC and F1 at `threshold`
/// over `resamples` seeded bootstrap resamples.
pub fn bootstrap<S: Copy + Into<f64>>(
    scores: &[S],
    labels: &[u8],
    threshold: f64,
    resamples: usize,
    seed: u64,
    confidence: f64,
) -> BootstrapIntervals {
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].into().total_cmp(&scores[b].into()));
    // Tie groups in ascending score order.
    let mut groups = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && scores[order[j]].into() == scores[order[i]].into() {
            j += 1;
        }
        groups.push(i..j);
        i = j;
    }
    // AUC and F1 depend only on each tie group's positive and negative counts, so a
    // resample is a draw of those counts: Poisson(count) each (the Poisson bootstrap,
    // whose row weights are i.i.d. Poisson(1)), O(tie groups) per resample, with no
    // random memory access. Each resample has its own stream derived from (seed,
    // index), so results do not depend on how many threads share the work.
    let cells: Vec<(f64, f64, bool)> = groups
        .iter()
        .map(|g| {
            let positives = order[g.clone()].iter().filter(|&&r| labels[r] == 1).count();
            let above = scores[order[g.start]].into() >= threshold;
            (positives as f64, (g.len() - positives) as f64, above)
        })
        .collect();
    drop(order);
    let cells = coarsen(cells, MAX_CELLS);
    let one = |index: usize| -> (Option<f64>, f64) {
        let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (mut negatives_below, mut numerator) = (0.0f64, 0.0f64);
        let (mut positives, mut negatives) = (0.0f64, 0.0f64);
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        for &(p, q, above) in &cells {
            let wp = rng.poisson(p) as f64;
            let wn = rng.poisson(q) as f64;
            if above {
                tp += wp;
                fp += wn;
            }
            numerator += wp * (negatives_below + wn / 2.0);
            negatives_below += wn;
            positives += wp;
            negatives += wn;
        }
        let auc = (positives > 0.0 && negatives > 0.0).then(|| numerator / (positives * negatives));
        let denominator = 2.0 * tp + fp + (positives - tp);
        (
            auc,
            if denominator > 0.0 {
                2.0 * tp / denominator
            } else {
                0.0
            },
        )
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(resamples.max(1));
    let mut results: Vec<(usize, Option<f64>, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let one = &one;
                scope.spawn(move || {
                    (t..resamples)
                        .step_by(threads)
                        .map(|i| {
                            let (auc, f1) = one(i);
                            (i, auc, f1)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|r| r.0);
    let mut aucs: Vec<f64> = results.iter().filter_map(|r| r.1).collect();
    let mut f1s: Vec<f64> = results.iter().map(|r| r.2).collect();
    let alpha = (1.0 - confidence) / 2.0;
    BootstrapIntervals {
        resamples,
        seed,
        confidence,
        roc_auc: percentile_interval(&mut aucs, alpha, resamples),
        f1: percentile_interval(&mut f1s, alpha, resamples),
    }
}

/// Tie groups resampled one by one up to this many; beyond, neighbouring groups are
/// merged into this many equal-size bins (never across the decision threshold), which
/// moves a resample's AUC by at most 1/MAX_CELLS and makes a resample O(MAX_CELLS).
/// The point estimates are always computed exactly, elsewhere.
pub const MAX_CELLS: usize = 1 << 15;

fn coarsen(cells: Vec<(f64, f64, bool)>, max: usize) -> Vec<(f64, f64, bool)> {
    if cells.len() <= max {
        return cells;
    }
    let per_bin = cells.len().div_ceil(max);
    let mut out: Vec<(f64, f64, bool)> = Vec::with_capacity(max + 1);
    let mut in_bin = 0;
    for (p, q, above) in cells {
        match out.last_mut() {
            Some(last) if in_bin < per_bin && last.2 == above => {
                last.0 += p;
                last.1 += q;
                in_bin += 1;
            }
            _ => {
                out.push((p, q, above));
                in_bin = 1;
            }
        }
    }
    out
}

fn percentile_interval(values: &mut [f64], alpha: f64, resamples: usize) -> Option<Interval> {
    // Fewer than half the resamples usable: no honest interval.
    if values.is_empty() || values.len() * 2 < resamples {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let h = (values.len() - 1) as f64 * q;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        values[lo] + (h - h.floor()) * (values[hi] - values[lo])
    };
    Some(Interval {
        low: at(alpha),
        high: at(1.0 - alpha),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Confusion, roc_auc};

    fn data() -> (Vec<f64>, Vec<u8>) {
        let mut rng = SplitMix64::new(1);
        let labels: Vec<u8> = (0..2000).map(|_| u8::from(rng.below(4) == 0)).collect();
        let scores = labels
            .iter()
            .map(|&y| {
                ((f64::from(y) * 0.3 + (rng.below(1000) as f64) / 1000.0 * 0.7) * 10.0).round()
                    / 10.0
            })
            .collect();
        (scores, labels)
    }

    #[test]
    fn intervals_contain_the_point_estimate_and_are_reproducible() {
        let (scores, labels) = data();
        let a = bootstrap(&scores, &labels, 0.5, 300, 7, 0.95);
        assert_eq!(a, bootstrap(&scores, &labels, 0.5, 300, 7, 0.95));
        assert_ne!(a, bootstrap(&scores, &labels, 0.5, 300, 8, 0.95));
        let auc = roc_auc(&scores, &labels).unwrap();
        let f1 = Confusion::at(&scores, &labels, 0.5).f1();
        let ai = a.roc_auc.unwrap();
        let fi = a.f1.unwrap();
        assert!(ai.low < auc && auc < ai.high, "{ai:?} vs {auc}");
        assert!(fi.low < f1 && f1 < fi.high, "{fi:?} vs {f1}");
        // A 95 % interval of AUC over 2,000 rows is a few hundredths wide.
        assert!(ai.high - ai.low < 0.1 && ai.high - ai.low > 0.005, "{ai:?}");
    }

    #[test]
    fn coarse_bins_keep_counts_and_the_threshold_side() {
        let cells: Vec<(f64, f64, bool)> = (0..10).map(|i| (1.0, 2.0, i >= 7)).collect();
        let bins = coarsen(cells, 3);
        assert_eq!(bins.iter().map(|b| b.0).sum::<f64>(), 10.0);
        assert_eq!(bins.iter().map(|b| b.1).sum::<f64>(), 20.0);
        assert!(bins.len() <= 5, "{bins:?}");
        let above: f64 = bins.iter().filter(|b| b.2).map(|b| b.0).sum();
        assert_eq!(above, 3.0, "rows above the threshold stay above");
    }

    #[test]
    fn one_class_has_no_auc_interval() {
        let b = bootstrap(&[0.1, 0.7, 0.4], &[0, 0, 0], 0.5, 50, 1, 0.95);
        assert_eq!(b.roc_auc, None);
    }
}
