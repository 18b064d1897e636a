//! The aggregate family: a statistic of one column (from its shared
//! [`ColumnStats`]) compared with bounds or a set.

use serde_json::{Map, Value as Json, json};

use super::kwargs::Kwargs;
use super::registry::{
    COLUMN_BETWEEN, COLUMN_BETWEEN_NUMBERS, ExpectationType, Kwarg, KwargType::*, optional,
    required,
};
use super::stats::{number, quantiles};
use super::{Bounds, ColumnStats, Needs, Outcome, Work};
use crate::value::{Key, Val, ValueCounts, ValueSet, format_ts, parse_ts};

/// An aggregate of the kwargs' `column`.
fn of_column(k: &Kwargs<'_>, aggregate: Aggregate) -> Result<Work, String> {
    Ok(Work::Aggregate {
        column: k.string("column")?,
        aggregate,
    })
}

const SET: &[Kwarg] = &[
    required("column", Str),
    required("value_set", List),
    optional("parse_strings_as_datetimes", Bool),
];

fn set(k: &Kwargs<'_>) -> Result<ValueSet, String> {
    Ok(ValueSet::new(&k.required_list("value_set")?))
}

/// The aggregate family's rows of the registry.
pub(super) const TYPES: &[ExpectationType] = &[
    ExpectationType {
        name: "expect_column_min_to_be_between",
        kwargs: COLUMN_BETWEEN,
        compile: |k| of_column(k, Aggregate::Min(k.bounds(true, false)?)),
    },
    ExpectationType {
        name: "expect_column_max_to_be_between",
        kwargs: COLUMN_BETWEEN,
        compile: |k| of_column(k, Aggregate::Max(k.bounds(true, false)?)),
    },
    ExpectationType {
        name: "expect_column_mean_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::Mean(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_median_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::Median(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_stdev_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::Stdev(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_sum_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::Sum(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_unique_value_count_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::UniqueCount(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_proportion_of_unique_values_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::UniqueProportion(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_proportion_of_non_null_values_to_be_between",
        kwargs: COLUMN_BETWEEN_NUMBERS,
        compile: |k| of_column(k, Aggregate::NonNullProportion(k.bounds(false, false)?)),
    },
    ExpectationType {
        name: "expect_column_quantile_values_to_be_between",
        kwargs: &[
            required("column", Str),
            required("quantile_ranges", Object),
            optional("allow_relative_error", Custom),
        ],
        compile: compile_quantiles,
    },
    ExpectationType {
        name: "expect_column_distinct_values_to_be_in_set",
        kwargs: SET,
        compile: |k| {
            let set = k.list("value_set")?.map(|v| ValueSet::new(&v));
            if set.as_ref().is_none_or(|s| s.values().is_empty()) {
                return Err(k.fail("`value_set` must be a non-empty list"));
            }
            of_column(k, Aggregate::DistinctInSet(set))
        },
    },
    ExpectationType {
        name: "expect_column_distinct_values_to_contain_set",
        kwargs: SET,
        compile: |k| of_column(k, Aggregate::DistinctContain(set(k)?)),
    },
    ExpectationType {
        name: "expect_column_distinct_values_to_equal_set",
        kwargs: SET,
        compile: |k| of_column(k, Aggregate::DistinctEqual(set(k)?)),
    },
    ExpectationType {
        name: "expect_column_most_common_value_to_be_in_set",
        kwargs: &[
            required("column", Str),
            required("value_set", List),
            optional("ties_okay", Bool),
        ],
        compile: |k| {
            let aggregate = Aggregate::MostCommon {
                set: set(k)?,
                ties_okay: k.flag("ties_okay", false)?,
            };
            of_column(k, aggregate)
        },
    },
];

