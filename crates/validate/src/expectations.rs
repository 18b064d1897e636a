//! Each supported expectation type: its kwargs, checked strictly, and what it computes.
//!
//! Expectations compile to one of three kinds of work:
//! - [`Work::Table`]: decided from the schema and the row count;
//! - [`Work::Aggregate`]: reads a column's shared [`ColumnStats`] (count, nulls, min,
//!   max, sum, moments, exact value counts), computed once per column for all the
//!   expectations that need it;
//! - [`Work::Map`]: a per-row test whose unexpected rows are counted as GE's column map
//!   expectations count them.

use arrow::array::Array;
use arrow::datatypes::{DataType, Schema};
use regex::Regex;
use serde_json::{Map, Value as Json, json};

use crate::suite::ExpectationConfig;
use crate::value::{
    Column, Key, Val, ValueCounts, ValueSet, cmp_val_key, decode, encode, fingerprint, format_ts,
    parse_ts, type_names,
};

/// The expectation types Kiln runs.
pub const SUPPORTED: &[&str] = &[
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_distinct_values_to_contain_set",
    "expect_column_distinct_values_to_equal_set",
    "expect_column_max_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_median_to_be_between",
    "expect_column_min_to_be_between",
    "expect_column_most_common_value_to_be_in_set",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal",
    "expect_column_proportion_of_non_null_values_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
    "expect_column_quantile_values_to_be_between",
    "expect_column_stdev_to_be_between",
    "expect_column_sum_to_be_between",
    "expect_column_to_exist",
    "expect_column_unique_value_count_to_be_between",
    "expect_column_value_lengths_to_be_between",
    "expect_column_value_lengths_to_equal",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_match_regex_list",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_not_match_regex_list",
    "expect_compound_columns_to_be_unique",
    "expect_multicolumn_sum_to_equal",
    "expect_select_column_values_to_be_unique_within_record",
    "expect_table_column_count_to_be_between",
    "expect_table_column_count_to_equal",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
];

/// Kwargs every expectation accepts (they change reporting, not the verdict).
const COMMON: &[&str] = &[
    "result_format",
    "catch_exceptions",
    "include_config",
    "row_condition",
    "condition_parser",
    "batch_id",
];

/// Distinct tuples counted in a hash map before switching to a sorted list.
const TUPLE_SPILL: usize = 1 << 16;

/// How many unexpected values a result lists (GE's SUMMARY default).
pub const PARTIAL_UNEXPECTED: usize = 20;

/// What one expectation needs from a column's shared statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Needs {
    pub counts: bool,
    pub moments: bool,
}

/// A lower and upper bound, each optional, with strictness.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub min: Option<Json>,
    pub max: Option<Json>,
    pub strict_min: bool,
    pub strict_max: bool,
}

