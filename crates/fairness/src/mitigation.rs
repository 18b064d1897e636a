//! Post-processing mitigation: one decision threshold per group, chosen on validation
//! data to satisfy a demographic-parity or equal-opportunity constraint with the
//! least loss of accuracy (in the manner of Fairlearn's ThresholdOptimizer, but with
//! deterministic thresholds rather than randomised ones).
//!
//! The search is exact over each group's distinct scores (at most 1,000 candidates
//! per group, at evenly spaced ranks when there are more): for every achievable
//! lower bound `L` of the constrained rate, each group takes its most accurate
//! threshold whose rate lies in `[L, L / min_ratio]`; the best feasible total wins.
//! Groups smaller than `min_group_count` keep the default threshold and are left out
//! of the constraint, as they are left out of the gates.

use std::collections::BTreeMap;

use kiln_core::spec::MitigationConstraint;

/// Most candidate thresholds per group.
const MAX_CANDIDATES: usize = 1000;
/// A threshold above every score: selects nobody.
pub const SELECT_NONE: f64 = 1.000_000_1;

/// One candidate: selecting the `k` highest scores (threshold `t`).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    threshold: f64,
    /// Selection rate (demographic parity) or TPR (equal opportunity).
    rate: f64,
    correct: u64,
}

pub use kiln_core::decision::GroupThresholds;

fn candidates(scores: &[f64], labels: &[u8], constraint: MitigationConstraint) -> Vec<Candidate> {
    let mut rows: Vec<(f64, u8)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = rows.len() as u64;
    let positives = rows.iter().filter(|r| r.1 == 1).count() as u64;
    let negatives = n - positives;
    let rate = |k: u64, tp: u64| match constraint {
        MitigationConstraint::DemographicParity => k as f64 / n.max(1) as f64,
        MitigationConstraint::EqualOpportunity => {
            if positives == 0 {
                0.0
            } else {
                tp as f64 / positives as f64
            }
        }
    };
    // Selecting nobody.
    let mut all = vec![Candidate {
        threshold: SELECT_NONE,
        rate: 0.0,
        correct: negatives,
    }];
    let (mut k, mut tp) = (0u64, 0u64);
    let mut i = 0;
    while i < rows.len() {
        let value = rows[i].0;
        while i < rows.len() && rows[i].0 == value {
            k += 1;
            tp += u64::from(rows[i].1);
            i += 1;
        }
        let fp = k - tp;
        all.push(Candidate {
            threshold: value,
            rate: rate(k, tp),
            correct: tp + (negatives - fp),
        });
    }
    if all.len() > MAX_CANDIDATES {
        let step = all.len() as f64 / MAX_CANDIDATES as f64;
        let last = all.len() - 1;
        let mut picked: Vec<Candidate> = (0..MAX_CANDIDATES)
            .map(|j| all[(j as f64 * step) as usize])
            .collect();
        picked.push(all[last]);
        all = picked;
    }
    all
}

