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

mod column;
mod counts;

pub use column::{Column, type_names};
pub use counts::{FastMap, ValueCounts, ValueSet};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
}
