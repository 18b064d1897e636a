//! Drift and training/serving skew: a table compared with a reference profile
//! (prepare's `profile.json`, the training split's statistics).
//!
//! - Every column: the population stability index over `kiln_stats::drift`'s bins,
//!   the same bins and PSI kiln-serve's online drift uses (numeric: the reference's 20
//!   equal-width histogram bins, values outside the range in the end bins; categorical:
//!   the reference's listed categories and one bucket for the rest; both with a bin for
//!   missing values), so offline and online PSI agree on the same rows.
//! - Numeric columns: also the Kolmogorov–Smirnov statistic between the two
//!   distributions, each given by its 101 percentiles (a resolution of 0.01).
//! - Categorical columns: also the L-infinity distance between the bins' shares.
//!
//! Below `min_rows` non-missing values on either side no verdict is given.

use arrow::record_batch::RecordBatch;

use kiln_core::spec::DriftSpec;
use kiln_core::{Error, Result};
use kiln_stats::drift::FeatureBins;
use kiln_stats::profile::{ColumnStats as ProfileStats, TableProfile, numeric_values};
use kiln_stats::sketch::QuantileSketch;

pub use kiln_core::contracts::validate::{ColumnDrift, DriftMeasure, DriftReport};

/// The current table's side of one column: counts per bin and, for a numeric column,
/// a sketch of its values for the KS statistic.
struct Current {
    bins: FeatureBins,
    counts: Vec<u64>,
    sketch: Option<QuantileSketch>,
}

impl Current {
    /// Non-missing values seen.
    fn present(&self) -> u64 {
        let total: u64 = self.counts.iter().sum();
        total - self.counts[self.bins.missing()]
    }
}

/// Accumulates the current table's side of the comparison, batch by batch.
pub struct DriftCheck {
    reference: TableProfile,
    columns: Vec<(String, Current)>,
    spec: DriftSpec,
    scratch: Vec<usize>,
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
            let Some(bins) = FeatureBins::from_profile(profile) else {
                continue;
            };
            let sketch = bins
                .is_numeric()
                .then(|| QuantileSketch::with_capacity(4096));
            columns.push((
                profile.name.clone(),
                Current {
                    counts: vec![0; bins.len()],
                    bins,
                    sketch,
                },
            ));
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
            scratch: Vec::new(),
        })
    }

    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        for (name, current) in &mut self.columns {
            let Some(array) = batch.column_by_name(name) else {
                continue;
            };
            self.scratch.clear();
            current.bins.bins_of(array.as_ref(), &mut self.scratch);
            for &bin in &self.scratch {
                current.counts[bin] += 1;
            }
            if let Some(sketch) = &mut current.sketch {
                for x in numeric_values(array.as_ref()).into_iter().flatten() {
                    if !x.is_nan() {
                        sketch.insert(x);
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
            let current_rows = current.present();
            let psi_value = current.bins.psi(&current.counts);
            let (kind, measures) = match (&reference.stats, &current.sketch) {
                (ProfileStats::Numeric { percentiles, .. }, Some(sketch)) => {
                    let levels: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
                    let cur_percentiles = sketch.quantiles(&levels).unwrap_or_default();
                    let ks_value = ks(percentiles, &cur_percentiles);
                    (
                        "numeric",
                        vec![
                            measure("psi", psi_value, spec.psi_max),
                            measure("ks", ks_value, spec.ks_max),
                        ],
                    )
                }
                _ => {
                    let total = current.counts.iter().sum::<u64>();
                    let linf = current
                        .bins
                        .reference
                        .iter()
                        .zip(&current.counts)
                        .map(|(&r, &c)| (r - share(c, total)).abs())
                        .fold(0.0, f64::max);
                    (
                        "categorical",
                        vec![
                            measure("psi", psi_value, spec.psi_max),
                            measure("linf", linf, spec.linf_max),
                        ],
                    )
                }
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
    fn ks_of_identical_is_zero_and_of_disjoint_is_one() {
        let a: Vec<f64> = (0..=100).map(f64::from).collect();
        let b: Vec<f64> = (0..=100).map(|i| f64::from(i) + 1000.0).collect();
        assert_eq!(ks(&a, &a), 0.0);
        assert_eq!(ks(&a, &b), 1.0);
        let half: Vec<f64> = (0..=100).map(|i| f64::from(i) + 50.0).collect();
        assert!((ks(&a, &half) - 0.5).abs() < 0.011);
    }
}