/// Chooses group thresholds on validation rows. `None` when no choice satisfies the
/// constraint (then the report says so and the gates judge the unmitigated model).
#[allow(clippy::too_many_arguments)]
pub fn choose(
    attribute: &str,
    scores: &[f64],
    labels: &[u8],
    groups: &[Option<String>],
    constraint: MitigationConstraint,
    min_ratio: f64,
    default_threshold: f64,
    min_group_count: u64,
) -> Option<GroupThresholds> {
    let mut by_group: BTreeMap<String, (Vec<f64>, Vec<u8>)> = BTreeMap::new();
    for ((s, y), g) in scores.iter().zip(labels).zip(groups) {
        let entry = by_group
            .entry(g.clone().unwrap_or_else(|| "<missing>".into()))
            .or_default();
        entry.0.push(*s);
        entry.1.push(*y);
    }
    let constrained: Vec<(String, Vec<Candidate>)> = by_group
        .iter()
        .filter(|(_, (s, _))| s.len() as u64 >= min_group_count)
        .map(|(g, (s, y))| (g.clone(), candidates(s, y, constraint)))
        .collect();
    if constrained.is_empty() {
        return None;
    }
    let mut lower_bounds: Vec<f64> = constrained
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.rate))
        .collect();
    lower_bounds.sort_by(f64::total_cmp);
    lower_bounds.dedup();
    let mut best: Option<(u64, Vec<f64>)> = None;
    for low in lower_bounds {
        let high = if min_ratio > 0.0 {
            low / min_ratio
        } else {
            f64::INFINITY
        };
        let mut total = 0;
        let mut chosen = Vec::with_capacity(constrained.len());
        for (_, cands) in &constrained {
            let pick = cands
                .iter()
                .filter(|c| c.rate >= low - 1e-12 && c.rate <= high + 1e-12)
                .max_by(|a, b| {
                    a.correct
                        .cmp(&b.correct)
                        .then(a.threshold.total_cmp(&b.threshold))
                });
            match pick {
                Some(c) => {
                    total += c.correct;
                    chosen.push(c.threshold);
                }
                None => break,
            }
        }
        if chosen.len() == constrained.len() && best.as_ref().is_none_or(|(t, _)| total > *t) {
            best = Some((total, chosen));
        }
    }
    let (_, chosen) = best?;
    Some(GroupThresholds {
        format_version: <GroupThresholds as kiln_core::contracts::Artifact>::FORMAT_VERSION,
        attribute: attribute.to_string(),
        constraint,
        min_ratio,
        thresholds: constrained
            .iter()
            .map(|(g, _)| g.clone())
            .zip(chosen)
            .collect(),
        default_threshold,
        chosen_on: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(
        thresholds: &GroupThresholds,
        scores: &[f64],
        groups: &[Option<String>],
        group: &str,
    ) -> f64 {
        let d = thresholds.decide(scores, groups);
        let members: Vec<usize> = (0..scores.len())
            .filter(|&i| groups[i].as_deref() == Some(group))
            .collect();
        members.iter().filter(|&&i| d[i] == 1).count() as f64 / members.len() as f64
    }

    #[test]
    fn demographic_parity_thresholds_meet_the_ratio_with_the_best_accuracy() {
        // Group a scores high, group b low: one threshold selects a far more often.
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut groups = Vec::new();
        for i in 0..100 {
            let s = f64::from(i) / 100.0;
            scores.push((s * 0.5 + 0.5).min(0.99));
            labels.push(u8::from(i >= 40));
            groups.push(Some("a".to_string()));
            scores.push(s * 0.5);
            labels.push(u8::from(i >= 70));
            groups.push(Some("b".to_string()));
        }
        let t = choose(
            "g",
            &scores,
            &labels,
            &groups,
            MitigationConstraint::DemographicParity,
            0.8,
            0.5,
            10,
        )
        .unwrap();
        let (ra, rb) = (
            rate(&t, &scores, &groups, "a"),
            rate(&t, &scores, &groups, "b"),
        );
        assert!(ra.min(rb) / ra.max(rb) >= 0.8 - 1e-12, "{ra} {rb} {t:?}");
        // Unmitigated at 0.5 the ratio is 0.
        let plain: Vec<u8> = scores.iter().map(|s| u8::from(*s >= 0.5)).collect();
        let b_rate = (0..scores.len())
            .filter(|&i| i % 2 == 1 && plain[i] == 1)
            .count();
        assert_eq!(b_rate, 0);
        // Brute force over all threshold pairs agrees on the best accuracy.
        let acc = |d: &[u8]| d.iter().zip(&labels).filter(|(a, b)| a == b).count();
        let best_found = acc(&t.decide(&scores, &groups));
        let mut best = 0;
        let cands: Vec<f64> = scores.iter().copied().chain([SELECT_NONE]).collect();
        for &ta in &cands {
            for &tb in &cands {
                let d: Vec<u8> = scores
                    .iter()
                    .zip(&groups)
                    .map(|(s, g)| u8::from(*s >= if g.as_deref() == Some("a") { ta } else { tb }))
                    .collect();
                let (a_sel, b_sel) = (
                    (0..200).filter(|&i| i % 2 == 0 && d[i] == 1).count() as f64 / 100.0,
                    (0..200).filter(|&i| i % 2 == 1 && d[i] == 1).count() as f64 / 100.0,
                );
                let ok =
                    a_sel.max(b_sel) == 0.0 || a_sel.min(b_sel) / a_sel.max(b_sel) >= 0.8 - 1e-12;
                if ok {
                    best = best.max(acc(&d));
                }
            }
        }
        assert_eq!(best_found, best);
    }

    #[test]
    fn equal_opportunity_equalises_tpr_and_small_groups_keep_the_default() {
        let scores = [0.9, 0.8, 0.3, 0.2, 0.45, 0.4, 0.1, 0.05, 0.7];
        let labels = [1, 1, 0, 0, 1, 1, 0, 0, 1];
        let groups: Vec<Option<String>> = ["a", "a", "a", "a", "b", "b", "b", "b", "c"]
            .iter()
            .map(|g| Some(g.to_string()))
            .collect();
        let t = choose(
            "g",
            &scores,
            &labels,
            &groups,
            MitigationConstraint::EqualOpportunity,
            1.0,
            0.5,
            2,
        )
        .unwrap();
        let d = t.decide(&scores, &groups);
        assert_eq!(&d[..8], &[1, 1, 0, 0, 1, 1, 0, 0], "{t:?}");
        assert!(!t.thresholds.contains_key("c"));
        assert_eq!(t.threshold(Some("c")), 0.5);
        assert_eq!(t.threshold(None), 0.5);
    }
}