impl Bounds {
    /// Whether a number (or a timestamp, compared with dates given as text) is inside.
    fn contains(&self, v: &Val<'_>) -> Result<bool, String> {
        let check = |bound: &Json| -> Result<std::cmp::Ordering, String> {
            let ord = match (v, bound) {
                (Val::Ts(t), Json::String(s)) => {
                    let b =
                        parse_ts(s).ok_or_else(|| format!("`{s}` is not a date or date-time"))?;
                    Some(t.cmp(&b))
                }
                (Val::Str(a), Json::String(b)) => Some((*a).cmp(b.as_str())),
                (_, Json::Number(n)) => v
                    .as_f64()
                    .zip(n.as_f64())
                    .and_then(|(a, b)| a.partial_cmp(&b)),
                _ => None,
            };
            ord.ok_or_else(|| format!("cannot compare {} with {bound}", v.to_json()))
        };
        use std::cmp::Ordering::*;
        if let Some(min) = &self.min {
            let o = check(min)?;
            if o == Less || (self.strict_min && o == Equal) {
                return Ok(false);
            }
        }
        if let Some(max) = &self.max {
            let o = check(max)?;
            if o == Greater || (self.strict_max && o == Equal) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

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
    pub moments: kiln_core::profile::Moments,
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

    fn sum(&self) -> Option<Json> {
        if self.is_int {
            Some(
                i64::try_from(self.int_sum).map_or_else(|_| json!(self.int_sum as f64), Json::from),
            )
        } else {
            number(self.float_sum + self.compensation)
        }
    }

    fn mean(&self) -> Option<f64> {
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
    fn quantile(sorted: &[(f64, u64)], n: u64, q: f64, method: &str) -> Option<f64> {
        quantiles(sorted.iter().copied(), n, &[q], method)[0]
    }
}

/// Exact quantiles of a multiset of `n` values streamed once in order as
/// `(value, count)`, with numpy's methods (`nearest` rounds the index half to even):
/// only the order statistics the quantiles need are kept, so a spilled column of
/// 100 million distinct values costs no more memory than a small one.
fn quantiles(
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

fn number(x: f64) -> Option<Json> {
    serde_json::Number::from_f64(x).map(Json::Number)
}

/// Which rows a multi-column expectation skips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ignore {
    AllMissing,
    AnyMissing,
    Never,
}

/// A per-row test on one column's non-null values.
pub enum RowTest {
    Between(Bounds),
    InSet(ValueSet),
    NotInSet(ValueSet),
    Regex(Regex),
    NotRegex(Regex),
    RegexAny(Vec<Regex>),
    RegexAll(Vec<Regex>),
    NotRegexAny(Vec<Regex>),
    LengthBetween(Bounds),
    LengthEqual(u64),
}

impl RowTest {
    /// Whether the value is unexpected.
    fn unexpected(&self, v: &Val<'_>) -> Result<bool, String> {
        let text = |v: &Val<'_>| -> String {
            match v {
                Val::Str(s) => (*s).to_string(),
                other => match other.to_json() {
                    Json::String(s) => s,
                    j => j.to_string(),
                },
            }
        };
        Ok(match self {
            RowTest::Between(b) => !b.contains(v)?,
            RowTest::InSet(s) => !s.contains(v),
            RowTest::NotInSet(s) => s.contains(v),
            RowTest::Regex(r) => !with_text(v, &text, |t| r.is_match(t)),
            RowTest::NotRegex(r) => with_text(v, &text, |t| r.is_match(t)),
            RowTest::RegexAny(rs) => !with_text(v, &text, |t| rs.iter().any(|r| r.is_match(t))),
            RowTest::RegexAll(rs) => !with_text(v, &text, |t| rs.iter().all(|r| r.is_match(t))),
            RowTest::NotRegexAny(rs) => with_text(v, &text, |t| rs.iter().any(|r| r.is_match(t))),
            RowTest::LengthBetween(b) => {
                let Val::Str(s) = v else {
                    return Err(format!(
                        "value lengths need a string column, got {}",
                        v.to_json()
                    ));
                };
                !b.contains(&Val::Int(s.chars().count() as i64))?
            }
            RowTest::LengthEqual(n) => {
                let Val::Str(s) = v else {
                    return Err(format!(
                        "value lengths need a string column, got {}",
                        v.to_json()
                    ));
                };
                s.chars().count() as u64 != *n
            }
        })
    }
}

fn with_text(v: &Val<'_>, text: &dyn Fn(&Val<'_>) -> String, f: impl Fn(&str) -> bool) -> bool {
    match v {
        Val::Str(s) => f(s),
        other => f(&text(other)),
    }
}

/// What a map expectation tests per row.
pub enum MapKind {
    /// `column` must not be null (nulls are the unexpected values).
    NotNull,
    /// `column` must be null.
    IsNull,
    /// A test of each non-null value of `column`.
    Values(RowTest),
    /// Values of `column` must not repeat (needs all counts first).
    Unique,
    /// `a` compared with `b`.
    Pair {
        b: String,
        or_equal: bool,
        equal: bool,
        ignore: Ignore,
    },
    /// The tuple of columns must not repeat.
    Compound {
        columns: Vec<String>,
        ignore: Ignore,
    },
    /// No two columns of a row hold the same value.
    WithinRecord {
        columns: Vec<String>,
        ignore: Ignore,
    },
    /// The row sum of the columns equals `total`.
    Sum {
        columns: Vec<String>,
        total: f64,
        ignore: Ignore,
    },
}

/// A compiled map expectation and its running counts.
pub struct MapCheck {
    pub column: Option<String>,
    pub kind: MapKind,
    pub mostly: f64,
    pub rows: u64,
    pub considered: u64,
    pub unexpected: u64,
    pub partial: Vec<Json>,
    /// Counts of tuples by 128-bit fingerprint (uniqueness of several columns).
    pub tuples: crate::value::FastMap<u128, u32>,
    /// All tuple fingerprints, once there are more than [`TUPLE_SPILL`] distinct ones
    /// (sorted runs, on disk beyond one chunk).
    tuple_list: Option<Box<crate::spill::SortedSpill<u128>>>,
    /// The first rows of repeated tuples, for the partial list.
    pub repeated: Vec<(u128, Json)>,
    pub error: Option<String>,
}

impl MapCheck {
    fn new(column: Option<String>, kind: MapKind, mostly: f64) -> MapCheck {
        MapCheck {
            column,
            kind,
            mostly,
            rows: 0,
            considered: 0,
            unexpected: 0,
            partial: Vec::new(),
            tuples: Default::default(),
            repeated: Vec::new(),
            tuple_list: None,
            error: None,
        }
    }

    /// The columns this check reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.column.iter().map(String::as_str).collect();
        match &self.kind {
            MapKind::Pair { b, .. } => out.push(b),
            MapKind::Compound { columns, .. }
            | MapKind::WithinRecord { columns, .. }
            | MapKind::Sum { columns, .. } => out.extend(columns.iter().map(String::as_str)),
            _ => {}
        }
        out
    }

    fn flag(&mut self, value: Json) {
        self.unexpected += 1;
        if self.partial.len() < PARTIAL_UNEXPECTED {
            self.partial.push(value);
        }
    }

