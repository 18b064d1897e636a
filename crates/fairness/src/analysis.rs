//! Group metrics and disparities from labels, decisions and group memberships.
//!
//! Definitions follow Fairlearn's: selection rate, TPR, FPR and precision per group;
//! a difference is max − min over groups and a ratio min / max. Equalized odds takes
//! the worse of TPR and FPR (largest difference, smallest ratio); predictive parity
//! compares precision. Deliberate differences, documented in the report: a rate that
//! is undefined for a group (TPR without positives, FPR without negatives, precision
//! without predicted positives) is `null` and left out of the comparison instead of
//! counting as 0, and groups below `min_group_count` are reported but not compared.

use std::collections::BTreeMap;

use kiln_core::spec::FairnessMetric;
use kiln_core::split::SplitMix64;
use kiln_stats::bootstrap::Interval;
use kiln_stats::metrics::Confusion;

pub use kiln_core::contracts::fairness::{AttributeReport, Disparities, GroupStats};

fn rate(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn stats(group: &str, c: &Confusion, min_count: u64) -> GroupStats {
    GroupStats {
        group: group.to_string(),
        count: c.total(),
        positives: c.tp + c.fn_,
        excluded: c.total() < min_count,
        selection_rate: c.selection_rate(),
        tpr: rate(c.tp, c.tp + c.fn_),
        fpr: rate(c.fp, c.fp + c.tn),
        precision: rate(c.tp, c.tp + c.fp),
    }
}

/// (max − min, min / max) of the defined values; undefined with fewer than two.
fn spread(values: impl Iterator<Item = Option<f64>>) -> (Option<f64>, Option<f64>) {
    let values: Vec<f64> = values.flatten().collect();
    if values.len() < 2 {
        return (None, None);
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (Some(max - min), (max > 0.0).then(|| min / max))
}

fn disparities(groups: &[GroupStats]) -> Disparities {
    let included = || groups.iter().filter(|g| !g.excluded);
    let (dp_diff, dp_ratio) = spread(included().map(|g| Some(g.selection_rate)));
    let (tpr_diff, tpr_ratio) = spread(included().map(|g| g.tpr));
    let (fpr_diff, fpr_ratio) = spread(included().map(|g| g.fpr));
    let (_, pp_ratio) = spread(included().map(|g| g.precision));
    let worse = |a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64| match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        _ => None,
    };
    use FairnessMetric::*;
    BTreeMap::from([
        (DemographicParityDifference, dp_diff),
        (DemographicParityRatio, dp_ratio),
        (EqualOpportunityDifference, tpr_diff),
        (EqualOpportunityRatio, tpr_ratio),
        (EqualizedOddsDifference, worse(tpr_diff, fpr_diff, f64::max)),
        (EqualizedOddsRatio, worse(tpr_ratio, fpr_ratio, f64::min)),
        (PredictiveParityRatio, pp_ratio),
    ])
}

/// Confusion counts per group (groups sorted by name), from per-row group indices.
fn confusions(
    groups: &[usize],
    n_groups: usize,
    labels: &[u8],
    predicted: &[u8],
) -> Vec<Confusion> {
    let mut out = vec![Confusion::default(); n_groups];
    for (i, &g) in groups.iter().enumerate() {
        let c = &mut out[g];
        match (predicted[i] == 1, labels[i] == 1) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, true) => c.fn_ += 1,
            (false, false) => c.tn += 1,
        }
    }
    out
}

