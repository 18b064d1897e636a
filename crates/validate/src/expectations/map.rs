//! Map expectations: per-row tests and their running counts, as GE's column map
//! expectations count unexpected rows.

use arrow::array::Array;
use serde_json::{Map, Value as Json, json};

use super::rows::skip_row;
use super::stats::ColumnStats;
use super::{Ignore, Needs, Outcome, PARTIAL_UNEXPECTED, RowTest};
use crate::value::{Column, Key, Val, ValueCounts, decode, encode, fingerprint};

/// Distinct tuples counted in a hash map before switching to a sorted list.
const TUPLE_SPILL: usize = 1 << 16;

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
    pub(crate) fn new(column: Option<String>, kind: MapKind, mostly: f64) -> MapCheck {
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
