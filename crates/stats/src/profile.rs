//! Column profiles: the statistics prepare writes to `profile.json`, which later serve
//! as the reference for drift and training/serving skew checks.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sketch::QuantileSketch;
use kiln_core::error::Result;

/// Quantile levels reported for numeric columns.
pub const QUANTILE_LEVELS: [f64; 11] =
    [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];
/// Bins of the equal-width histogram of numeric columns.
pub const HISTOGRAM_BINS: usize = 20;
/// Categories listed with counts (the rest are summed as `other_count`).
pub const MAX_CATEGORIES: usize = 1000;
/// Distinct categories tracked before counting stops growing (high-cardinality guard).
const MAX_TRACKED: usize = 100_000;

/// prepare's `profile.json`: the profile of each split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitProfiles {
    pub train: TableProfile,
    pub test: TableProfile,
}

impl SplitProfiles {
    /// Reads a `profile.json`: the one reader of the file (train's reference, the
    /// validation's drift reference).
    pub async fn read(object: &kiln_core::store::ObjectRef) -> Result<SplitProfiles> {
        #[expect(clippy::disallowed_methods, reason = "the profile's own reader")]
        kiln_core::store::parse_json(&object.get().await?, object.uri())
    }
}

/// Reads a reference profile for drift: a `profile.json`'s train profile, or a single
/// table's profile (a model bundle's `reference_profile.json`).
pub async fn read_reference(object: &kiln_core::store::ObjectRef) -> Result<TableProfile> {
    let uri = object.uri();
    #[expect(clippy::disallowed_methods, reason = "the profile's own reader")]
    let value: serde_json::Value = kiln_core::store::parse_json(&object.get().await?, uri)?;
    let profile = value.get("train").cloned().unwrap_or(value);
    serde_json::from_value(profile)
        .map_err(|e| kiln_core::Error::usage(format!("{uri}: not a Kiln profile: {e}")))
}

/// The profile of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

impl TableProfile {
    /// The profile of a named column.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The profile of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// Non-null values.
    pub count: u64,
    pub nulls: u64,
    #[serde(flatten)]
    pub stats: ColumnStats,
}

/// Type-specific statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnStats {
    Numeric {
        min: Option<f64>,
        max: Option<f64>,
        mean: Option<f64>,
        /// Sample standard deviation (n − 1), as pandas' `describe`.
        std: Option<f64>,
        /// `[level, value]` pairs at [`QUANTILE_LEVELS`].
        quantiles: Vec<[f64; 2]>,
        /// Percentiles 0..=100, the sketch of the CDF used for KS drift tests.
        percentiles: Vec<f64>,
        /// Whether quantiles are exact (few distinct values) or from a compressed sketch.
        exact: bool,
        histogram: Histogram,
        distinct: Option<u64>,
    },
    Categorical {
        distinct: u64,
        /// True when counting stopped growing (more than 100,000 distinct values).
        distinct_is_lower_bound: bool,
        /// `[value, count]` by count descending, then value; at most 1,000.
        top: Vec<(String, u64)>,
        /// Non-null values not listed in `top`.
        other_count: u64,
    },
    Timestamp {
        min: Option<DateTime<Utc>>,
        max: Option<DateTime<Utc>>,
    },
}

/// An equal-width histogram: `edges.len() == counts.len() + 1`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Running moments (Welford), numerically stable in one pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    m2: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Population variance (divide by n).
    pub fn population_variance(&self) -> Option<f64> {
        (self.n > 0).then(|| self.m2 / self.n as f64)
    }

    /// Sample variance (divide by n − 1).
    pub fn sample_variance(&self) -> Option<f64> {
        (self.n > 1).then(|| self.m2 / (self.n - 1) as f64)
    }
}

enum Accumulator {
    Numeric {
        sketch: QuantileSketch,
        moments: Moments,
    },
    Categorical {
        counts: HashMap<String, u64>,
        saturated: bool,
        untracked: u64,
    },
    Timestamp {
        min: Option<i64>,
        max: Option<i64>,
    },
}

