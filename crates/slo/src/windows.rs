//! The SLO period and the alert windows of the multiwindow multi-burn-rate alerts, in
//! Sloth's `AlertWindows` format (`sloth.slok.dev/v1`), with Sloth's defaults for 30 and
//! 28 days built in.
//!
//! A window pair burns `error_budget_percent` of the period's budget within its long
//! window: the burn-rate factor is `percent / 100 × period / long window` (14.4 for 2 %
//! in 1 h of 30 days).

use serde::Deserialize;

use crate::error::{Result, SloError};

pub use kiln_prometheus::PromDuration;

/// One short/long window pair and the share of the budget it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowPair {
    pub error_budget_percent: f64,
    pub short_window: PromDuration,
    pub long_window: PromDuration,
}

/// The quick and slow pair of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityWindows {
    pub quick: WindowPair,
    pub slow: WindowPair,
}

/// The SLO period and its alert windows.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertWindows {
    pub slo_period: PromDuration,
    pub page: SeverityWindows,
    pub ticket: SeverityWindows,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertWindowsFile {
    api_version: String,
    kind: String,
    spec: AlertWindows,
}

fn pair(percent: f64, short: &str, long: &str) -> WindowPair {
    WindowPair {
        error_budget_percent: percent,
        short_window: PromDuration::parse(short).expect("a built-in window"),
        long_window: PromDuration::parse(long).expect("a built-in window"),
    }
}

impl AlertWindows {
    /// Sloth's built-in windows for a 30-day or a 28-day period (the same windows;
    /// the factors differ).
    pub fn builtin(period: &str) -> Option<AlertWindows> {
        let slo_period = PromDuration::parse(period)?;
        if ![28, 30].contains(&(slo_period.millis() / 86_400_000))
            || !slo_period.millis().is_multiple_of(86_400_000)
        {
            return None;
        }
        Some(AlertWindows {
            slo_period,
            page: SeverityWindows {
                quick: pair(2.0, "5m", "1h"),
                slow: pair(5.0, "30m", "6h"),
            },
            ticket: SeverityWindows {
                quick: pair(10.0, "2h", "1d"),
                slow: pair(10.0, "6h", "3d"),
            },
        })
    }

    /// Reads an `AlertWindows` file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<AlertWindows> {
        let de = serde_norway::Deserializer::from_str(text);
        let doc: AlertWindowsFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            SloError::spec(file, format!("{path}: {}", e.into_inner()))
        })?;
        if doc.api_version != "sloth.slok.dev/v1" || doc.kind != "AlertWindows" {
            return Err(SloError::spec(
                file,
                format!(
                    "expected apiVersion sloth.slok.dev/v1 and kind AlertWindows, found {} {}",
                    doc.api_version, doc.kind
                ),
            ));
        }
        let windows = doc.spec;
        for (name, p) in windows.pairs() {
            if p.short_window >= p.long_window {
                return Err(SloError::spec(
                    file,
                    format!("spec.{name}: shortWindow must be shorter than longWindow"),
                ));
            }
            if p.long_window > windows.slo_period {
                return Err(SloError::spec(
                    file,
                    format!("spec.{name}: longWindow must not exceed sloPeriod"),
                ));
            }
            if !(p.error_budget_percent > 0.0 && p.error_budget_percent <= 100.0) {
                return Err(SloError::spec(
                    file,
                    format!("spec.{name}.errorBudgetPercent must be over 0 and at most 100"),
                ));
            }
        }
        Ok(windows)
    }

    /// The four pairs, named as in the file.
    pub fn pairs(&self) -> [(&'static str, WindowPair); 4] {
        [
            ("page.quick", self.page.quick),
            ("page.slow", self.page.slow),
            ("ticket.quick", self.ticket.quick),
            ("ticket.slow", self.ticket.slow),
        ]
    }

    /// The burn-rate factor of a pair: how many times faster than "exactly the budget
    /// over the period" the errors must come to burn `percent` within the long window.
    pub fn factor(&self, pair: WindowPair) -> f64 {
        pair.error_budget_percent / 100.0
            * (self.slo_period.millis() as f64 / pair.long_window.millis() as f64)
    }

    /// Every window a recording rule is needed for, shortest first, the period last.
    pub fn recorded_windows(&self) -> Vec<PromDuration> {
        let mut windows: Vec<PromDuration> = self
            .pairs()
            .iter()
            .flat_map(|(_, p)| [p.short_window, p.long_window])
            .filter(|w| *w != self.slo_period)
            .collect();
        windows.sort();
        windows.dedup();
        windows.push(self.slo_period);
        windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_as_sloth_writes_them() {
        for (text, shown) in [
            ("5m", "5m"),
            ("30d", "30d"),
            ("1h30m", "90m"),
            ("90m", "90m"),
            ("1w", "7d"),
            ("1500ms", "1500ms"),
            ("72h", "3d"),
        ] {
            assert_eq!(
                PromDuration::parse(text).unwrap().to_string(),
                shown,
                "{text}"
            );
        }
        for bad in ["", "5", "m", "5x", "1m1h", "-5m", "0s"] {
            assert!(PromDuration::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn builtin_factors_are_sloths() {
        let w = AlertWindows::builtin("30d").unwrap();
        let factors: Vec<f64> = w.pairs().iter().map(|(_, p)| w.factor(*p)).collect();
        assert_eq!(factors, [14.4, 6.0, 3.0, 1.0]);
        let names: Vec<String> = w.recorded_windows().iter().map(|d| d.to_string()).collect();
        assert_eq!(names, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]);
        assert!(AlertWindows::builtin("7d").is_none());
    }

    #[test]
    fn a_windows_file_is_read_and_checked() {
        let text = "apiVersion: sloth.slok.dev/v1\nkind: AlertWindows\nspec:\n  sloPeriod: 12h\n  page:\n    quick: {errorBudgetPercent: 2, shortWindow: 5s, longWindow: 1m}\n    slow: {errorBudgetPercent: 5, shortWindow: 30s, longWindow: 6m}\n  ticket:\n    quick: {errorBudgetPercent: 10, shortWindow: 2m, longWindow: 24m}\n    slow: {errorBudgetPercent: 10, shortWindow: 6m, longWindow: 72m}\n";
        let w = AlertWindows::parse("w.yaml", text).unwrap();
        assert_eq!(w.factor(w.page.quick), 14.4);
        let bad = text.replace("shortWindow: 5s", "shortWindow: 2m");
        let err = AlertWindows::parse("w.yaml", &bad).unwrap_err().to_string();
        assert!(err.contains("spec.page.quick: shortWindow"), "{err}");
        let typo = text.replace("sloPeriod", "sloPeriods");
        assert!(AlertWindows::parse("w.yaml", &typo).is_err());
    }
}
