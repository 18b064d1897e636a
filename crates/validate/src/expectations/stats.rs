//! Statistics of one column, computed once and shared by every aggregate expectation
//! on it.

use arrow::array::Array;
use serde_json::{Value as Json, json};

use super::Needs;
use crate::value::{Column, Key, Val, ValueCounts, cmp_val_key};

/// Statistics of one column, shared by the aggregate expectations on it.
#[derive(Default)]
pub struct ColumnStats {
    pub rows: u64,
    pub nulls: u64,
    pub min: Option<Key>,
    pub max: Option<Key>,
    pub int_sum: i128,
    pub float_sum: f64,
    compensation: f64,
    pub is_int: bool,
    pub moments: kiln_stats::profile::Moments,
    pub counts: Option<ValueCounts>,
    pub want_moments: bool,
}

impl ColumnStats {
    pub fn new(needs: Needs) -> ColumnStats {
        ColumnStats {
            counts: needs.counts.then(ValueCounts::default),
            want_moments: needs.moments,
            ..Default::default()
        }
    }

    pub fn update(&mut self, column: &Column) {
        self.rows += column.len() as u64;
        self.is_int = matches!(column, Column::Int(_) | Column::Bool(_));
        if let Some((codes, values)) = column.codes() {
            // Text: count keys, then merge each listed value once and take min/max
            // from the distinct values.
            let mut per_key = vec![0u64; values.len()];
            for code in codes {
                match code {
                    Some(k) => per_key[k] += 1,
                    None => self.nulls += 1,
                }
            }
            let text_counts = per_key
                .into_iter()
                .enumerate()
                .filter(|&(_, c)| c > 0)
                .map(|(k, c)| (values.value(k), c));
            for (s, count) in text_counts {
                let v = Val::Str(s);
                if self.min.as_ref().is_none_or(|m| cmp_val_key(&v, m).is_lt()) {
                    self.min = Some(v.key());
                }
                if self.max.as_ref().is_none_or(|m| cmp_val_key(&v, m).is_gt()) {
                    self.max = Some(v.key());
                }
                if let Some(counts) = &mut self.counts {
                    counts.add_many(s, count);
                }
            }
            return;
        }
        if let Column::Int(array) = column {
            // The common case, typed: no per-cell enum, min/max kept as integers.
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            let mut sum = 0i128;
            let mut valid = 0u64;
            for (i, &x) in array.values().iter().enumerate() {
                if array.is_null(i) {
                    continue;
                }
                valid += 1;
                sum += i128::from(x);
                lo = lo.min(x);
                hi = hi.max(x);
                if self.want_moments {
                    self.moments.push(x as f64);
                }
                if let Some(counts) = &mut self.counts {
                    counts.add(&Val::Int(x));
                }
            }
            self.nulls += array.len() as u64 - valid;
            self.int_sum += sum;
            if valid > 0 {
                if self
                    .min
                    .as_ref()
                    .is_none_or(|m| cmp_val_key(&Val::Int(lo), m).is_lt())
                {
                    self.min = Some(Key::Int(lo));
                }
                if self
                    .max
                    .as_ref()
                    .is_none_or(|m| cmp_val_key(&Val::Int(hi), m).is_gt())
                {
                    self.max = Some(Key::Int(hi));
                }
            }
            return;
        }
        for i in 0..column.len() {
            let v = column.get(i);
            if v.is_null() {
                self.nulls += 1;
                continue;
            }
            match v {
                Val::Int(x) => self.int_sum += i128::from(x),
                Val::Bool(b) => self.int_sum += i128::from(b),
                Val::Float(x) => {
                    // Neumaier summation: the sum pandas reports, without its rounding drift.
                    let t = self.float_sum + x;
                    self.compensation += if self.float_sum.abs() >= x.abs() {
                        (self.float_sum - t) + x
                    } else {
                        (x - t) + self.float_sum
                    };
                    self.float_sum = t;
                }
                _ => {}
            }
            if self.want_moments
                && let Some(x) = v.as_f64()
                && !matches!(v, Val::Ts(_))
            {
                self.moments.push(x);
            }
            if self.min.as_ref().is_none_or(|m| cmp_val_key(&v, m).is_lt()) {
                self.min = Some(v.key());
            }
            if self.max.as_ref().is_none_or(|m| cmp_val_key(&v, m).is_gt()) {
                self.max = Some(v.key());
            }
            if let Some(counts) = &mut self.counts {
                counts.add(&v);
            }
        }
    }

