//! A mergeable quantile sketch with bounded memory.
//!
//! The sketch keeps exact value counts until it holds more distinct values than its
//! capacity; then it merges neighbouring values into weighted centroids of about equal
//! weight. Quantiles are therefore exact for columns with few distinct values (every
//! integer column of Adult, any categorical code) and approximate, with memory that
//! does not grow with the row count, for continuous columns.
//!
//! Quantiles use linear interpolation between order statistics (numpy's default
//! `linear` method, which pandas' `median` and `quantile` also use).

use std::collections::BTreeMap;

/// Maps an f64 to a u64 whose unsigned order is the numeric order (negative numbers
/// flipped whole, positive ones with the sign bit set; infinities included).
pub fn ordered_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The inverse of [`ordered_key`].
pub fn from_key(key: u64) -> f64 {
    let bits = if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    };
    f64::from_bits(bits)
}

/// Bounded-memory sketch of a numeric column's distribution.
#[derive(Debug, Clone)]
pub struct QuantileSketch {
    /// value (order-preserving key) → weight
    counts: BTreeMap<u64, f64>,
    capacity: usize,
    exact: bool,
    total: u64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::with_capacity(16_384)
    }
}

impl QuantileSketch {
    /// A sketch that stays exact up to `capacity` distinct values.
    pub fn with_capacity(capacity: usize) -> Self {
        QuantileSketch {
            counts: BTreeMap::new(),
            capacity: capacity.max(16),
            exact: true,
            total: 0,
        }
    }

    /// Adds one value (NaN is ignored).
    pub fn insert(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        // -0.0 and 0.0 are one value.
        let value = if value == 0.0 { 0.0 } else { value };
        *self.counts.entry(ordered_key(value)).or_insert(0.0) += 1.0;
        self.total += 1;
        if self.counts.len() > self.capacity {
            self.compress();
        }
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Whether quantiles are exact (no compression happened).
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// The distinct values and their counts, ascending (exact sketches only).
    pub fn value_counts(&self) -> Option<Vec<(f64, u64)>> {
        self.exact.then(|| {
            self.counts
                .iter()
                .map(|(k, w)| (from_key(*k), *w as u64))
                .collect()
        })
    }

    /// Merges neighbours into about `capacity / 2` centroids of equal weight.
    fn compress(&mut self) {
        self.exact = false;
        let target = (self.capacity / 2).max(1);
        let per_centroid = self.total as f64 / target as f64;
        let mut merged = BTreeMap::new();
        let (mut sum, mut weight) = (0.0f64, 0.0f64);
        for (key, w) in std::mem::take(&mut self.counts) {
            sum += from_key(key) * w;
            weight += w;
            if weight >= per_centroid {
                *merged.entry(ordered_key(sum / weight)).or_insert(0.0) += weight;
                sum = 0.0;
                weight = 0.0;
            }
        }
        if weight > 0.0 {
            *merged.entry(ordered_key(sum / weight)).or_insert(0.0) += weight;
        }
        self.counts = merged;
    }

    /// The smallest and largest values added.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        let first = self.counts.keys().next()?;
        let last = self.counts.keys().next_back()?;
        Some((from_key(*first), from_key(*last)))
    }

    /// The q-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.quantiles(&[q]).map(|v| v[0])
    }

    /// Several quantiles in one walk; `qs` need not be sorted.
    pub fn quantiles(&self, qs: &[f64]) -> Option<Vec<f64>> {
        if self.total == 0 {
            return None;
        }
        let n = self.total as f64;
        let entries: Vec<(f64, f64)> = self
            .counts
            .iter()
            .map(|(k, w)| (from_key(*k), *w))
            .collect();
        // Value at 0-based rank r: the entry whose cumulative weight passes r.
        let at_rank = |rank: f64| -> f64 {
            let mut cumulative = 0.0;
            for (value, weight) in &entries {
                cumulative += weight;
                if rank < cumulative {
                    return *value;
                }
            }
            entries.last().map(|e| e.0).unwrap_or(f64::NAN)
        };
        Some(
            qs.iter()
                .map(|&q| {
                    let h = (n - 1.0) * q.clamp(0.0, 1.0);
                    let lo = h.floor();
                    let (a, b) = (at_rank(lo), at_rank(h.ceil()));
                    a + (h - lo) * (b - a)
                })
                .collect(),
        )
    }

    /// Counts of values in equal-width bins over [min, max] (the last bin is closed).
    pub fn histogram(&self, bins: usize) -> Option<(Vec<f64>, Vec<u64>)> {
        let (min, max) = self.min_max()?;
        let bins = bins.max(1);
        let width = (max - min) / bins as f64;
        let edges: Vec<f64> = (0..=bins).map(|i| min + width * i as f64).collect();
        let mut counts = vec![0u64; bins];
        for (key, weight) in &self.counts {
            let v = from_key(*key);
            // The rule drift bins served and validated values with.
            let idx = if width > 0.0 {
                crate::drift::bin_of(&edges, v)
            } else {
                0
            };
            counts[idx] += *weight as u64;
        }
        Some((edges, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_round_trips_and_orders() {
        let values = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300];
        for w in values.windows(2) {
            assert!(ordered_key(w[0]) <= ordered_key(w[1]), "{w:?}");
        }
        for v in values {
            assert_eq!(from_key(ordered_key(v)), v);
        }
    }

    #[test]
    fn exact_quantiles_match_numpy_linear() {
        // numpy.quantile([1,2,3,4,10], [0, .25, .5, .9, 1]) == [1, 2, 3, 7.6, 10]
        let mut s = QuantileSketch::default();
        for v in [4.0, 1.0, 10.0, 3.0, 2.0] {
            s.insert(v);
        }
        let q = s.quantiles(&[0.0, 0.25, 0.5, 0.9, 1.0]).unwrap();
        let expected = [1.0, 2.0, 3.0, 7.6, 10.0];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        // Even count: median interpolates.
        s.insert(5.0);
        assert_eq!(s.quantile(0.5), Some(3.5));
        assert!(s.is_exact());
    }

    #[test]
    fn repeated_values_stay_exact() {
        let mut s = QuantileSketch::with_capacity(16);
        for i in 0..100_000u64 {
            s.insert((i % 7) as f64);
        }
        assert!(s.is_exact());
        assert_eq!(s.count(), 100_000);
        assert_eq!(s.value_counts().unwrap().len(), 7);
        let (edges, counts) = s.histogram(7).unwrap();
        assert_eq!(edges.len(), 8);
        assert_eq!(counts.iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn continuous_values_compress_with_small_rank_error() {
        let mut s = QuantileSketch::with_capacity(1024);
        let n = 200_000;
        // A deterministic permutation of 0..n.
        for i in 0..n {
            s.insert(((i * 7919) % n) as f64);
        }
        assert!(!s.is_exact());
        for q in [0.01, 0.25, 0.5, 0.75, 0.99] {
            let got = s.quantile(q).unwrap();
            let want = q * (n - 1) as f64;
            assert!(
                (got - want).abs() / (n as f64) < 0.01,
                "q={q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let s = QuantileSketch::default();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.min_max(), None);
    }
}