/// Builds a [`TableProfile`] from streamed batches.
pub struct TableProfiler {
    names: Vec<String>,
    accumulators: Vec<Accumulator>,
    nulls: Vec<u64>,
    counts: Vec<u64>,
    rows: u64,
}

impl TableProfiler {
    /// A profiler for the given columns of a schema (numeric, string, bool, timestamp).
    pub fn new(schema: &arrow::datatypes::Schema, columns: &[&str]) -> Self {
        let mut names = Vec::new();
        let mut accumulators = Vec::new();
        for name in columns {
            let Ok(field) = schema.field_with_name(name) else {
                continue;
            };
            let acc = match field.data_type() {
                DataType::Int32 | DataType::Int64 | DataType::Float64 => Accumulator::Numeric {
                    sketch: QuantileSketch::default(),
                    moments: Moments::default(),
                },
                DataType::Timestamp(..) => Accumulator::Timestamp {
                    min: None,
                    max: None,
                },
                _ => Accumulator::Categorical {
                    counts: HashMap::new(),
                    saturated: false,
                    untracked: 0,
                },
            };
            names.push((*name).to_string());
            accumulators.push(acc);
        }
        let n = names.len();
        TableProfiler {
            names,
            accumulators,
            nulls: vec![0; n],
            counts: vec![0; n],
            rows: 0,
        }
    }

    /// Adds a batch (columns are found by name).
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for (i, name) in self.names.iter().enumerate() {
            let Some(array) = batch.column_by_name(name) else {
                continue;
            };
            self.nulls[i] += array.null_count() as u64;
            self.counts[i] += (array.len() - array.null_count()) as u64;
            match &mut self.accumulators[i] {
                Accumulator::Numeric { sketch, moments } => {
                    for v in numeric_values(array.as_ref()).into_iter().flatten() {
                        sketch.insert(v);
                        moments.push(v);
                    }
                }
                Accumulator::Categorical {
                    counts,
                    saturated,
                    untracked,
                } => {
                    for key in (0..array.len()).filter_map(|row| category_key(array.as_ref(), row))
                    {
                        if let Some(c) = counts.get_mut(&key) {
                            *c += 1;
                        } else if counts.len() < MAX_TRACKED {
                            counts.insert(key, 1);
                        } else {
                            *saturated = true;
                            *untracked += 1;
                        }
                    }
                }
                Accumulator::Timestamp { min, max } => {
                    let ts = array.as_primitive::<TimestampMicrosecondType>();
                    for v in ts.iter().flatten() {
                        *min = Some(min.map_or(v, |m| m.min(v)));
                        *max = Some(max.map_or(v, |m| m.max(v)));
                    }
                }
            }
        }
        Ok(())
    }

    /// The quantile sketch of a numeric column, for fitting the transform.
    pub fn sketch(&self, name: &str) -> Option<&QuantileSketch> {
        let i = self.names.iter().position(|n| n == name)?;
        match &self.accumulators[i] {
            Accumulator::Numeric { sketch, .. } => Some(sketch),
            _ => None,
        }
    }

    /// The mean of a numeric column's non-null values.
    pub fn mean(&self, name: &str) -> Option<f64> {
        let i = self.names.iter().position(|n| n == name)?;
        match &self.accumulators[i] {
            Accumulator::Numeric { moments, .. } if moments.n > 0 => Some(moments.mean),
            _ => None,
        }
    }

    /// The finished profile.
    pub fn finish(&self) -> TableProfile {
        let columns = self
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| ColumnProfile {
                name: name.clone(),
                count: self.counts[i],
                nulls: self.nulls[i],
                stats: finish_stats(&self.accumulators[i]),
            })
            .collect();
        TableProfile {
            rows: self.rows,
            columns,
        }
    }
}

