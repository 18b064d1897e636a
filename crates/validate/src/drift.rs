//! Drift and training/serving skew: a table compared with a reference profile
//! (prepare's `profile.json`, the training split's statistics).
//!
//! - Numeric columns: population stability index over the reference's 20 equal-width
//!   histogram bins (values outside the reference range fall in the end bins), and the
//!   Kolmogorov–Smirnov statistic between the two distributions, each given by its 101
//!   percentiles (so the statistic has a resolution of 0.01).
//! - Categorical columns: PSI and L-infinity distance over the categories (the
//!   reference's listed categories plus one bucket for the rest).
//!
//! Proportions of zero are floored at 1e-4 in PSI so an empty bin gives a large but
//! finite contribution. Below `min_rows` on either side no verdict is given.

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;

use kiln_core::spec::DriftSpec;
use kiln_core::{Error, Result};
use kiln_stats::profile::{ColumnStats as ProfileStats, TableProfile};
use kiln_stats::sketch::QuantileSketch;

use crate::value::{Column, Val};

const EPSILON: f64 = 1e-4;

pub use kiln_core::contracts::validate::{ColumnDrift, DriftMeasure, DriftReport};

enum Current {
    Numeric {
        sketch: QuantileSketch,
        bins: Vec<u64>,
        edges: Vec<f64>,
        n: u64,
    },
    Categorical {
        counts: HashMap<String, u64>,
        n: u64,
    },
}

/// Accumulates the current table's side of the comparison, batch by batch.
pub struct DriftCheck {
    reference: TableProfile,
    columns: Vec<(String, Current)>,
    spec: DriftSpec,
}

