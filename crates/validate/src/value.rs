//! Typed views of Arrow columns and the values expectations compare.
//!
//! Every column is normalised once per batch to one of five physical kinds (64-bit
//! integer, 64-bit float, text as a dictionary, boolean, timestamp in microseconds —
//! dates too), so each check is written once per kind, not once per Arrow type.
//! Float NaN counts as missing, as it does in pandas.

use std::collections::HashMap;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value as Json;

use crate::spill::{SortedSpill, Word};

/// One cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Null,
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bool(bool),
    /// Microseconds since the epoch, UTC.
    Ts(i64),
}

impl Val<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The value as a number (booleans as 0/1, timestamps as microseconds).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Int(v) => Some(v as f64),
            Val::Float(v) => Some(v),
            Val::Bool(b) => Some(f64::from(u8::from(b))),
            Val::Ts(v) => Some(v as f64),
            Val::Null | Val::Str(_) => None,
        }
    }

    /// The value as GE reports it in JSON.
    pub fn to_json(self) -> Json {
        match self {
            Val::Null => Json::Null,
            Val::Int(v) => Json::from(v),
            Val::Float(v) => serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number),
            Val::Str(s) => Json::String(s.to_string()),
            Val::Bool(b) => Json::Bool(b),
            Val::Ts(v) => Json::String(format_ts(v)),
        }
    }

    /// A hashable, owned key for counting.
    pub fn key(&self) -> Key {
        match *self {
            Val::Null => Key::Null,
            Val::Int(v) => Key::Int(v),
            // -0.0 and 0.0 are one value.
            Val::Float(v) => Key::Float(if v == 0.0 { 0 } else { v.to_bits() }),
            Val::Str(s) => Key::Str(s.to_string()),
            Val::Bool(b) => Key::Bool(b),
            Val::Ts(v) => Key::Ts(v),
        }
    }
}

/// An owned value, hashable and totally ordered within one kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Ts(i64),
    Str(String),
}

impl Key {
    pub fn as_val(&self) -> Val<'_> {
        match self {
            Key::Null => Val::Null,
            Key::Bool(b) => Val::Bool(*b),
            Key::Int(v) => Val::Int(*v),
            Key::Float(bits) => Val::Float(f64::from_bits(*bits)),
            Key::Ts(v) => Val::Ts(*v),
            Key::Str(s) => Val::Str(s),
        }
    }

    pub fn to_json(&self) -> Json {
        self.as_val().to_json()
    }

    /// Sort order as Python sorts a list of one kind (numbers by value).
    pub fn cmp_values(a: &Key, b: &Key) -> std::cmp::Ordering {
        match (a, b) {
            (Key::Float(x), Key::Float(y)) => f64::from_bits(*x).total_cmp(&f64::from_bits(*y)),
            _ => a.cmp(b),
        }
    }
}

/// Orders a cell against a key of the same kind without allocating.
pub fn cmp_val_key(v: &Val<'_>, k: &Key) -> std::cmp::Ordering {
    match (v, k) {
        (Val::Int(a), Key::Int(b)) => a.cmp(b),
        (Val::Float(a), Key::Float(b)) => a.total_cmp(&f64::from_bits(*b)),
        (Val::Str(a), Key::Str(b)) => (*a).cmp(b.as_str()),
        (Val::Bool(a), Key::Bool(b)) => a.cmp(b),
        (Val::Ts(a), Key::Ts(b)) => a.cmp(b),
        _ => Key::cmp_values(&v.key(), k),
    }
}

