//! Prometheus's duration syntax.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A Prometheus duration (`5m`, `1h30m`, `30d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

const UNITS: &[(&str, u64)] = &[
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl PromDuration {
    /// Parses Prometheus's duration syntax (units y, w, d, h, m, s, ms, largest first).
    pub fn parse(text: &str) -> Option<PromDuration> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return None;
        }
        let mut total: u64 = 0;
        let mut last_unit = 0usize;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let value: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            // `ms` before `m`: the longer unit name wins.
            let (index, (unit, millis)) = UNITS
                .iter()
                .enumerate()
                .filter(|(_, (u, _))| rest.starts_with(u))
                .max_by_key(|(_, (u, _))| u.len())?;
            if index < last_unit {
                return None;
            }
            last_unit = index + 1;
            rest = &rest[unit.len()..];
            total = total.checked_add(value.checked_mul(*millis)?)?;
        }
        (total > 0).then(|| PromDuration(Duration::from_millis(total)))
    }

    pub fn millis(self) -> u64 {
        self.0.as_millis() as u64
    }
}

/// Sloth's layout: one number in the largest unit up to days that divides the
/// duration (`30d`, not `4w2d`; `90m`, not `1h30m`).
impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.millis();
        let (unit, size) = UNITS[2..]
            .iter()
            .find(|(_, size)| millis.is_multiple_of(*size))
            .expect("milliseconds divide every duration");
        write!(f, "{}{unit}", millis / size)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PromDuration::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a Prometheus duration (e.g. 5m, 1h, 30d)"
            ))
        })
    }
}

impl serde::Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