impl DriftCheck {
    /// Compares the named columns (all the reference's numeric and categorical columns
    /// when `spec.columns` is empty) that exist in the current table.
    pub fn new(
        reference: TableProfile,
        current_columns: &[String],
        spec: &DriftSpec,
    ) -> Result<DriftCheck> {
        let mut columns = Vec::new();
        for profile in &reference.columns {
            let wanted = if spec.columns.is_empty() {
                !spec.exclude.contains(&profile.name)
            } else {
                spec.columns.contains(&profile.name)
            };
            if !wanted || !current_columns.contains(&profile.name) {
                continue;
            }
            let current = match &profile.stats {
                ProfileStats::Numeric { histogram, .. } if !histogram.edges.is_empty() => {
                    Current::Numeric {
                        sketch: QuantileSketch::with_capacity(4096),
                        bins: vec![0; histogram.counts.len()],
                        edges: histogram.edges.clone(),
                        n: 0,
                    }
                }
                ProfileStats::Categorical { .. } => Current::Categorical {
                    counts: HashMap::new(),
                    n: 0,
                },
                _ => continue,
            };
            columns.push((profile.name.clone(), current));
        }
        for name in &spec.columns {
            if reference.column(name).is_none() {
                return Err(Error::usage(format!(
                    "validation.drift.columns: `{name}` is not in the reference profile"
                )));
            }
        }
        Ok(DriftCheck {
            reference,
            columns,
            spec: spec.clone(),
        })
    }

    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        for (name, current) in &mut self.columns {
            let Some(array) = batch.column_by_name(name) else {
                continue;
            };
            let column = Column::new(array)?;
            match current {
                Current::Numeric {
                    sketch,
                    bins,
                    edges,
                    n,
                } => {
                    for i in 0..column.len() {
                        if let Some(x) = column.get(i).as_f64() {
                            *n += 1;
                            sketch.insert(x);
                            bins[bin_of(edges, x)] += 1;
                        }
                    }
                }
                Current::Categorical { counts, n } => {
                    for i in 0..column.len() {
                        let v = column.get(i);
                        let key = match v {
                            Val::Null => continue,
                            Val::Str(s) => s.to_string(),
                            other => other.to_json().to_string(),
                        };
                        *n += 1;
                        *counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(self, reference_uri: &str, current_uri: &str) -> DriftReport {
        let spec = &self.spec;
        let mut out = Vec::new();
        for (name, current) in self.columns {
            let Some(reference) = self.reference.column(&name) else {
                continue;
            };
            let ref_rows = reference.count;
            let (kind, current_rows, measures) = match (&reference.stats, current) {
                (
                    ProfileStats::Numeric {
                        histogram,
                        percentiles,
                        ..
                    },
                    Current::Numeric {
                        sketch, bins, n, ..
                    },
                ) => {
                    let ref_total: u64 = histogram.counts.iter().sum();
                    let psi_value = psi(&histogram.counts, ref_total, &bins, n);
                    let levels: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
                    let cur_percentiles = sketch.quantiles(&levels).unwrap_or_default();
                    let ks_value = ks(percentiles, &cur_percentiles);
                    (
                        "numeric",
                        n,
                        vec![
                            measure("psi", psi_value, spec.psi_max),
                            measure("ks", ks_value, spec.ks_max),
                        ],
                    )
                }
                (
                    ProfileStats::Categorical {
                        top, other_count, ..
                    },
                    Current::Categorical { counts, n },
                ) => {
                    let mut reference_counts: Vec<u64> = top.iter().map(|(_, c)| *c).collect();
                    reference_counts.push(*other_count);
                    let mut current_counts: Vec<u64> = top
                        .iter()
                        .map(|(v, _)| counts.get(v).copied().unwrap_or(0))
                        .collect();
                    let listed: u64 = current_counts.iter().sum();
                    current_counts.push(n - listed);
                    let ref_total: u64 = reference_counts.iter().sum();
                    let psi_value = psi(&reference_counts, ref_total, &current_counts, n);
                    let linf = reference_counts
                        .iter()
                        .zip(&current_counts)
                        .map(|(&r, &c)| (share(r, ref_total) - share(c, n)).abs())
                        .fold(0.0, f64::max);
                    (
                        "categorical",
                        n,
                        vec![
                            measure("psi", psi_value, spec.psi_max),
                            measure("linf", linf, spec.linf_max),
                        ],
                    )
                }
                _ => continue,
            };
            let verdict = if ref_rows < spec.min_rows || current_rows < spec.min_rows {
                "insufficient_data"
            } else if measures.iter().any(|m| m.drifted) {
                "drift"
            } else {
                "ok"
            };
            out.push(ColumnDrift {
                column: name,
                kind: kind.to_string(),
                reference_rows: ref_rows,
                current_rows,
                measures,
                verdict: verdict.to_string(),
            });
        }
        let passed = !spec.gate || out.iter().all(|c| c.verdict != "drift");
        DriftReport {
            reference: reference_uri.to_string(),
            current: current_uri.to_string(),
            min_rows: spec.min_rows,
            columns: out,
            gate: spec.gate,
            passed,
        }
    }
}

fn measure(method: &str, value: f64, threshold: f64) -> DriftMeasure {
    DriftMeasure {
        method: method.to_string(),
        value,
        threshold,
        drifted: value > threshold,
    }
}

fn share(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// The bin of `x` among equal-width `edges`, by the rule the profile's histogram
/// uses; values outside the reference range go to the end bins.
fn bin_of(edges: &[f64], x: f64) -> usize {
    let bins = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[bins]);
    let width = (hi - lo) / bins as f64;
    if width <= 0.0 || x <= lo {
        return 0;
    }
    (((x - lo) / width) as usize).min(bins - 1)
}

/// Population stability index: Σ (c − r) · ln(c / r) over the bins' proportions.
pub fn psi(reference: &[u64], reference_total: u64, current: &[u64], current_total: u64) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = share(r, reference_total).max(EPSILON);
            let c = share(c, current_total).max(EPSILON);
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// KS statistic between two distributions given by their 101 percentiles.
pub fn ks(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    let cdf = |p: &[f64], x: f64| -> f64 {
        let at_or_below = p.partition_point(|&v| v <= x);
        if at_or_below == 0 {
            0.0
        } else {
            (at_or_below - 1) as f64 / (p.len() - 1) as f64
        }
    };
    reference
        .iter()
        .chain(current)
        .map(|&x| (cdf(reference, x) - cdf(current, x)).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_and_grows_with_shift() {
        assert_eq!(psi(&[10, 20, 30], 60, &[1, 2, 3], 6), 0.0);
        // Known value: 50/50 → 90/10 is 0.8·ln(1.8/1)… computed by hand:
        // (0.9−0.5)·ln(0.9/0.5) + (0.1−0.5)·ln(0.1/0.5) = 0.4·0.5878 + 0.4·1.6094
        let v = psi(&[50, 50], 100, &[90, 10], 100);
        assert!((v - (0.4 * (1.8f64).ln() + 0.4 * 5f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn ks_of_identical_is_zero_and_of_disjoint_is_one() {
        let a: Vec<f64> = (0..=100).map(f64::from).collect();
        let b: Vec<f64> = (0..=100).map(|i| f64::from(i) + 1000.0).collect();
        assert_eq!(ks(&a, &a), 0.0);
        assert_eq!(ks(&a, &b), 1.0);
        let half: Vec<f64> = (0..=100).map(|i| f64::from(i) + 50.0).collect();
        assert!((ks(&a, &half) - 0.5).abs() < 0.011);
    }

    #[test]
    fn bins_clamp_outside_values() {
        let edges = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(bin_of(&edges, -5.0), 0);
        assert_eq!(bin_of(&edges, 0.5), 0);
        assert_eq!(bin_of(&edges, 1.0), 1);
        assert_eq!(bin_of(&edges, 2.99), 2);
        assert_eq!(bin_of(&edges, 9.0), 2);
    }
}