    /// Counts one batch, given its columns (in the order of [`MapCheck::columns`]).
    pub fn update(&mut self, columns: &[&Column]) {
        if self.error.is_some() || columns.is_empty() {
            return;
        }
        let n = columns[0].len();
        self.rows += n as u64;
        let result: Result<(), String> = (|| {
            match &self.kind {
                MapKind::NotNull => {
                    for _ in 0..columns[0].null_count() {
                        self.flag(Json::Null);
                    }
                    self.considered += n as u64;
                }
                MapKind::IsNull => {
                    for i in 0..n {
                        let v = columns[0].get(i);
                        if !v.is_null() {
                            self.flag(v.to_json());
                        }
                    }
                    self.considered += n as u64;
                }
                MapKind::Values(RowTest::Between(bounds))
                    if matches!(columns[0], Column::Int(_))
                        && bounds.min.as_ref().is_none_or(Json::is_number)
                        && bounds.max.as_ref().is_none_or(Json::is_number) =>
                {
                    let Column::Int(array) = columns[0] else {
                        unreachable!()
                    };
                    let as_f64 = |b: &Option<Json>| b.as_ref().and_then(Json::as_f64);
                    let (lo, hi) = (as_f64(&bounds.min), as_f64(&bounds.max));
                    let (strict_lo, strict_hi) = (bounds.strict_min, bounds.strict_max);
                    let outside = |x: f64| {
                        lo.is_some_and(|l| if strict_lo { x <= l } else { x < l })
                            || hi.is_some_and(|h| if strict_hi { x >= h } else { x > h })
                    };
                    let mut valid = 0u64;
                    for (i, &x) in array.values().iter().enumerate() {
                        if array.is_null(i) {
                            continue;
                        }
                        valid += 1;
                        if outside(x as f64) {
                            self.unexpected += 1;
                            if self.partial.len() < PARTIAL_UNEXPECTED {
                                self.partial.push(Json::from(x));
                            }
                        }
                    }
                    self.considered += valid;
                }
                MapKind::Values(test) if matches!(columns[0], Column::Text { .. }) => {
                    // Test each dictionary value once (0 untested, 1 fine, 2 unexpected).
                    let Some((codes, values)) = columns[0].codes() else {
                        unreachable!()
                    };
                    let mut verdicts = vec![0u8; values.len()];
                    let (mut considered, mut unexpected) = (0, 0);
                    for k in codes.flatten() {
                        considered += 1;
                        if verdicts[k] == 0 {
                            let bad = test.unexpected(&Val::Str(values.value(k)))?;
                            verdicts[k] = if bad { 2 } else { 1 };
                        }
                        if verdicts[k] == 2 {
                            unexpected += 1;
                            if self.partial.len() < PARTIAL_UNEXPECTED {
                                self.partial.push(Json::from(values.value(k)));
                            }
                        }
                    }
                    self.considered += considered;
                    self.unexpected += unexpected;
                }
                MapKind::Values(test) => {
                    let mut flagged = Vec::new();
                    let (mut considered, mut unexpected) = (0, 0);
                    for i in 0..n {
                        let v = columns[0].get(i);
                        if v.is_null() {
                            continue;
                        }
                        considered += 1;
                        let bad = test.unexpected(&v)?;
                        if bad {
                            unexpected += 1;
                            if self.partial.len() + flagged.len() < PARTIAL_UNEXPECTED {
                                flagged.push(v.to_json());
                            }
                        }
                    }
                    self.considered += considered;
                    self.unexpected += unexpected;
                    self.partial.extend(flagged);
                }
                MapKind::Unique => {
                    // The values are counted once per column in its shared statistics.
                    self.considered += (n - columns[0].null_count()) as u64;
                }
                MapKind::Pair {
                    or_equal,
                    equal,
                    ignore,
                    ..
                } => {
                    let (equal, or_equal, ignore) = (*equal, *or_equal, *ignore);
                    for i in 0..n {
                        let (a, b) = (columns[0].get(i), columns[1].get(i));
                        let skip = match ignore {
                            Ignore::AllMissing => a.is_null() && b.is_null(),
                            Ignore::AnyMissing => a.is_null() || b.is_null(),
                            Ignore::Never => false,
                        };
                        if skip {
                            continue;
                        }
                        self.considered += 1;
                        let ok = if equal {
                            !a.is_null() && !b.is_null() && a.key() == b.key()
                                || a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y)
                        } else {
                            match (a.as_f64(), b.as_f64(), a, b) {
                                (Some(x), Some(y), _, _) => {
                                    if or_equal {
                                        x >= y
                                    } else {
                                        x > y
                                    }
                                }
                                (_, _, Val::Str(x), Val::Str(y)) => {
                                    if or_equal {
                                        x >= y
                                    } else {
                                        x > y
                                    }
                                }
                                _ => false,
                            }
                        };
                        if !ok {
                            self.flag(json!([a.to_json(), b.to_json()]));
                        }
                    }
                }
                MapKind::Compound { ignore, .. } | MapKind::WithinRecord { ignore, .. } => {
                    let within = matches!(self.kind, MapKind::WithinRecord { .. });
                    let ignore = *ignore;
                    let mut buffer = Vec::new();
                    let mut row: Vec<Val<'_>> = Vec::with_capacity(columns.len());
                    for i in 0..n {
                        row.clear();
                        row.extend(columns.iter().map(|c| c.get(i)));
                        if skip_row(&row, ignore) {
                            continue;
                        }
                        self.considered += 1;
                        if within {
                            let mut keys: Vec<Key> = row.iter().map(Val::key).collect();
                            keys.sort();
                            keys.dedup();
                            if keys.len() < row.len() {
                                self.flag(Json::Array(row.iter().map(|v| v.to_json()).collect()));
                            }
                        } else {
                            buffer.clear();
                            for v in &row {
                                encode(v, &mut buffer);
                            }
                            let key = fingerprint(&buffer);
                            if let Some(list) = &mut self.tuple_list {
                                list.push(key);
                                continue;
                            }
                            let count = self.tuples.entry(key).or_default();
                            *count += 1;
                            if *count == 2 && self.repeated.len() < PARTIAL_UNEXPECTED {
                                let tuple = decode(&buffer).iter().map(Key::to_json).collect();
                                self.repeated.push((key, Json::Array(tuple)));
                            }
                            if self.tuples.len() > TUPLE_SPILL {
                                // Mostly-unique tuples: a list sorted at the end is smaller
                                // and faster than a hash map.
                                let mut list = Box::<crate::spill::SortedSpill<u128>>::default();
                                for (k, c) in self.tuples.drain() {
                                    list.extend(std::iter::repeat_n(k, c as usize));
                                }
                                self.tuple_list = Some(list);
                            }
                        }
                    }
                }
                MapKind::Sum { total, ignore, .. } => {
                    let (total, ignore) = (*total, *ignore);
                    for i in 0..n {
                        let row: Vec<Val<'_>> = columns.iter().map(|c| c.get(i)).collect();
                        if skip_row(&row, ignore) {
                            continue;
                        }
                        self.considered += 1;
                        let sum: f64 = row.iter().filter_map(Val::as_f64).sum();
                        if sum != total {
                            self.flag(Json::Array(row.iter().map(|v| v.to_json()).collect()));
                        }
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// What the check needs from its column's shared statistics.
    pub fn needs(&self) -> Option<(&str, Needs)> {
        match (&self.kind, &self.column) {
            (MapKind::Unique, Some(column)) => Some((
                column,
                Needs {
                    counts: true,
                    moments: false,
                },
            )),
            _ => None,
        }
    }

    /// Merges what uniqueness of several columns kept, so that [`MapCheck::finish`]
    /// is quick (the validator seals checks on one thread while it seals the column
    /// statistics on another).
    pub fn seal(&mut self) {
        if let Some(mut list) = self.tuple_list.take() {
            list.seal();
            self.tuples.clear();
            for (key, count) in list.counts().filter(|&(_, c)| c > 1) {
                self.tuples.insert(key, count as u32);
            }
        }
    }

    /// The result in GE's shape (`success`, `result`); `stats` are the column's shared
    /// statistics when [`MapCheck::needs`] asked for them.
    pub fn finish(mut self, stats: Option<&ColumnStats>) -> Outcome {
        if let Some(e) = self.error {
            return Outcome::exception(e);
        }
        // Every row whose value repeats is unexpected (pandas' `duplicated(keep=False)`).
        let dups: Vec<(Json, u64)> = match self.kind {
            MapKind::Unique => stats
                .and_then(|s| s.counts.as_ref())
                .map(ValueCounts::repeated)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, c)| (k.to_json(), c))
                .collect(),
            MapKind::Compound { .. } => {
                self.seal();
                let repeated: u64 = self
                    .tuples
                    .values()
                    .filter(|&&c| c > 1)
                    .map(|&c| u64::from(c))
                    .sum();
                let mut listed: Vec<(Json, u64)> = self
                    .repeated
                    .iter()
                    .map(|(key, tuple)| {
                        (
                            tuple.clone(),
                            self.tuples.get(key).map_or(2, |&c| u64::from(c)),
                        )
                    })
                    .collect();
                // Repeats beyond the listed ones still count (with no value to show).
                let shown: u64 = listed.iter().map(|(_, c)| c).sum();
                if repeated > shown {
                    listed.push((Json::Null, repeated - shown));
                }
                listed
            }
            _ => Vec::new(),
        };
        for (value, count) in dups {
            self.unexpected += count;
            if value.is_null() {
                continue;
            }
            for _ in 0..count.min(PARTIAL_UNEXPECTED as u64) {
                if self.partial.len() < PARTIAL_UNEXPECTED {
                    self.partial.push(value.clone());
                }
            }
        }
        let null_semantics = matches!(self.kind, MapKind::NotNull | MapKind::IsNull);
        let (element, considered, unexpected) = (self.rows, self.considered, self.unexpected);
        let success = if element == 0 || considered == 0 {
            true
        } else {
            (considered - unexpected) as f64 / considered as f64 >= self.mostly
        };
        let pct = |a: u64, b: u64| {
            if b == 0 {
                Json::Null
            } else {
                json!(a as f64 / b as f64 * 100.0)
            }
        };
        let mut result = Map::new();
        result.insert("element_count".into(), json!(element));
        result.insert("unexpected_count".into(), json!(unexpected));
        if null_semantics {
            result.insert("unexpected_percent".into(), pct(unexpected, element));
        } else {
            let missing = element - considered;
            result.insert(
                "unexpected_percent".into(),
                if element == 0 {
                    Json::Null
                } else {
                    pct(unexpected, considered)
                },
            );
            result.insert("missing_count".into(), json!(missing));
            result.insert("missing_percent".into(), pct(missing, element));
            result.insert("unexpected_percent_total".into(), pct(unexpected, element));
            result.insert(
                "unexpected_percent_nonmissing".into(),
                if element == 0 {
                    Json::Null
                } else {
                    pct(unexpected, considered)
                },
            );
        }
        let mut counts: Vec<(Json, u64)> = Vec::new();
        for v in &self.partial {
            match counts.iter_mut().find(|(k, _)| k == v) {
                Some((_, c)) => *c += 1,
                None => counts.push((v.clone(), 1)),
            }
        }
        counts.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
        });
        result.insert(
            "partial_unexpected_counts".into(),
            Json::Array(
                counts
                    .into_iter()
                    .map(|(value, count)| json!({"value": value, "count": count}))
                    .collect(),
            ),
        );
        result.insert("partial_unexpected_list".into(), Json::Array(self.partial));
        Outcome {
            success,
            result,
            error: None,
        }
    }
}

fn skip_row(row: &[Val<'_>], ignore: Ignore) -> bool {
    match ignore {
        Ignore::AllMissing => row.iter().all(Val::is_null),
        Ignore::AnyMissing => row.iter().any(Val::is_null),
        Ignore::Never => false,
    }
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
    fn needs(&self) -> Needs {
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

/// A check decided from the schema and the row count alone.
pub enum TableCheck {
    RowCount(Bounds),
    ColumnCount(Bounds),
    ColumnsOrdered(Vec<String>),
    ColumnsSet {
        set: Vec<String>,
        exact: bool,
    },
    ColumnExists {
        column: String,
        index: Option<usize>,
    },
    OfType {
        column: String,
        types: Vec<String>,
    },
}

impl TableCheck {
    pub fn finish(&self, schema: &Schema, rows: u64) -> Outcome {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let count = |n: usize| Outcome::observed(true, json!(n));
        match self {
            TableCheck::RowCount(b) => {
                let mut o = count(rows as usize);
                o.success = b.contains(&Val::Int(rows as i64)).unwrap_or(false);
                o
            }
            TableCheck::ColumnCount(b) => {
                let mut o = count(names.len());
                o.success = b.contains(&Val::Int(names.len() as i64)).unwrap_or(false);
                o
            }
            TableCheck::ColumnsOrdered(expected) => {
                let ok = names.len() == expected.len()
                    && names.iter().zip(expected).all(|(a, b)| a == b);
                let mut o = Outcome::observed(ok, json!(names));
                if !ok {
                    let mismatched: Vec<Json> = (0..names.len().max(expected.len()))
                        .filter(|&i| names.get(i).copied() != expected.get(i).map(String::as_str))
                        .map(|i| json!({"Expected Column Position": i, "Expected": expected.get(i), "Found": names.get(i)}))
                        .collect();
                    o.result
                        .insert("details".into(), json!({"mismatched": mismatched}));
                }
                o
            }
            TableCheck::ColumnsSet { set, exact } => {
                let unexpected: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !set.iter().any(|s| s == n))
                    .collect();
                let missing: Vec<&str> = set
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !names.contains(s))
                    .collect();
                let ok = missing.is_empty() && (!exact || unexpected.is_empty());
                let mut sorted = names.clone();
                sorted.sort();
                let mut o = Outcome::observed(ok, json!(sorted));
                if !ok {
                    o.result.insert(
                        "details".into(),
                        json!({"mismatched": {"unexpected": unexpected, "missing": missing}}),
                    );
                }
                o
            }
            TableCheck::ColumnExists { column, index } => {
                let at = names.iter().position(|n| n == column);
                let ok = match (at, index) {
                    (Some(a), Some(i)) => a == *i,
                    (Some(_), None) => true,
                    _ => false,
                };
                Outcome {
                    success: ok,
                    result: Map::new(),
                    error: None,
                }
            }
            TableCheck::OfType { column, types } => match schema.field_with_name(column) {
                Err(_) => Outcome::exception(format!("column `{column}` does not exist")),
                Ok(field) => {
                    let (observed, accepted) = type_names(field.data_type());
                    let ok = types.iter().any(|t| accepted.contains(&t.as_str()));
                    Outcome::observed(ok, json!(observed))
                }
            },
        }
    }
}

/// The verdict of one expectation, before it is dressed as GE's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub success: bool,
    pub result: Map<String, Json>,
    /// An exception GE would report in `exception_info` (the expectation fails).
    pub error: Option<String>,
}

impl Outcome {
    pub fn observed(success: bool, value: Json) -> Outcome {
        let mut result = Map::new();
        result.insert("observed_value".into(), value);
        Outcome {
            success,
            result,
            error: None,
        }
    }

