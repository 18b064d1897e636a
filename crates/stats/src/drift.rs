//! One definition of drift, for validate (offline, a table against the training
//! profile) and kiln-serve (online, a window of served rows against the bundle's
//! profile): the same bins, the same bin of a value, the same population stability
//! index. Offline and online PSI are therefore equal on the same rows.
//!
//! Bins: a numeric column uses the profile's equal-width histogram edges (a value
//! falls in the bin whose lower edge is the last one at or below it; values below the
//! first edge go to the first bin and at or above the last edge to the last bin), plus
//! a bin for missing values; a categorical column uses the profile's listed categories,
//! one bin for every other value and one for missing. The reference share of each bin
//! is its training count over all training rows, nulls included.
//!
//! PSI = Σ (p − q) · ln(p / q) over the bins, with each share floored at 1e-4 so an
//! empty bin stays finite.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};

use crate::profile::{ColumnProfile, ColumnStats, category_key, numeric_values};

/// Floor of a bin's share in the PSI.
pub const SHARE_FLOOR: f64 = 1e-4;

/// The bin of `x` among ascending `edges` (`edges.len() - 1` bins): the last bin whose
/// lower edge is at or below `x`, clamped to the first and last bins. The profile's
/// histogram counts training values with this same rule.
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    let bins = edges.len().saturating_sub(1).max(1);
    edges
        .partition_point(|e| *e <= x)
        .saturating_sub(1)
        .min(bins - 1)
}

/// PSI between reference shares and current counts (same bins, same order).
pub fn psi(reference: &[f64], current: &[u64]) -> f64 {
    let total = current.iter().sum::<u64>().max(1) as f64;
    reference
        .iter()
        .zip(current)
        .map(|(&q, &c)| {
            let p = (c as f64 / total).max(SHARE_FLOOR);
            let q = q.max(SHARE_FLOOR);
            (p - q) * (p / q).ln()
        })
        .sum()
}

/// How one column's values map to bins.
#[derive(Debug, Clone, PartialEq)]
pub enum Binning {
    Numeric { edges: Vec<f64> },
    Categorical { categories: HashMap<String, usize> },
}

/// A column's bins and their reference shares; the last bin is "missing".
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBins {
    pub binning: Binning,
    pub reference: Vec<f64>,
}

impl FeatureBins {
    /// The bins of a profiled column; `None` for a column drift does not cover (a
    /// timestamp, or a numeric column without a histogram).
    pub fn from_profile(column: &ColumnProfile) -> Option<FeatureBins> {
        let total = (column.count + column.nulls).max(1) as f64;
        let (binning, mut reference) = match &column.stats {
            ColumnStats::Numeric { histogram, .. } if !histogram.counts.is_empty() => (
                Binning::Numeric {
                    edges: histogram.edges.clone(),
                },
                histogram
                    .counts
                    .iter()
                    .map(|&c| c as f64 / total)
                    .collect::<Vec<_>>(),
            ),
            ColumnStats::Categorical {
                top, other_count, ..
            } => {
                let categories = top
                    .iter()
                    .enumerate()
                    .map(|(i, (v, _))| (v.clone(), i))
                    .collect();
                let mut shares: Vec<f64> = top.iter().map(|(_, c)| *c as f64 / total).collect();
                shares.push(*other_count as f64 / total);
                (Binning::Categorical { categories }, shares)
            }
            _ => return None,
        };
        reference.push(column.nulls as f64 / total);
        Some(FeatureBins { binning, reference })
    }

    /// How many bins, the missing one included.
    pub fn len(&self) -> usize {
        self.reference.len()
    }

    /// Never true: there is always the missing bin.
    pub fn is_empty(&self) -> bool {
        self.reference.is_empty()
    }

    /// The missing-value bin.
    pub fn missing(&self) -> usize {
        self.len() - 1
    }