/// Appends a self-delimiting encoding of a cell (for exact keys of several columns).
pub fn encode(v: &Val<'_>, out: &mut Vec<u8>) {
    match *v {
        Val::Null => out.push(0),
        Val::Int(x) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Val::Float(x) => {
            out.push(2);
            let bits = if x == 0.0 { 0 } else { x.to_bits() };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Val::Str(s) => {
            out.push(3);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Val::Bool(b) => out.extend_from_slice(&[4, u8::from(b)]),
        Val::Ts(x) => {
            out.push(5);
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// A 128-bit fingerprint of bytes: two independently seeded multiply-xorshift lanes.
/// Distinct tuples share a fingerprint with probability about 2^-128 per pair.
pub fn fingerprint(bytes: &[u8]) -> u128 {
    let mix = |mut h: u64, word: u64| -> u64 {
        h ^= word;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 29)
    };
    let (mut a, mut b) = (
        0x243f_6a88_85a3_08d3u64,
        0x1319_8a2e_0370_7344u64 ^ bytes.len() as u64,
    );
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        a = mix(a, word);
        b = mix(b ^ 0x9e37_79b9_7f4a_7c15, word.rotate_left(23));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let word = u64::from_le_bytes(tail);
    a = mix(a, word ^ 0xa076_1d64_78bd_642f);
    b = mix(b, word.rotate_left(23) ^ 0xe703_7ed1_a0b4_28db);
    (u128::from(a) << 64) | u128::from(b)
}

/// Decodes what [`encode`] wrote, as keys.
pub fn decode(mut bytes: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    let word = |b: &[u8]| -> [u8; 8] { b[..8].try_into().unwrap_or_default() };
    while let Some((&tag, rest)) = bytes.split_first() {
        let (key, used) = match tag {
            1 => (Key::Int(i64::from_le_bytes(word(rest))), 8),
            2 => (Key::Float(u64::from_le_bytes(word(rest))), 8),
            3 => {
                let len = u64::from_le_bytes(word(rest)) as usize;
                (
                    Key::Str(String::from_utf8_lossy(&rest[8..8 + len]).into_owned()),
                    8 + len,
                )
            }
            4 => (Key::Bool(rest[0] == 1), 1),
            5 => (Key::Ts(i64::from_le_bytes(word(rest))), 8),
            _ => (Key::Null, 0),
        };
        keys.push(key);
        bytes = &rest[used..];
    }
    keys
}

/// Timestamps in GE's (pandas') text form: `1994-07-01T00:00:00`.
pub fn format_ts(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string())
        .unwrap_or_default()
}

/// Parses a date or date-time (RFC 3339, `YYYY-MM-DD HH:MM:SS`, or `YYYY-MM-DD`) to
/// microseconds since the epoch, UTC.
pub fn parse_ts(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// A column normalised to one of the physical kinds.
pub enum Column {
    Int(Int64Array),
    Float(Float64Array),
    /// Text, as Parquet stores it: a key per row into the batch's distinct values, so
    /// a check tests each distinct value once and then counts keys (see
    /// [`Column::codes`]). Plain text (CSV, Parquet without dictionary pages) is
    /// dictionary-encoded once per batch here.
    Text {
        keys: Int32Array,
        values: StringArray,
    },
    Bool(BooleanArray),
    Ts(TimestampMicrosecondArray),
}

impl Column {
    /// Normalises any supported Arrow array; other types are read as their text.
    pub fn new(array: &ArrayRef) -> Result<Column, arrow::error::ArrowError> {
        use arrow::compute::cast;
        Ok(match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Column::Int(
                cast(array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _) => Column::Float(
                cast(array, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                let target = DataType::Timestamp(TimeUnit::Microsecond, None);
                let array = match array.data_type() {
                    DataType::Timestamp(_, Some(_)) => {
                        // Drop the zone: values are UTC already.
                        let tz_free = cast(
                            array,
                            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                        )?;
                        let values = tz_free.as_primitive::<TimestampMicrosecondType>().clone();
                        std::sync::Arc::new(values.with_timezone_opt(None::<String>)) as ArrayRef
                    }
                    _ => cast(array, &target)?,
                };
                Column::Ts(array.as_primitive::<TimestampMicrosecondType>().clone())
            }
            DataType::Dictionary(_, value) if !matches!(**value, DataType::Utf8) => {
                Column::new(&cast(array, value)?)?
            }
            // Text, and any other type read as its text.
            _ => {
                let text_dictionary =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                let array = match array.data_type() {
                    DataType::Utf8 | DataType::Dictionary(_, _) => array.clone(),
                    _ => cast(array, &DataType::Utf8)?,
                };
                let dict = cast(&array, &text_dictionary)?;
                let dict = dict.as_dictionary::<Int32Type>();
                Column::Text {
                    keys: dict.keys().clone(),
                    values: dict.values().as_string::<i32>().clone(),
                }
            }
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Int(a) => a.len(),
            Column::Float(a) => a.len(),
            Column::Text { keys, .. } => keys.len(),
            Column::Bool(a) => a.len(),
            Column::Ts(a) => a.len(),
        }
    }

    /// Missing values (nulls, and NaN in float columns), without a per-row match.
    pub fn null_count(&self) -> usize {
        match self {
            Column::Int(a) => a.null_count(),
            Column::Float(a) => {
                let nan = a.iter().filter(|v| v.is_some_and(f64::is_nan)).count();
                a.null_count() + nan
            }
            Column::Text { keys, values } if values.null_count() == 0 => keys.null_count(),
            Column::Text { .. } => (0..self.len()).filter(|&i| self.get(i).is_null()).count(),
            Column::Bool(a) => a.null_count(),
            Column::Ts(a) => a.null_count(),
        }
    }

    /// The value in row `i`; NaN is null.
    #[inline]
    pub fn get(&self, i: usize) -> Val<'_> {
        match self {
            Column::Int(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Int(a.value(i))
                }
            }
            Column::Float(a) => {
                let v = a.value(i);
                if a.is_null(i) || v.is_nan() {
                    Val::Null
                } else {
                    Val::Float(v)
                }
            }
            Column::Text { keys, values } => {
                let k = keys.value(i) as usize;
                if keys.is_null(i) || values.is_null(k) {
                    Val::Null
                } else {
                    Val::Str(values.value(k))
                }
            }
            Column::Bool(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Bool(a.value(i))
                }
            }
            Column::Ts(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Ts(a.value(i))
                }
            }
        }
    }
}

impl Column {
    /// For text: per row, the index of its value in the batch's dictionary (`None` for
    /// a missing value), and the dictionary's values. A value
    /// may be listed more than once or not used at all; a check that works per
    /// distinct value tests each listed one once and then only counts keys.
    pub fn codes(&self) -> Option<(impl Iterator<Item = Option<usize>> + '_, &StringArray)> {
        let Column::Text { keys, values } = self else {
            return None;
        };
        let rows = (0..keys.len()).map(move |i| {
            let k = keys.value(i) as usize;
            (!keys.is_null(i) && !values.is_null(k)).then_some(k)
        });
        Some((rows, values))
    }
}

/// The type name pandas reports for a column read from this Arrow type (`dtype.type.__name__`),
/// and the other names a suite may use for it.
pub fn type_names(data_type: &DataType) -> (&'static str, &'static [&'static str]) {
    match data_type {
        DataType::Int64 => (
            "int64",
            &[
                "int64", "Int64", "int", "integer", "INTEGER", "BIGINT", "long",
            ],
        ),
        DataType::Int32 => (
            "int32",
            &["int32", "Int32", "int", "integer", "INTEGER", "INT"],
        ),
        DataType::Int16 => ("int16", &["int16", "Int16", "int", "integer", "SMALLINT"]),
        DataType::Int8 => ("int8", &["int8", "Int8", "int", "integer", "TINYINT"]),
        DataType::UInt64 => ("uint64", &["uint64", "UInt64", "int", "integer"]),
        DataType::UInt32 => ("uint32", &["uint32", "UInt32", "int", "integer"]),
        DataType::UInt16 => ("uint16", &["uint16", "UInt16", "int", "integer"]),
        DataType::UInt8 => ("uint8", &["uint8", "UInt8", "int", "integer"]),
        DataType::Float64 => (
            "float64",
            &[
                "float64", "Float64", "float", "double", "FLOAT", "DOUBLE", "number",
            ],
        ),
        DataType::Float32 => (
            "float32",
            &["float32", "Float32", "float", "FLOAT", "REAL", "number"],
        ),
        DataType::Float16 => ("float16", &["float16", "float", "number"]),
        DataType::Boolean => ("bool", &["bool", "bool_", "boolean", "BOOLEAN"]),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (
            "str",
            &[
                "str",
                "string",
                "String",
                "StringDtype",
                "STRING",
                "VARCHAR",
                "TEXT",
            ],
        ),
        DataType::Timestamp(_, Some(_)) => (
            "Timestamp",
            &[
                "Timestamp",
                "DatetimeTZDtype",
                "datetime64[ns, UTC]",
                "datetime64[us, UTC]",
                "datetime",
                "TIMESTAMP",
            ],
        ),
        DataType::Timestamp(_, None) => (
            "datetime64",
            &[
                "datetime64",
                "datetime64[ns]",
                "datetime64[us]",
                "datetime",
                "TIMESTAMP",
            ],
        ),
        DataType::Date32 | DataType::Date64 => ("date", &["date", "DATE", "object"]),
        _ => ("object_", &["object", "object_", "O"]),
    }
}

/// Compares a cell with a value from a suite: numbers numerically, strings exactly,
/// timestamps with dates given as text.
pub fn equals_json(v: &Val<'_>, j: &Json) -> bool {
    match (v, j) {
        (Val::Str(s), Json::String(t)) => s == t,
        (Val::Bool(b), Json::Bool(c)) => b == c,
        (Val::Int(a), Json::Number(n)) => match n.as_i64() {
            Some(b) => *a == b,
            None => n.as_f64().is_some_and(|b| *a as f64 == b),
        },
        (Val::Float(a), Json::Number(n)) => n.as_f64().is_some_and(|b| *a == b),
        (Val::Bool(b), Json::Number(n)) => n.as_f64() == Some(f64::from(u8::from(*b))),
        (Val::Ts(a), Json::String(t)) => parse_ts(t) == Some(*a),
        _ => false,
    }
}

/// A set of suite values, with fast lookups for the common cases (all strings or all
/// integers).
pub struct ValueSet {
    strings: std::collections::HashSet<String, std::hash::BuildHasherDefault<FastHasher>>,
    ints: std::collections::HashSet<i64, std::hash::BuildHasherDefault<FastHasher>>,
    others: Vec<Json>,
}

impl ValueSet {
    pub fn new(values: &[Json]) -> ValueSet {
        let mut set = ValueSet {
            strings: Default::default(),
            ints: Default::default(),
            others: Vec::new(),
        };
        for v in values {
            match v {
                Json::String(s) => {
                    set.strings.insert(s.clone());
                    set.others.push(v.clone());
                }
                Json::Number(n) if n.as_i64().is_some() => {
                    set.ints.insert(n.as_i64().unwrap_or_default());
                    set.others.push(v.clone());
                }
                _ => set.others.push(v.clone()),
            }
        }
        set
    }

    pub fn contains(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Str(s) => self.strings.contains(*s),
            Val::Int(i) => self.ints.contains(i) || self.others.iter().any(|j| equals_json(v, j)),
            _ => self.others.iter().any(|j| equals_json(v, j)),
        }
    }

    pub fn contains_key(&self, k: &Key) -> bool {
        self.contains(&k.as_val())
    }

    pub fn values(&self) -> &[Json] {
        &self.others
    }
}

/// A fast, non-cryptographic hasher for counting values (the Fx multiply-rotate
/// scheme): several times faster than the standard SipHash on short keys. Not
/// resistant to crafted collisions, which only slows a validation down.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.write_u64(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }

    #[inline]
    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Mix the high bits down: hashbrown picks buckets from the low bits.
        self.0 ^ (self.0 >> 29)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Distinct integers, floats or timestamps counted in a hash map before switching to a
/// sorted list.
const SPILL: usize = 1 << 16;

/// A float's bits as a key whose unsigned order is the numbers' order.
fn float_order(bits: u64) -> u64 {
    kiln_stats::sketch::ordered_key(f64::from_bits(bits))
}

fn float_from_order(key: u64) -> u64 {
    kiln_stats::sketch::from_key(key).to_bits()
}

/// Counts of one kind of fixed-size value: a hash map while there are few distinct
/// values, then sorted runs spilled to temporary files ([`SortedSpill`]), so memory
/// stays at one chunk however many distinct values there are.
struct Spillable<T: Word + std::hash::Hash> {
    map: FastMap<T, u64>,
    list: Option<SortedSpill<T>>,
}

impl<T: Word + std::hash::Hash> Default for Spillable<T> {
    fn default() -> Self {
        Spillable {
            map: FastMap::default(),
            list: None,
        }
    }
}

impl<T: Word + std::hash::Hash> Spillable<T> {
    #[inline]
    fn add(&mut self, value: T) {
        match &mut self.list {
            Some(list) => list.push(value),
            None => {
                *self.map.entry(value).or_default() += 1;
                if self.map.len() > SPILL {
                    let mut list = SortedSpill::default();
                    for (k, c) in self.map.drain() {
                        list.extend(std::iter::repeat_n(k, c as usize));
                    }
                    self.list = Some(list);
                }
            }
        }
    }

    fn seal(&mut self) {
        if let Some(list) = &mut self.list {
            list.seal();
        }
    }

    /// Values and counts in value order (from the map, or the merged runs).
    fn counts(&self) -> Box<dyn Iterator<Item = (T, u64)> + '_> {
        match &self.list {
            Some(list) => Box::new(list.counts()),
            None => {
                let mut runs: Vec<(T, u64)> = self.map.iter().map(|(&k, &c)| (k, c)).collect();
                runs.sort_unstable();
                Box::new(runs.into_iter())
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty() && self.list.is_none()
    }
}

/// Distinct values and the repeated ones, from one pass over the sorted counts.
#[derive(Default)]
struct Summary {
    distinct: u64,
    repeated: Vec<(Key, u64)>,
}

/// Counts of distinct non-null values, exact. Integers, floats and timestamps spill:
/// past 65,536 distinct values they go to a [`SortedSpill`] (one chunk in memory, sorted
/// runs in temporary files, merged when the counts are read), so a column of unique
/// ids or measurements validates in flat memory. Text values are counted in memory
/// (proportional to the distinct values; see docs/validate.md).
#[derive(Default)]
pub struct ValueCounts {
    ints: Spillable<i64>,
    /// Keys of [`float_order`].
    floats: Spillable<u64>,
    ts: Spillable<i64>,
    strings: FastMap<String, u64>,
    bools: [u64; 2],
    summary: std::cell::OnceCell<Summary>,
}

impl ValueCounts {
    /// Adds `count` occurrences of a text value.
    pub fn add_many(&mut self, s: &str, count: u64) {
        match self.strings.get_mut(s) {
            Some(c) => *c += count,
            None => {
                self.strings.insert(s.to_string(), count);
            }
        }
    }

    #[inline]
    pub fn add(&mut self, v: &Val<'_>) {
        match *v {
            Val::Null => {}
            Val::Int(i) => self.ints.add(i),
            Val::Float(f) => self
                .floats
                .add(float_order(if f == 0.0 { 0 } else { f.to_bits() })),
            Val::Str(s) => match self.strings.get_mut(s) {
                Some(c) => *c += 1,
                None => {
                    self.strings.insert(s.to_string(), 1);
                }
            },
            Val::Bool(b) => self.bools[usize::from(b)] += 1,
            Val::Ts(t) => self.ts.add(t),
        }
    }

    /// Sorts what is still in memory; call once all values are added and before
    /// reading the counts.
    pub fn seal(&mut self) {
        self.ints.seal();
        self.floats.seal();
        self.ts.seal();
        self.summary();
    }

    /// Every spilling kind's values as keys, each kind in value order.
    fn fixed_counts(&self) -> impl Iterator<Item = (Key, u64)> + '_ {
        let ints = self.ints.counts().map(|(k, c)| (Key::Int(k), c));
        let floats = self
            .floats
            .counts()
            .map(|(k, c)| (Key::Float(float_from_order(k)), c));
        let ts = self.ts.counts().map(|(k, c)| (Key::Ts(k), c));
        ints.chain(floats).chain(ts)
    }

    fn summary(&self) -> &Summary {
        self.summary.get_or_init(|| {
            let mut summary = Summary::default();
            let strings = self.strings.iter().map(|(k, &c)| (Key::Str(k.clone()), c));
            let bools = self
                .bools
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(b, &c)| (Key::Bool(b == 1), c));
            for (key, count) in self.fixed_counts().chain(strings).chain(bools) {
                summary.distinct += 1;
                if count > 1 {
                    summary.repeated.push((key, count));
                }
            }
            summary.repeated.sort_by(|a, b| Key::cmp_values(&a.0, &b.0));
            summary
        })
    }

    /// Number of distinct non-null values.
    pub fn distinct(&self) -> u64 {
        self.summary().distinct
    }

    /// `(value, count)` for every distinct value, sorted by value. This one holds every
    /// distinct value (the distinct-set and most-common expectations list them, as
    /// GE's results do).
    pub fn sorted(&self) -> Vec<(Key, u64)> {
        let mut all: Vec<(Key, u64)> = Vec::with_capacity(self.distinct() as usize);
        all.extend(self.fixed_counts());
        all.extend(self.strings.iter().map(|(k, &c)| (Key::Str(k.clone()), c)));
        for (b, &c) in self.bools.iter().enumerate() {
            if c > 0 {
                all.push((Key::Bool(b == 1), c));
            }
        }
        all.sort_by(|a, b| Key::cmp_values(&a.0, &b.0));
        all
    }

    /// Values seen more than once, with their counts, sorted by value.
    pub fn repeated(&self) -> Vec<(Key, u64)> {
        self.summary().repeated.clone()
    }

    /// Numeric values in order with their counts (for exact quantiles), streamed from
    /// the spilled runs when the column holds only integers or only floats.
    pub fn numbers(&self) -> Box<dyn Iterator<Item = (f64, u64)> + '_> {
        let others = !self.strings.is_empty() || self.bools.iter().any(|&c| c > 0);
        if !others && self.ts.is_empty() && self.floats.is_empty() {
            return Box::new(self.ints.counts().map(|(k, c)| (k as f64, c)));
        }
        if !others && self.ts.is_empty() && self.ints.is_empty() {
            return Box::new(
                self.floats
                    .counts()
                    .map(|(k, c)| (f64::from_bits(float_from_order(k)), c)),
            );
        }
        let mut out: Vec<(f64, u64)> = self
            .sorted()
            .into_iter()
            .filter_map(|(k, c)| k.as_val().as_f64().map(|v| (v, c)))
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        Box::new(out.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn floats_and_timestamps_spill_and_count_exactly() {
        // Far more distinct values than the in-memory map holds, in a scrambled
        // order, negative and positive, with a few repeats.
        let n = (SPILL * 3) as i64;
        let scrambled = |i: i64| (i * 7919) % n - n / 2;
        let mut floats = ValueCounts::default();
        let mut times = ValueCounts::default();
        for i in 0..n {
            floats.add(&Val::Float(scrambled(i) as f64 * 0.25));
            times.add(&Val::Ts(scrambled(i) * 1_000));
        }
        floats.add(&Val::Float(-0.25));
        floats.add(&Val::Float(0.0));
        floats.add(&Val::Float(-0.0));
        times.add(&Val::Ts(0));
        assert!(
            floats.floats.list.is_some() && times.ts.list.is_some(),
            "spilled"
        );
        floats.seal();
        times.seal();
        assert_eq!(floats.distinct(), n as u64);
        assert_eq!(times.distinct(), n as u64);
        assert_eq!(
            floats.repeated(),
            vec![(Key::Float((-0.25f64).to_bits()), 2), (Key::Float(0), 3)]
        );
        assert_eq!(times.repeated(), vec![(Key::Ts(0), 2)]);
        // The numbers stream in order, each with its count.
        let numbers: Vec<(f64, u64)> = floats.numbers().collect();
        assert_eq!(numbers.len(), n as usize);
        assert!(numbers.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(numbers[0].0, -(n / 2) as f64 * 0.25);
        assert_eq!(numbers.iter().map(|&(_, c)| c).sum::<u64>(), n as u64 + 3);
    }

    #[test]
    fn float_order_keys_sort_like_the_numbers() {
        let values = [
            f64::NEG_INFINITY,
            -2.5,
            -1e-300,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        let keys: Vec<u64> = values.iter().map(|v| float_order(v.to_bits())).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for v in values {
            assert_eq!(
                f64::from_bits(float_from_order(float_order(v.to_bits()))),
                v
            );
        }
    }

    #[test]
    fn floats_nan_is_null_and_ints_widen() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), None, Some(f64::NAN)]));
        let c = Column::new(&floats).unwrap();
        assert_eq!(c.get(0), Val::Float(1.5));
        assert!(c.get(1).is_null() && c.get(2).is_null());
        let ints: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![7]));
        assert_eq!(Column::new(&ints).unwrap().get(0), Val::Int(7));
    }

    #[test]
    fn encoded_tuples_decode() {
        let row = [
            Val::Int(-3),
            Val::Str("a,b"),
            Val::Null,
            Val::Float(2.5),
            Val::Bool(true),
            Val::Ts(7),
        ];
        let mut bytes = Vec::new();
        for v in &row {
            encode(v, &mut bytes);
        }
        let keys = decode(&bytes);
        assert_eq!(keys, row.iter().map(Val::key).collect::<Vec<_>>());
    }

    #[test]
    fn timestamps_parse_and_format() {
        let t = parse_ts("1994-07-01T00:00:00Z").unwrap();
        assert_eq!(parse_ts("1994-07-01"), Some(t));
        assert_eq!(format_ts(t), "1994-07-01T00:00:00");
        assert!(equals_json(
            &Val::Ts(t),
            &Json::String("1994-07-01 00:00:00".into())
        ));
    }

    #[test]
    fn value_set_compares_numbers_across_int_and_float() {
        let set = ValueSet::new(&[Json::from(1), Json::from(2.5), Json::from("a")]);
        assert!(set.contains(&Val::Int(1)));
        assert!(set.contains(&Val::Float(1.0)));
        assert!(set.contains(&Val::Float(2.5)));
        assert!(set.contains(&Val::Str("a")));
        assert!(!set.contains(&Val::Str("1")));
    }
}