    pub fn exception(message: impl Into<String>) -> Outcome {
        Outcome {
            success: false,
            result: Map::new(),
            error: Some(message.into()),
        }
    }
}

/// What running one expectation takes.
pub enum Work {
    Table(TableCheck),
    Aggregate {
        column: String,
        aggregate: Aggregate,
    },
    Map(MapCheck),
}

impl Work {
    /// What the aggregate needs from its column's statistics.
    pub fn needs(&self) -> Option<(&str, Needs)> {
        match self {
            Work::Aggregate { column, aggregate } => Some((column, aggregate.needs())),
            Work::Map(m) => m.needs(),
            Work::Table(_) => None,
        }
    }
}

/// Strict reading of one expectation's kwargs.
struct Kwargs<'a> {
    config: &'a ExpectationConfig,
}

impl<'a> Kwargs<'a> {
    fn fail(&self, message: impl std::fmt::Display) -> String {
        format!("{}: {message}", self.config.kind)
    }

    fn allow(&self, keys: &[&str]) -> Result<(), String> {
        for key in self.config.kwargs.keys() {
            if !keys.contains(&key.as_str()) && !COMMON.contains(&key.as_str()) {
                let mut all: Vec<&str> = keys.to_vec();
                all.sort();
                return Err(self.fail(format!(
                    "unknown kwarg `{key}` (accepted: {})",
                    all.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.config.kwargs.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<String, String> {
        match self.get(key) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.fail(format!("`{key}` must be a string, got {other}"))),
            None => Err(self.fail(format!("missing required kwarg `{key}`"))),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        self.fail(format!("`{key}` must be a list of strings, got {v}"))
                    })
                })
                .collect(),
            Some(other) => {
                Err(self.fail(format!("`{key}` must be a list of strings, got {other}")))
            }
            None => Err(self.fail(format!("missing required kwarg `{key}`"))),
        }
    }