fn finish_stats(acc: &Accumulator) -> ColumnStats {
    match acc {
        Accumulator::Numeric { sketch, moments } => {
            let (min, max) = sketch
                .min_max()
                .map_or((None, None), |(a, b)| (Some(a), Some(b)));
            let quantiles = sketch
                .quantiles(&QUANTILE_LEVELS)
                .map(|vals| {
                    QUANTILE_LEVELS
                        .iter()
                        .zip(vals)
                        .map(|(l, v)| [*l, v])
                        .collect()
                })
                .unwrap_or_default();
            let levels: Vec<f64> = (0..=100).map(|p| p as f64 / 100.0).collect();
            let (edges, counts) = sketch.histogram(HISTOGRAM_BINS).unwrap_or_default();
            ColumnStats::Numeric {
                min,
                max,
                mean: (moments.n > 0).then_some(moments.mean),
                std: moments.sample_variance().map(f64::sqrt),
                quantiles,
                percentiles: sketch.quantiles(&levels).unwrap_or_default(),
                exact: sketch.is_exact(),
                histogram: Histogram { edges, counts },
                distinct: sketch.value_counts().map(|v| v.len() as u64),
            }
        }
        Accumulator::Categorical {
            counts,
            saturated,
            untracked,
        } => {
            let mut top: Vec<(String, u64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let listed: u64 = top.iter().take(MAX_CATEGORIES).map(|t| t.1).sum();
            let total: u64 = counts.values().sum::<u64>() + untracked;
            top.truncate(MAX_CATEGORIES);
            ColumnStats::Categorical {
                distinct: counts.len() as u64,
                distinct_is_lower_bound: *saturated,
                top,
                other_count: total - listed,
            }
        }
        Accumulator::Timestamp { min, max } => ColumnStats::Timestamp {
            min: min.and_then(DateTime::from_timestamp_micros),
            max: max.and_then(DateTime::from_timestamp_micros),
        },
    }
}

/// The values of an Int32, Int64 or Float64 array as f64 (None for nulls; empty for
/// other types).
pub fn numeric_values(array: &dyn Array) -> Vec<Option<f64>> {
    match array.data_type() {
        DataType::Int32 => array
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::Int64 => array
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|x| x as f64))
            .collect(),
        DataType::Float64 => array.as_primitive::<Float64Type>().iter().collect(),
        _ => Vec::new(),
    }
}

/// The canonical text of a categorical value: strings as they are, integers in
/// decimal, booleans as `true`/`false`. The transform keys its vocabulary on this text
/// for record batches and JSON records alike.
pub fn category_key(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(array.as_string_view().value(row).to_string()),
        DataType::Int64 => Some(array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::Boolean => Some(array.as_boolean().value(row).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn profiles_numeric_and_categorical_columns() {
        let batch = RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    None,
                    Some(3.0),
                    Some(2.0),
                ])) as ArrayRef,
            ),
            (
                "c",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    None,
                    Some("a"),
                ])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut p = TableProfiler::new(&batch.schema(), &["x", "c"]);
        p.update(&batch).unwrap();
        p.update(&batch).unwrap();
        let profile = p.finish();
        assert_eq!(profile.rows, 8);
        let x = profile.column("x").unwrap();
        assert_eq!((x.count, x.nulls), (6, 2));
        match &x.stats {
            ColumnStats::Numeric {
                mean,
                std,
                min,
                max,
                quantiles,
                ..
            } => {
                assert_eq!(*mean, Some(2.0));
                // pandas: Series([1,3,2,1,3,2]).std() == 0.894427190999916
                assert!((std.unwrap() - 0.894_427_190_999_916).abs() < 1e-12);
                assert_eq!((*min, *max), (Some(1.0), Some(3.0)));
                assert_eq!(quantiles[5], [0.5, 2.0]);
            }
            other => panic!("{other:?}"),
        }
        let c = profile.column("c").unwrap();
        match &c.stats {
            ColumnStats::Categorical {
                distinct,
                top,
                other_count,
                ..
            } => {
                assert_eq!(*distinct, 2);
                assert_eq!(top[0], ("a".to_string(), 4));
                assert_eq!(*other_count, 0);
            }
            other => panic!("{other:?}"),
        }
        // Round-trips through JSON.
        let text = serde_json::to_string(&profile).unwrap();
        assert_eq!(
            serde_json::from_str::<TableProfile>(&text).unwrap(),
            profile
        );
    }
}