/// Analyses one attribute: `values[i]` is row i's group (None = missing, its own group).
pub fn analyse(
    attribute: &str,
    values: &[Option<String>],
    labels: &[u8],
    predicted: &[u8],
    min_group_count: u64,
    resamples: usize,
    seed: u64,
) -> AttributeReport {
    // Group codes in one pass over borrowed values (no per-row copies), then renumbered
    // so that groups come in name order.
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut codes: Vec<usize> = Vec::with_capacity(values.len());
    for value in values {
        let name = value.as_deref().unwrap_or("<missing>");
        let code = *index.entry(name).or_insert_with(|| {
            seen.push(name);
            seen.len() - 1
        });
        codes.push(code);
    }
    let mut order: Vec<usize> = (0..seen.len()).collect();
    order.sort_by_key(|&i| seen[i]);
    let mut renumber = vec![0; seen.len()];
    for (new, &old) in order.iter().enumerate() {
        renumber[old] = new;
    }
    let distinct: Vec<String> = order.iter().map(|&i| seen[i].to_string()).collect();
    let groups: Vec<usize> = codes.iter().map(|&c| renumber[c]).collect();
    let counts = confusions(&groups, distinct.len(), labels, predicted);
    let group_stats: Vec<GroupStats> = distinct
        .iter()
        .zip(&counts)
        .map(|(name, c)| stats(name, c, min_group_count))
        .collect();
    let observed = disparities(&group_stats);

    // Bootstrap (Poisson): the disparities need only each group's confusion counts, so
    // a resample draws every count as Poisson(count) (rows weighted by i.i.d. Poisson(1))
    // — O(groups) per resample, whatever the number of rows. A group keeps its
    // inclusion from the full data.
    let mut samples: BTreeMap<FairnessMetric, Vec<f64>> = BTreeMap::new();
    for index in 0..resamples {
        let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut draw = |count: u64| rng.poisson(count as f64);
        let resampled: Vec<Confusion> = counts
            .iter()
            .map(|c| Confusion {
                tp: draw(c.tp),
                fp: draw(c.fp),
                fn_: draw(c.fn_),
                tn: draw(c.tn),
            })
            .collect();
        let stats: Vec<GroupStats> = group_stats
            .iter()
            .zip(&resampled)
            .map(|(g, c)| GroupStats {
                excluded: g.excluded,
                ..stats(&g.group, c, 0)
            })
            .collect();
        for (metric, value) in disparities(&stats) {
            if let Some(v) = value {
                samples.entry(metric).or_default().push(v);
            }
        }
    }
    let intervals = samples
        .into_iter()
        .filter(|(_, v)| v.len() * 2 >= resamples && !v.is_empty())
        .map(|(metric, mut v)| {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| {
                let h = (v.len() - 1) as f64 * q;
                let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
                v[lo] + (h - h.floor()) * (v[hi] - v[lo])
            };
            (
                metric,
                Interval {
                    low: at(0.025),
                    high: at(0.975),
                },
            )
        })
        .collect();
    AttributeReport {
        attribute: attribute.to_string(),
        groups: group_stats,
        disparities: observed,
        intervals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_without_positives_has_no_tpr_and_is_left_out_of_equal_opportunity() {
        let values: Vec<Option<String>> = ["a", "a", "b", "b", "c", "c"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let labels = [1, 0, 1, 1, 0, 0];
        let predicted = [1, 0, 0, 1, 1, 0];
        let report = analyse("g", &values, &labels, &predicted, 1, 0, 0);
        let c = &report.groups[2];
        assert_eq!((c.group.as_str(), c.tpr, c.fpr), ("c", None, Some(0.5)));
        // TPR: a = 1.0, b = 0.5 → difference 0.5, ratio 0.5 (c left out).
        assert_eq!(
            report.disparities[&FairnessMetric::EqualOpportunityDifference],
            Some(0.5)
        );
        assert_eq!(
            report.disparities[&FairnessMetric::EqualOpportunityRatio],
            Some(0.5)
        );
    }

    #[test]
    fn small_groups_are_flagged_and_not_compared() {
        let values: Vec<Option<String>> = ["a", "a", "a", "b"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let report = analyse("g", &values, &[1, 0, 1, 0], &[1, 0, 0, 1], 2, 20, 1);
        assert!(report.groups[1].excluded);
        // One included group: nothing to compare.
        assert_eq!(
            report.disparities[&FairnessMetric::DemographicParityRatio],
            None
        );
    }
}