    fn list(&self, key: &str) -> Result<Option<Vec<Json>>, String> {
        match self.get(key) {
            Some(Json::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(self.fail(format!("`{key}` must be a list, got {other}"))),
            None => Ok(None),
        }
    }

    fn required_list(&self, key: &str) -> Result<Vec<Json>, String> {
        self.list(key)?
            .ok_or_else(|| self.fail(format!("missing required kwarg `{key}`")))
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.fail(format!("`{key}` must be true or false, got {other}"))),
            None => Ok(default),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.fail(format!("`{key}` must be a number, got {other}"))),
            None => Ok(None),
        }
    }

    /// Bounds that admit exactly the number in `key`.
    fn equal(&self, key: &str) -> Result<Bounds, String> {
        let v = self
            .number(key)?
            .ok_or_else(|| self.fail(format!("missing required kwarg `{key}`")))?;
        Ok(Bounds {
            min: Some(json!(v)),
            max: Some(json!(v)),
            strict_min: false,
            strict_max: false,
        })
    }

    fn mostly(&self) -> Result<f64, String> {
        let m = self.number("mostly")?.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&m) {
            return Err(self.fail(format!("`mostly` must be between 0 and 1, got {m}")));
        }
        Ok(m)
    }

    fn bound(&self, key: &str, dates: bool) -> Result<Option<Json>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Json::Number(_)) => Ok(Some(v.clone())),
            Some(Json::String(s)) if dates && parse_ts(s).is_some() => {
                Ok(Some(Json::String(s.clone())))
            }
            Some(other) => Err(self.fail(format!(
                "`{key}` must be a number{}, got {other}",
                if dates { " or a date" } else { "" }
            ))),
        }
    }

    fn bounds(&self, dates: bool, require_one: bool) -> Result<Bounds, String> {
        let b = Bounds {
            min: self.bound("min_value", dates)?,
            max: self.bound("max_value", dates)?,
            strict_min: self.flag("strict_min", false)?,
            strict_max: self.flag("strict_max", false)?,
        };
        if require_one && b.min.is_none() && b.max.is_none() {
            return Err(self.fail("min_value and max_value cannot both be None"));
        }
        Ok(b)
    }

    fn ignore(&self, default: Ignore) -> Result<Ignore, String> {
        match self.get("ignore_row_if").map(|v| v.as_str()) {
            None => Ok(default),
            Some(Some("both_values_are_missing" | "all_values_are_missing")) => {
                Ok(Ignore::AllMissing)
            }
            Some(Some("either_value_is_missing" | "any_value_is_missing")) => {
                Ok(Ignore::AnyMissing)
            }
            Some(Some("neither" | "never")) => Ok(Ignore::Never),
            Some(other) => Err(self.fail(format!(
                "`ignore_row_if` {other:?} is not one of the accepted values"
            ))),
        }
    }

    fn regex(&self, text: &str) -> Result<Regex, String> {
        Regex::new(text).map_err(|e| {
            self.fail(format!(
                "regex `{text}`: {}",
                e.to_string().lines().last().unwrap_or_default()
            ))
        })
    }
}