    /// Whether values are read as numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self.binning, Binning::Numeric { .. })
    }

    /// The bin of a numeric value (`None`: missing).
    pub fn numeric_bin(&self, x: Option<f64>) -> usize {
        match (&self.binning, x) {
            (Binning::Numeric { edges }, Some(x)) if !x.is_nan() => bin_of(edges, x),
            _ => self.missing(),
        }
    }

    /// The bin of a categorical value by its canonical text (`None`: missing).
    pub fn category_bin(&self, key: Option<&str>) -> usize {
        match (&self.binning, key) {
            (Binning::Categorical { categories }, Some(k)) => {
                categories.get(k).copied().unwrap_or(self.len() - 2)
            }
            _ => self.missing(),
        }
    }

    /// Adds one bin index per row of `array` to `out` (numbers read as the profile
    /// read them; categories by their canonical text).
    pub fn bins_of(&self, array: &dyn Array, out: &mut Vec<usize>) {
        if self.is_numeric() {
            let numbers = numeric_values(array);
            if numbers.len() == array.len() {
                out.extend(numbers.into_iter().map(|x| self.numeric_bin(x)));
            } else {
                out.extend((0..array.len()).map(|_| self.missing()));
            }
        } else if let Some(dictionary) = array.as_any_dictionary_opt() {
            // Dictionary-encoded text (Parquet's own dictionary pages): each distinct
            // value is binned once, then every row by its key.
            let values = dictionary.values();
            let value_bins: Vec<usize> = (0..values.len())
                .map(|i| self.category_bin(category_key(values.as_ref(), i).as_deref()))
                .collect();
            let keys = dictionary.normalized_keys();
            out.extend((0..array.len()).map(|row| {
                if array.is_null(row) {
                    self.missing()
                } else {
                    value_bins
                        .get(keys[row])
                        .copied()
                        .unwrap_or_else(|| self.missing())
                }
            }));
        } else {
            out.extend(
                (0..array.len()).map(|row| self.category_bin(category_key(array, row).as_deref())),
            );
        }
    }

    /// The PSI of current counts over these bins.
    pub fn psi(&self, counts: &[u64]) -> f64 {
        psi(&self.reference, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_an_edge_opens_the_bin_above_it_and_outliers_clamp() {
        let edges = [0.0, 0.1, 0.2, 0.30000000000000004];
        assert_eq!(bin_of(&edges, -5.0), 0);
        assert_eq!(bin_of(&edges, 0.0), 0);
        assert_eq!(bin_of(&edges, 0.1), 1);
        assert_eq!(bin_of(&edges, 0.2), 2);
        assert_eq!(bin_of(&edges, 0.30000000000000004), 2);
        assert_eq!(bin_of(&edges, 99.0), 2);
    }

    #[test]
    fn dictionary_encoded_text_bins_like_plain_text() {
        use arrow::array::{DictionaryArray, StringArray};
        use arrow::datatypes::Int32Type;
        let bins = FeatureBins {
            binning: Binning::Categorical {
                categories: HashMap::from([("a".to_string(), 0), ("b".to_string(), 1)]),
            },
            reference: vec![0.4, 0.4, 0.1, 0.1],
        };
        let values = vec![Some("b"), None, Some("zzz"), Some("a"), Some("b")];
        let plain = StringArray::from(values.clone());
        let dictionary: DictionaryArray<Int32Type> = values.into_iter().collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        bins.bins_of(&plain, &mut a);
        bins.bins_of(&dictionary, &mut b);
        assert_eq!(a, [1, 3, 2, 0, 1]);
        assert_eq!(a, b);
    }

    #[test]
    fn psi_is_zero_for_the_reference_itself_and_grows_with_a_shift() {
        let reference = [0.25, 0.25, 0.5];
        assert!(psi(&reference, &[25, 25, 50]).abs() < 1e-12);
        assert!(psi(&reference, &[50, 25, 25]) > 0.1);
        assert!(psi(&reference, &[0, 0, 100]).is_finite());
    }
}