/// `quantile_ranges: {quantiles: [...], value_ranges: [[min, max], ...]}` and GE's
/// interpolation method in `allow_relative_error`.
fn compile_quantiles(k: &Kwargs<'_>) -> Result<Work, String> {
    let Some(Json::Object(ranges)) = k.get("quantile_ranges") else {
        return Err(k.fail("`quantile_ranges` must be an object"));
    };
    let quantiles: Vec<f64> = match ranges.get("quantiles") {
        Some(Json::Array(q)) => q
            .iter()
            .map(|v| {
                v.as_f64()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .ok_or_else(|| k.fail(format!("quantile {v} is not a number in [0, 1]")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(k.fail("`quantile_ranges.quantiles` must be a list of numbers")),
    };
    let value_ranges: Vec<(Option<f64>, Option<f64>)> = match ranges.get("value_ranges") {
        Some(Json::Array(r)) => r
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([lo, hi]) => Ok((lo.as_f64(), hi.as_f64())),
                _ => Err(k.fail(format!("value range {pair} is not [min, max]"))),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(k.fail("`quantile_ranges.value_ranges` must be a list of [min, max]"));
        }
    };
    if value_ranges.len() != quantiles.len() {
        return Err(k.fail("`quantile_ranges`: quantiles and value_ranges differ in length"));
    }
    const METHODS: [&str; 5] = ["linear", "lower", "higher", "midpoint", "nearest"];
    let method = match k.get("allow_relative_error") {
        None | Some(Json::Bool(false)) => "nearest".to_string(),
        Some(Json::String(m)) if METHODS.contains(&m.as_str()) => m.clone(),
        Some(other) => {
            return Err(k.fail(format!(
                "`allow_relative_error` {other} is not one of {}",
                METHODS.join(", ")
            )));
        }
    };
    of_column(
        k,
        Aggregate::Quantiles {
            quantiles,
            ranges: value_ranges,
            method,
        },
    )
}

/// An aggregate over one column's statistics.
pub enum Aggregate {
    Min(Bounds),
    Max(Bounds),
    Mean(Bounds),
    Median(Bounds),
    Stdev(Bounds),
    Sum(Bounds),
    Quantiles {
        quantiles: Vec<f64>,
        ranges: Vec<(Option<f64>, Option<f64>)>,
        method: String,
    },
    DistinctInSet(Option<ValueSet>),
    DistinctContain(ValueSet),
    DistinctEqual(ValueSet),
    UniqueCount(Bounds),
    UniqueProportion(Bounds),
    NonNullProportion(Bounds),
    MostCommon {
        set: ValueSet,
        ties_okay: bool,
    },
}

impl Aggregate {
    pub(crate) fn needs(&self) -> Needs {
        match self {
            Aggregate::Min(_)
            | Aggregate::Max(_)
            | Aggregate::Mean(_)
            | Aggregate::Sum(_)
            | Aggregate::NonNullProportion(_) => Needs::default(),
            Aggregate::Stdev(_) => Needs {
                moments: true,
                counts: false,
            },
            _ => Needs {
                counts: true,
                moments: false,
            },
        }
    }

    /// The verdict from the column's statistics.
    pub fn finish(&self, stats: &ColumnStats) -> Outcome {
        let between = |value: Option<Json>, bounds: &Bounds| -> Outcome {
            let Some(value) = value else {
                return Outcome::observed(false, Json::Null);
            };
            let v = match &value {
                Json::Number(n) if n.is_i64() => Val::Int(n.as_i64().unwrap_or_default()),
                Json::Number(n) => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
                Json::String(s) => parse_ts(s).map_or(Val::Str(s), Val::Ts),
                _ => Val::Null,
            };
            match bounds.contains(&v) {
                Ok(ok) => Outcome::observed(ok, value),
                Err(e) => Outcome::exception(e),
            }
        };
        let key_json = |k: &Option<Key>| {
            k.as_ref().map(|k| match k {
                Key::Ts(t) => Json::String(format_ts(*t)),
                k => k.to_json(),
            })
        };
        let distinct = || -> Vec<Key> {
            stats
                .counts
                .as_ref()
                .map(|c| c.sorted().into_iter().map(|(k, _)| k).collect())
                .unwrap_or_default()
        };
        let n = stats.non_null();
        match self {
            Aggregate::Min(b) => between(key_json(&stats.min), b),
            Aggregate::Max(b) => between(key_json(&stats.max), b),
            Aggregate::Mean(b) => between(stats.mean().and_then(number), b),
            Aggregate::Sum(b) => between(
                if stats.rows == 0 {
                    Some(json!(0))
                } else {
                    stats.sum()
                },
                b,
            ),
            Aggregate::Stdev(b) => between(
                stats
                    .moments
                    .sample_variance()
                    .map(f64::sqrt)
                    .and_then(number),
                b,
            ),
            Aggregate::Median(b) => {
                let median = stats
                    .counts
                    .as_ref()
                    .and_then(|c| quantiles(c.numbers(), n, &[0.5], "linear")[0]);
                between(median.and_then(number), b)
            }
            Aggregate::Quantiles {
                quantiles,
                ranges,
                method,
            } => {
                let values: Vec<Option<f64>> = match &stats.counts {
                    Some(c) => self::quantiles(c.numbers(), n, quantiles, method),
                    None => vec![None; quantiles.len()],
                };
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs().max(a.abs());
                let details: Vec<bool> = values
                    .iter()
                    .zip(ranges)
                    .map(|(v, (lo, hi))| match v {
                        None => false,
                        Some(v) => {
                            let lo = lo.unwrap_or(f64::NEG_INFINITY);
                            let hi = hi.unwrap_or(f64::INFINITY);
                            close(*v, lo) || close(*v, hi) || (lo <= *v && *v <= hi)
                        }
                    })
                    .collect();
                let mut result = Map::new();
                result.insert(
                    "observed_value".into(),
                    json!({"quantiles": quantiles, "values": values.iter().map(|v| v.and_then(number)).collect::<Vec<_>>()}),
                );
                result.insert("details".into(), json!({"success_details": details}));
                Outcome {
                    success: details.iter().all(|&d| d),
                    result,
                    error: None,
                }
            }
            Aggregate::DistinctInSet(set) => {
                let keys = distinct();
                let unexpected: Vec<Json> = keys
                    .iter()
                    .filter(|k| set.as_ref().is_some_and(|s| !s.contains_key(k)))
                    .map(Key::to_json)
                    .collect();
                distinct_outcome(&keys, Some(unexpected), None)
            }
            Aggregate::DistinctContain(set) => {
                let keys = distinct();
                distinct_outcome(&keys, None, Some(missing_from(set, &keys)))
            }
            Aggregate::DistinctEqual(set) => {
                let keys = distinct();
                let unexpected: Vec<Json> = keys
                    .iter()
                    .filter(|k| !set.contains_key(k))
                    .map(Key::to_json)
                    .collect();
                distinct_outcome(&keys, Some(unexpected), Some(missing_from(set, &keys)))
            }
            Aggregate::UniqueCount(b) => between(
                Some(json!(
                    stats.counts.as_ref().map_or(0, ValueCounts::distinct)
                )),
                b,
            ),
            Aggregate::UniqueProportion(b) => {
                let unique = stats.counts.as_ref().map_or(0, ValueCounts::distinct);
                let p = if stats.rows > 0 && n > 0 {
                    unique as f64 / n as f64
                } else {
                    0.0
                };
                between(number(p), b)
            }
            Aggregate::NonNullProportion(b) => {
                let p = if stats.rows > 0 {
                    n as f64 / stats.rows as f64
                } else {
                    0.0
                };
                between(number(p), b)
            }
            Aggregate::MostCommon { set, ties_okay } => {
                let all = stats
                    .counts
                    .as_ref()
                    .map(ValueCounts::sorted)
                    .unwrap_or_default();
                let top = all.iter().map(|(_, c)| *c).max().unwrap_or(0);
                let modes: Vec<&Key> = all
                    .iter()
                    .filter(|(_, c)| *c == top && top > 0)
                    .map(|(k, _)| k)
                    .collect();
                let hits = modes.iter().filter(|k| set.contains_key(k)).count();
                let ok = if *ties_okay {
                    hits > 0
                } else {
                    modes.len() == 1 && hits == 1
                };
                Outcome::observed(ok, Json::Array(modes.iter().map(|k| k.to_json()).collect()))
            }
        }
    }
}

/// Distinct values listed in a result (GE 1.x's `MAX_DISTINCT_VALUES`).
const MAX_DISTINCT_LISTED: usize = 20;

/// Values of the set that the column never holds.
fn missing_from(set: &ValueSet, keys: &[Key]) -> Vec<Json> {
    set.values()
        .iter()
        .filter(|j| {
            !keys
                .iter()
                .any(|k| crate::value::equals_json(&k.as_val(), j))
        })
        .cloned()
        .collect()
}

/// GE 1.x's result of the distinct-values expectations: no observed value; the
/// distinct values outside the set (`unexpected_*`) and the set's values missing from
/// the column (`missing_*`). Kiln adds the sorted distinct values under `details`.
fn distinct_outcome(
    keys: &[Key],
    unexpected: Option<Vec<Json>>,
    missing: Option<Vec<Json>>,
) -> Outcome {
    let mut out = Outcome::observed(true, Json::Null);
    if let Some(u) = unexpected {
        out.success &= u.is_empty();
        out.result.insert("unexpected_count".into(), json!(u.len()));
        out.result.insert(
            "partial_unexpected_list".into(),
            Json::Array(u.into_iter().take(MAX_DISTINCT_LISTED).collect()),
        );
    }
    if let Some(m) = missing {
        out.success &= m.is_empty();
        out.result.insert("missing_count".into(), json!(m.len()));
        out.result.insert(
            "partial_missing_list".into(),
            Json::Array(m.into_iter().take(MAX_DISTINCT_LISTED).collect()),
        );
    }
    out.result.insert(
        "details".into(),
        json!({"distinct_values": keys.iter().map(Key::to_json).collect::<Vec<_>>()}),
    );
    out
}
