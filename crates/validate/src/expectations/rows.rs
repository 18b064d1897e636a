//! The per-row tests of the column map family, and which rows multi-column tests skip.

use regex::Regex;
use serde_json::Value as Json;

use super::Bounds;
use crate::value::{Val, ValueSet};

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
    pub(crate) fn unexpected(&self, v: &Val<'_>) -> Result<bool, String> {
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

pub(crate) fn skip_row(row: &[Val<'_>], ignore: Ignore) -> bool {
    match ignore {
        Ignore::AllMissing => row.iter().all(Val::is_null),
        Ignore::AnyMissing => row.iter().any(Val::is_null),
        Ignore::Never => false,
    }
}