/// The kwargs each type accepts (besides [`COMMON`]).
fn accepted(kind: &str) -> Option<&'static [&'static str]> {
    const BETWEEN: &[&str] = &[
        "column",
        "min_value",
        "max_value",
        "strict_min",
        "strict_max",
    ];
    const BETWEEN_MOSTLY: &[&str] = &[
        "column",
        "min_value",
        "max_value",
        "strict_min",
        "strict_max",
        "mostly",
    ];
    const TABLE_BETWEEN: &[&str] = &["min_value", "max_value", "strict_min", "strict_max"];
    const SET_MOSTLY: &[&str] = &[
        "column",
        "value_set",
        "mostly",
        "parse_strings_as_datetimes",
    ];
    const SET: &[&str] = &["column", "value_set", "parse_strings_as_datetimes"];
    const MULTI: &[&str] = &["column_list", "ignore_row_if", "mostly"];
    Some(match kind {
        "expect_table_row_count_to_be_between" | "expect_table_column_count_to_be_between" => {
            TABLE_BETWEEN
        }
        "expect_table_row_count_to_equal" | "expect_table_column_count_to_equal" => &["value"],
        "expect_table_columns_to_match_ordered_list" => &["column_list"],
        "expect_table_columns_to_match_set" => &["column_set", "exact_match"],
        "expect_column_to_exist" => &["column", "column_index"],
        "expect_column_values_to_be_of_type" => &["column", "type_", "mostly"],
        "expect_column_values_to_be_in_type_list" => &["column", "type_list", "mostly"],
        "expect_column_values_to_not_be_null"
        | "expect_column_values_to_be_null"
        | "expect_column_values_to_be_unique" => &["column", "mostly"],
        "expect_column_values_to_be_between" | "expect_column_value_lengths_to_be_between" => {
            BETWEEN_MOSTLY
        }
        "expect_column_values_to_be_in_set" | "expect_column_values_to_not_be_in_set" => SET_MOSTLY,
        "expect_column_values_to_match_regex" | "expect_column_values_to_not_match_regex" => {
            &["column", "regex", "mostly"]
        }
        "expect_column_values_to_match_regex_list" => {
            &["column", "regex_list", "match_on", "mostly"]
        }
        "expect_column_values_to_not_match_regex_list" => &["column", "regex_list", "mostly"],
        "expect_column_value_lengths_to_equal" => &["column", "value", "mostly"],
        "expect_column_min_to_be_between"
        | "expect_column_max_to_be_between"
        | "expect_column_mean_to_be_between"
        | "expect_column_median_to_be_between"
        | "expect_column_stdev_to_be_between"
        | "expect_column_sum_to_be_between"
        | "expect_column_unique_value_count_to_be_between"
        | "expect_column_proportion_of_unique_values_to_be_between"
        | "expect_column_proportion_of_non_null_values_to_be_between" => BETWEEN,
        "expect_column_quantile_values_to_be_between" => {
            &["column", "quantile_ranges", "allow_relative_error"]
        }
        "expect_column_distinct_values_to_be_in_set"
        | "expect_column_distinct_values_to_contain_set"
        | "expect_column_distinct_values_to_equal_set" => SET,
        "expect_column_most_common_value_to_be_in_set" => &["column", "value_set", "ties_okay"],
        "expect_column_pair_values_to_be_equal" => {
            &["column_A", "column_B", "ignore_row_if", "mostly"]
        }
        "expect_column_pair_values_a_to_be_greater_than_b" => &[
            "column_A",
            "column_B",
            "ignore_row_if",
            "or_equal",
            "mostly",
        ],
        "expect_compound_columns_to_be_unique"
        | "expect_select_column_values_to_be_unique_within_record" => MULTI,
        "expect_multicolumn_sum_to_equal" => {
            &["column_list", "sum_total", "ignore_row_if", "mostly"]
        }
        _ => return None,
    })
}

