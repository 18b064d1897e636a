//! Strict, typed reading of one expectation's kwargs.

use regex::Regex;
use serde_json::{Value as Json, json};

use super::registry::{ExpectationType, Kwarg, KwargType};
use super::{Bounds, COMMON, Ignore};
use crate::suite::ExpectationConfig;
use crate::value::parse_ts;

/// Strict reading of one expectation's kwargs.
pub struct Kwargs<'a> {
    config: &'a ExpectationConfig,
}

impl<'a> Kwargs<'a> {
    /// The kwargs of one expectation.
    pub fn new(config: &'a ExpectationConfig) -> Self {
        Kwargs { config }
    }

    /// Checks the kwargs against the type's row: unknown kwargs first (a typo is the
    /// likeliest cause of any other complaint), then each declared kwarg's type, and
    /// that the required ones are there.
    pub fn check(&self, row: &ExpectationType) -> Result<(), String> {
        let names: Vec<&str> = row.kwargs.iter().map(|k| k.name).collect();
        self.allow(&names)?;
        for kwarg in row.kwargs {
            self.read(kwarg)?;
        }
        Ok(())
    }

    /// Reads one declared kwarg as its type says (the value is read again, typed, by
    /// the compile function).
    fn read(&self, kwarg: &Kwarg) -> Result<(), String> {
        let key = kwarg.name;
        let Some(value) = self.get(key) else {
            return if kwarg.required {
                Err(self.fail(format!("missing required kwarg `{key}`")))
            } else {
                Ok(())
            };
        };
        match kwarg.kind {
            KwargType::Str => self.string(key).map(drop),
            KwargType::Strings => self.strings(key).map(drop),
            KwargType::List => self.list(key).map(drop),
            KwargType::Bool => self.flag(key, false).map(drop),
            KwargType::Number => self.number(key).map(drop),
            KwargType::Count => self.count(key).map(drop),
            KwargType::Fraction => self.fraction(key).map(drop),
            KwargType::Bound => self.bound(key, false).map(drop),
            KwargType::BoundOrDate => self.bound(key, true).map(drop),
            KwargType::Object => match value {
                Json::Object(_) => Ok(()),
                other => Err(self.fail(format!("`{key}` must be an object, got {other}"))),
            },
            KwargType::Custom => Ok(()),
        }
    }

    pub fn fail(&self, message: impl std::fmt::Display) -> String {
        format!("{}: {message}", self.config.kind)
    }

    pub fn allow(&self, keys: &[&str]) -> Result<(), String> {
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

    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.config.kwargs.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<String, String> {
        match self.get(key) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.fail(format!("`{key}` must be a string, got {other}"))),
            None => Err(self.fail(format!("missing required kwarg `{key}`"))),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
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

    pub fn list(&self, key: &str) -> Result<Option<Vec<Json>>, String> {
        match self.get(key) {
            Some(Json::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(self.fail(format!("`{key}` must be a list, got {other}"))),
            None => Ok(None),
        }
    }

    pub fn required_list(&self, key: &str) -> Result<Vec<Json>, String> {
        self.list(key)?
            .ok_or_else(|| self.fail(format!("missing required kwarg `{key}`")))
    }

    pub fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.fail(format!("`{key}` must be true or false, got {other}"))),
            None => Ok(default),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.fail(format!("`{key}` must be a number, got {other}"))),
            None => Ok(None),
        }
    }

    /// Bounds that admit exactly the whole number in `key`.
    pub fn equal(&self, key: &str) -> Result<Bounds, String> {
        let v = self.required_count(key)? as f64;
        Ok(Bounds {
            min: Some(json!(v)),
            max: Some(json!(v)),
            strict_min: false,
            strict_max: false,
        })
    }

    /// `mostly`: the share of rows that must pass (default 1).
    pub fn mostly(&self) -> Result<f64, String> {
        Ok(self.fraction("mostly")?.unwrap_or(1.0))
    }

    /// A number between 0 and 1.
    pub fn fraction(&self, key: &str) -> Result<Option<f64>, String> {
        match self.number(key)? {
            Some(m) if !(0.0..=1.0).contains(&m) => {
                Err(self.fail(format!("`{key}` must be between 0 and 1, got {m}")))
            }
            other => Ok(other),
        }
    }

    /// A whole number, at least 0 (`3.0` reads as 3; `3.5`, `-1` and `"3"` are refused).
    pub fn count(&self, key: &str) -> Result<Option<u64>, String> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let whole = match value {
            Json::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= 9_007_199_254_740_992.0)
                    .map(|f| f as u64)
            }),
            _ => None,
        };
        whole
            .map(Some)
            .ok_or_else(|| self.fail(format!("`{key}` must be a whole number, got {value}")))
    }

    /// A whole number that must be given.
    pub fn required_count(&self, key: &str) -> Result<u64, String> {
        self.count(key)?
            .ok_or_else(|| self.fail(format!("missing required kwarg `{key}`")))
    }

    pub fn bound(&self, key: &str, dates: bool) -> Result<Option<Json>, String> {
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

    pub fn bounds(&self, dates: bool, require_one: bool) -> Result<Bounds, String> {
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

    pub fn ignore(&self, default: Ignore) -> Result<Ignore, String> {
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

    pub fn regex(&self, text: &str) -> Result<Regex, String> {
        Regex::new(text).map_err(|e| {
            self.fail(format!(
                "regex `{text}`: {}",
                e.to_string().lines().last().unwrap_or_default()
            ))
        })
    }
}