    pub fn non_null(&self) -> u64 {
        self.rows - self.nulls
    }

    pub(crate) fn sum(&self) -> Option<Json> {
        if self.is_int {
            Some(
                i64::try_from(self.int_sum).map_or_else(|_| json!(self.int_sum as f64), Json::from),
            )
        } else {
            number(self.float_sum + self.compensation)
        }
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        let n = self.non_null();
        (n > 0).then(|| {
            if self.is_int {
                self.int_sum as f64 / n as f64
            } else {
                (self.float_sum + self.compensation) / n as f64
            }
        })
    }

    /// One exact quantile ([`quantiles`]).
    #[cfg(test)]
    pub(crate) fn quantile(sorted: &[(f64, u64)], n: u64, q: f64, method: &str) -> Option<f64> {
        quantiles(sorted.iter().copied(), n, &[q], method)[0]
    }
}

/// Exact quantiles of a multiset of `n` values streamed once in order as
/// `(value, count)`, with numpy's methods (`nearest` rounds the index half to even):
/// only the order statistics the quantiles need are kept, so a spilled column of
/// 100 million distinct values costs no more memory than a small one.
pub(crate) fn quantiles(
    sorted: impl Iterator<Item = (f64, u64)>,
    n: u64,
    qs: &[f64],
    method: &str,
) -> Vec<Option<f64>> {
    if n == 0 {
        return vec![None; qs.len()];
    }
    // The two order statistics each quantile is made of (the same one twice for
    // `nearest`), and the position h between them.
    let positions: Vec<(u64, u64, f64)> = qs
        .iter()
        .map(|&q| {
            let h = q * (n - 1) as f64;
            if matches!(method, "lower" | "higher" | "midpoint" | "linear") {
                (h.floor() as u64, h.ceil() as u64, h)
            } else {
                let i = h.round_ties_even() as u64;
                (i, i, h)
            }
        })
        .collect();
    let mut wanted: Vec<u64> = positions.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
    let mut next = wanted.iter().peekable();
    let mut seen = 0u64;
    for (v, c) in sorted {
        seen += c;
        while let Some(&&i) = next.peek() {
            if i >= seen {
                break;
            }
            found.insert(i, v);
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
    }
    positions
        .iter()
        .map(|&(lo, hi, h)| {
            let (a, b) = (*found.get(&lo)?, *found.get(&hi)?);
            Some(match method {
                "lower" => a,
                "higher" => b,
                "midpoint" => (a + b) / 2.0,
                "linear" => a + (b - a) * (h - lo as f64),
                _ => a,
            })
        })
        .collect()
}

pub(crate) fn number(x: f64) -> Option<Json> {
    serde_json::Number::from_f64(x).map(Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_quantiles_round_half_to_even_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], q, method="nearest")
        let sorted = [(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)];
        assert_eq!(ColumnStats::quantile(&sorted, 4, 0.5, "nearest"), Some(3.0)); // index 1.5 → 2
        assert_eq!(ColumnStats::quantile(&sorted, 4, 0.5, "linear"), Some(2.5));
        assert_eq!(
            ColumnStats::quantile(&sorted, 4, 1.0 / 6.0, "nearest"),
            Some(1.0)
        ); // index 0.5 → 0
        assert_eq!(ColumnStats::quantile(&sorted, 4, 0.25, "lower"), Some(1.0));
        assert_eq!(ColumnStats::quantile(&sorted, 4, 0.25, "higher"), Some(2.0));
        assert_eq!(ColumnStats::quantile(&sorted, 0, 0.5, "nearest"), None);
    }
}