/// Compiles one expectation; `Ok(None)` for an unknown type (the caller decides
/// whether that is an error).
pub fn compile(config: &ExpectationConfig) -> Result<Option<Work>, String> {
    let k = Kwargs { config };
    // Unknown kwargs first: a typo is the likeliest cause of any other complaint.
    match accepted(&config.kind) {
        Some(keys) => k.allow(keys)?,
        None => return Ok(None),
    }
    let col = || k.string("column");
    let set_of =
        |key: &str| -> Result<ValueSet, String> { Ok(ValueSet::new(&k.required_list(key)?)) };
    let agg = |keys: &[&str], aggregate: Aggregate| -> Result<Option<Work>, String> {
        k.allow(keys)?;
        Ok(Some(Work::Aggregate {
            column: k.string("column")?,
            aggregate,
        }))
    };
    const BETWEEN: &[&str] = &[
        "column",
        "min_value",
        "max_value",
        "strict_min",
        "strict_max",
    ];
    let map = |keys: &[&str], kind: MapKind| -> Result<Option<Work>, String> {
        k.allow(keys)?;
        Ok(Some(Work::Map(MapCheck::new(
            Some(k.string("column")?),
            kind,
            k.mostly()?,
        ))))
    };
    let work = match config.kind.as_str() {
        "expect_table_row_count_to_be_between" => {
            Work::Table(TableCheck::RowCount(k.bounds(false, false)?))
        }
        "expect_table_row_count_to_equal" => Work::Table(TableCheck::RowCount(k.equal("value")?)),
        "expect_table_column_count_to_equal" => {
            Work::Table(TableCheck::ColumnCount(k.equal("value")?))
        }
        "expect_table_column_count_to_be_between" => {
            Work::Table(TableCheck::ColumnCount(k.bounds(false, false)?))
        }
        "expect_table_columns_to_match_ordered_list" => {
            Work::Table(TableCheck::ColumnsOrdered(k.strings("column_list")?))
        }
        "expect_table_columns_to_match_set" => Work::Table(TableCheck::ColumnsSet {
            set: k.strings("column_set")?,
            exact: k.flag("exact_match", true)?,
        }),
        "expect_column_to_exist" => {
            let index = k.number("column_index")?.map(|i| i as usize);
            Work::Table(TableCheck::ColumnExists {
                column: col()?,
                index,
            })
        }
        "expect_column_values_to_be_of_type" => Work::Table(TableCheck::OfType {
            column: col()?,
            types: vec![k.string("type_")?],
        }),
        "expect_column_values_to_be_in_type_list" => Work::Table(TableCheck::OfType {
            column: col()?,
            types: k.strings("type_list")?,
        }),
        "expect_column_values_to_not_be_null" => {
            return map(&["column", "mostly"], MapKind::NotNull);
        }
        "expect_column_values_to_be_null" => return map(&["column", "mostly"], MapKind::IsNull),
        "expect_column_values_to_be_between" => {
            return map(
                &[BETWEEN, &["mostly"]].concat(),
                MapKind::Values(RowTest::Between(k.bounds(true, true)?)),
            );
        }
        "expect_column_values_to_be_in_set" => {
            return map(
                &[
                    "column",
                    "value_set",
                    "mostly",
                    "parse_strings_as_datetimes",
                ],
                MapKind::Values(RowTest::InSet(set_of("value_set")?)),
            );
        }
        "expect_column_values_to_not_be_in_set" => {
            return map(
                &[
                    "column",
                    "value_set",
                    "mostly",
                    "parse_strings_as_datetimes",
                ],
                MapKind::Values(RowTest::NotInSet(set_of("value_set")?)),
            );
        }
        "expect_column_values_to_be_unique" => return map(&["column", "mostly"], MapKind::Unique),
        "expect_column_values_to_match_regex" => {
            return map(
                &["column", "regex", "mostly"],
                MapKind::Values(RowTest::Regex(k.regex(&k.string("regex")?)?)),
            );
        }
        "expect_column_values_to_not_match_regex" => {
            return map(
                &["column", "regex", "mostly"],
                MapKind::Values(RowTest::NotRegex(k.regex(&k.string("regex")?)?)),
            );
        }
        "expect_column_values_to_match_regex_list" => {
            let list = k
                .strings("regex_list")?
                .iter()
                .map(|r| k.regex(r))
                .collect::<Result<Vec<_>, _>>()?;
            let test = match k.get("match_on").map(|v| v.as_str()) {
                None | Some(Some("any")) => RowTest::RegexAny(list),
                Some(Some("all")) => RowTest::RegexAll(list),
                Some(other) => {
                    return Err(k.fail(format!(
                        "`match_on` must be \"any\" or \"all\", got {other:?}"
                    )));
                }
            };
            return map(
                &["column", "regex_list", "match_on", "mostly"],
                MapKind::Values(test),
            );
        }
        "expect_column_values_to_not_match_regex_list" => {
            let list = k
                .strings("regex_list")?
                .iter()
                .map(|r| k.regex(r))
                .collect::<Result<Vec<_>, _>>()?;
            return map(
                &["column", "regex_list", "mostly"],
                MapKind::Values(RowTest::NotRegexAny(list)),
            );
        }
        "expect_column_value_lengths_to_be_between" => {
            return map(
                &[BETWEEN, &["mostly"]].concat(),
                MapKind::Values(RowTest::LengthBetween(k.bounds(false, true)?)),
            );
        }
        "expect_column_value_lengths_to_equal" => {
            let v = k
                .number("value")?
                .ok_or_else(|| k.fail("missing required kwarg `value`"))?;
            return map(
                &["column", "value", "mostly"],
                MapKind::Values(RowTest::LengthEqual(v as u64)),
            );
        }
        "expect_column_min_to_be_between" => {
            return agg(BETWEEN, Aggregate::Min(k.bounds(true, false)?));
        }
        "expect_column_max_to_be_between" => {
            return agg(BETWEEN, Aggregate::Max(k.bounds(true, false)?));
        }
        "expect_column_mean_to_be_between" => {
            return agg(BETWEEN, Aggregate::Mean(k.bounds(false, false)?));
        }
        "expect_column_median_to_be_between" => {
            return agg(BETWEEN, Aggregate::Median(k.bounds(false, false)?));
        }
        "expect_column_stdev_to_be_between" => {
            return agg(BETWEEN, Aggregate::Stdev(k.bounds(false, false)?));
        }
        "expect_column_sum_to_be_between" => {
            return agg(BETWEEN, Aggregate::Sum(k.bounds(false, false)?));
        }
        "expect_column_unique_value_count_to_be_between" => {
            return agg(BETWEEN, Aggregate::UniqueCount(k.bounds(false, false)?));
        }
        "expect_column_proportion_of_unique_values_to_be_between" => {
            return agg(
                BETWEEN,
                Aggregate::UniqueProportion(k.bounds(false, false)?),
            );
        }
        "expect_column_proportion_of_non_null_values_to_be_between" => {
            return agg(
                BETWEEN,
                Aggregate::NonNullProportion(k.bounds(false, false)?),
            );
        }
        "expect_column_quantile_values_to_be_between" => {
            let ranges = match k.get("quantile_ranges") {
                Some(Json::Object(r)) => r,
                Some(other) => {
                    return Err(k.fail(format!("`quantile_ranges` must be an object, got {other}")));
                }
                None => return Err(k.fail("missing required kwarg `quantile_ranges`")),
            };
            let quantiles: Vec<f64> = match ranges.get("quantiles") {
                Some(Json::Array(q)) => q
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .ok_or_else(|| {
                                k.fail(format!("quantile {v} is not a number in [0, 1]"))
                            })
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
                    return Err(
                        k.fail("`quantile_ranges.value_ranges` must be a list of [min, max]")
                    );
                }
            };
            if value_ranges.len() != quantiles.len() {
                return Err(
                    k.fail("`quantile_ranges`: quantiles and value_ranges differ in length")
                );
            }
            let method = match k.get("allow_relative_error") {
                None | Some(Json::Bool(false)) => "nearest".to_string(),
                Some(Json::String(m)) if ["linear", "lower", "higher", "midpoint", "nearest"].contains(&m.as_str()) => m.clone(),
                Some(other) => return Err(k.fail(format!("`allow_relative_error` {other} is not one of linear, lower, higher, midpoint, nearest"))),
            };
            return agg(
                &["column", "quantile_ranges", "allow_relative_error"],
                Aggregate::Quantiles {
                    quantiles,
                    ranges: value_ranges,
                    method,
                },
            );
        }
        "expect_column_distinct_values_to_be_in_set" => {
            let set = k.list("value_set")?.map(|v| ValueSet::new(&v));
            if set.as_ref().is_none_or(|s| s.values().is_empty()) {
                return Err(k.fail("`value_set` must be a non-empty list"));
            }
            return agg(
                &["column", "value_set", "parse_strings_as_datetimes"],
                Aggregate::DistinctInSet(set),
            );
        }
        "expect_column_distinct_values_to_contain_set" => {
            return agg(
                &["column", "value_set", "parse_strings_as_datetimes"],
                Aggregate::DistinctContain(set_of("value_set")?),
            );
        }
        "expect_column_distinct_values_to_equal_set" => {
            return agg(
                &["column", "value_set", "parse_strings_as_datetimes"],
                Aggregate::DistinctEqual(set_of("value_set")?),
            );
        }
        "expect_column_most_common_value_to_be_in_set" => {
            let set = set_of("value_set")?;
            return agg(
                &["column", "value_set", "ties_okay"],
                Aggregate::MostCommon {
                    set,
                    ties_okay: k.flag("ties_okay", false)?,
                },
            );
        }
        "expect_column_pair_values_to_be_equal"
        | "expect_column_pair_values_a_to_be_greater_than_b" => {
            let equal = config.kind == "expect_column_pair_values_to_be_equal";
            let mut keys = vec!["column_A", "column_B", "ignore_row_if", "mostly"];
            if !equal {
                keys.push("or_equal");
            }
            k.allow(&keys)?;
            let kind = MapKind::Pair {
                b: k.string("column_B")?,
                or_equal: k.flag("or_equal", false)?,
                equal,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            Work::Map(MapCheck::new(
                Some(k.string("column_A")?),
                kind,
                k.mostly()?,
            ))
        }
        "expect_compound_columns_to_be_unique" => {
            let kind = MapKind::Compound {
                columns: k.strings("column_list")?,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            Work::Map(MapCheck::new(None, kind, k.mostly()?))
        }
        "expect_select_column_values_to_be_unique_within_record" => {
            let kind = MapKind::WithinRecord {
                columns: k.strings("column_list")?,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            Work::Map(MapCheck::new(None, kind, k.mostly()?))
        }
        "expect_multicolumn_sum_to_equal" => {
            let total = k
                .number("sum_total")?
                .ok_or_else(|| k.fail("missing required kwarg `sum_total`"))?;
            let kind = MapKind::Sum {
                columns: k.strings("column_list")?,
                total,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            Work::Map(MapCheck::new(None, kind, k.mostly()?))
        }
        _ => return Ok(None),
    };
    Ok(Some(work))
}

/// Whether a column type suits an aggregate or a row test (GE fails such an
/// expectation with an exception; so do we, before reading any data).
pub fn type_problem(work: &Work, data_type: &DataType) -> Option<String> {
    let numeric = data_type.is_numeric() || matches!(data_type, DataType::Boolean);
    let temporal = matches!(
        data_type,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    );
    let needs_number = match work {
        Work::Aggregate { aggregate, .. } => matches!(
            aggregate,
            Aggregate::Mean(_)
                | Aggregate::Median(_)
                | Aggregate::Stdev(_)
                | Aggregate::Sum(_)
                | Aggregate::Quantiles { .. }
        ),
        _ => false,
    };
    if needs_number && !numeric {
        return Some(format!("needs a numeric column, the column is {data_type}"));
    }
    let needs_order = match work {
        Work::Aggregate {
            aggregate: Aggregate::Min(_) | Aggregate::Max(_),
            ..
        } => true,
        Work::Map(m) => matches!(m.kind, MapKind::Values(RowTest::Between(_))),
        _ => false,
    };
    if needs_order && !(numeric || temporal) {
        return Some(format!(
            "needs a numeric or date column, the column is {data_type}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_type_lists_its_kwargs() {
        for kind in SUPPORTED {
            assert!(accepted(kind).is_some(), "{kind}");
        }
    }

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
