//! The analysis settings: how often to check, how many checks promote or roll back,
//! the thresholds (absolute, and relative to the stable version), and the PromQL that
//! measures one version.
//!
//! Read from YAML (`--settings FILE`, every field optional, unknown fields refused) and
//! overridden by flags. The queries are templates: `{model}` (the served model name),
//! `{version}` (the version measured), `{role}` (`canary` or `stable`: the router's
//! name for it, e.g. the HAProxy server) and `{window}` (the check window, a
//! Prometheus duration).

use kiln_core::metric_names::{REQUEST_DURATION_SECONDS, REQUESTS_TOTAL};
use std::path::Path;

use kiln_prometheus::PromDuration;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RolloutError};

/// Everything the analysis needs besides the versions and the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Time between checks.
    pub interval: PromDuration,
    /// The range each check measures (default: the interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<PromDuration>,
    /// The canary's share of the traffic during the analysis, in percent.
    pub canary_percent: u8,
    /// Passing checks that promote the canary.
    pub promote_after: u32,
    /// Failed checks that roll it back.
    pub max_failures: u32,
    /// Consecutive checks without enough data that halt the analysis.
    pub max_inconclusive: u32,
    /// How long the canary may take to become ready before it is rolled back.
    pub ready_timeout: PromDuration,
    pub thresholds: Thresholds,
    pub queries: Queries,
}

/// What a check compares. A threshold set to `null` in YAML is not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Requests the canary must have served in the window for a check to count.
    pub min_requests: f64,
    /// The canary's 5xx share of its requests, at most.
    pub max_error_ratio: Option<f64>,
    /// The canary's 5xx share may exceed the stable version's by at most this much.
    pub max_error_ratio_increase: Option<f64>,
    /// The canary's p99 latency, at most (seconds).
    pub max_p99_seconds: Option<f64>,
    /// The canary's p99 may be at most this multiple of the stable version's.
    pub max_p99_ratio: Option<f64>,
    /// The relative p99 check fails only above this latency (seconds): 3 ms against
    /// 1 ms is bucket noise, not a regression.
    pub p99_ratio_floor_seconds: f64,
}

/// PromQL templates measuring one version over `{window}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Queries {
    /// Requests served.
    pub requests: String,
    /// Of those, answered 5xx.
    pub errors: String,
    /// The 99th percentile of request latency, in seconds.
    pub p99: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: PromDuration(std::time::Duration::from_secs(30)),
            window: None,
            canary_percent: 10,
            promote_after: 5,
            max_failures: 2,
            max_inconclusive: 3,
            ready_timeout: PromDuration(std::time::Duration::from_secs(600)),
            thresholds: Thresholds::default(),
            queries: Queries::default(),
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_requests: 20.0,
            max_error_ratio: Some(0.01),
            max_error_ratio_increase: Some(0.005),
            max_p99_seconds: Some(0.3),
            max_p99_ratio: Some(1.5),
            p99_ratio_floor_seconds: 0.05,
        }
    }
}

/// kiln-serve's own metrics (`kiln_requests_total`, `kiln_request_duration_seconds`),
/// one version selected by its `model_version` label.
impl Default for Queries {
    fn default() -> Self {
        let version = r#"model_name="{model}",model_version="{version}""#;
        Queries {
            requests: format!("sum(increase({REQUESTS_TOTAL}{{{version}}}[{{window}}]))"),
            errors: format!(
                r#"sum(increase({REQUESTS_TOTAL}{{{version},code=~"5.."}}[{{window}}])) or vector(0)"#
            ),
            p99: format!(
                "histogram_quantile(0.99, sum by (le) (rate({REQUEST_DURATION_SECONDS}_bucket{{{version}}}[{{window}}])))"
            ),
        }
    }
}

/// The placeholders a query template may use.
pub const PLACEHOLDERS: &[&str] = &["model", "version", "role", "window"];

/// What a template's placeholders stand for, for one version.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub model: &'a str,
    pub version: &'a str,
    pub role: &'a str,
    pub window: PromDuration,
}

impl Settings {
    /// Reads a settings file (YAML); every field is optional.
    pub fn load(path: &Path) -> Result<Settings> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| RolloutError::Usage(format!("{file}: cannot read: {e}")))?;
        let deserializer = serde_norway::Deserializer::from_str(&text);
        let settings: Settings = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner().to_string();
            if at == "." {
                RolloutError::Usage(format!("{file}: {inner}"))
            } else {
                RolloutError::Usage(format!("{file}: {at}: {inner}"))
            }
        })?;
        settings.validate(&file)?;
        Ok(settings)
    }

    /// The window each check measures.
    pub fn window(&self) -> PromDuration {
        self.window.unwrap_or(self.interval)
    }

    /// Checks ranges and templates; `origin` names the file or `flags` in errors.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(RolloutError::Usage(format!("{origin}: {field}: {message}")))
        };
        if !(1..=99).contains(&self.canary_percent) {
            return bad(
                "canary_percent",
                format!("{} must be between 1 and 99", self.canary_percent),
            );
        }
        for (field, value) in [
            ("promote_after", self.promote_after),
            ("max_failures", self.max_failures),
            ("max_inconclusive", self.max_inconclusive),
        ] {
            if value == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        let t = &self.thresholds;
        if !(t.min_requests.is_finite() && t.min_requests >= 1.0) {
            return bad(
                "thresholds.min_requests",
                format!(
                    "{} must be at least 1 (no promotion on no data)",
                    t.min_requests
                ),
            );
        }
        for (field, value, upper) in [
            ("max_error_ratio", t.max_error_ratio, Some(1.0)),
            (
                "max_error_ratio_increase",
                t.max_error_ratio_increase,
                Some(1.0),
            ),
            ("max_p99_seconds", t.max_p99_seconds, None),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0 && upper.is_none_or(|u| v <= u))
            {
                let range = upper.map_or("≥ 0".to_string(), |u| format!("in [0, {u}]"));
                return bad(
                    &format!("thresholds.{field}"),
                    format!("{v} must be {range}"),
                );
            }
        }
        if !(t.p99_ratio_floor_seconds.is_finite() && t.p99_ratio_floor_seconds >= 0.0) {
            return bad(
                "thresholds.p99_ratio_floor_seconds",
                format!("{} must be ≥ 0", t.p99_ratio_floor_seconds),
            );
        }
        if let Some(v) = t.max_p99_ratio
            && !(v.is_finite() && v >= 1.0)
        {
            return bad(
                "thresholds.max_p99_ratio",
                format!("{v} must be at least 1 (a multiple of the stable p99)"),
            );
        }
        for (field, template) in [
            ("requests", &self.queries.requests),
            ("errors", &self.queries.errors),
            ("p99", &self.queries.p99),
        ] {
            let used = placeholders(template)
                .map_err(|m| RolloutError::Usage(format!("{origin}: queries.{field}: {m}")))?;
            if !used.contains(&"window") {
                return bad(
                    &format!("queries.{field}"),
                    "must use {window} (the range each check measures)".into(),
                );
            }
            if !used.contains(&"version") && !used.contains(&"role") {
                return bad(
                    &format!("queries.{field}"),
                    "must use {version} or {role}, or it cannot tell the canary from the stable version".into(),
                );
            }
        }
        Ok(())
    }
}

/// The placeholders a template uses; an unknown `{name}` is an error (a PromQL label
/// matcher never is a bare name in braces).
pub fn placeholders(template: &str) -> std::result::Result<Vec<&'static str>, String> {
    let mut used = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        rest = &rest[start + 1..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        if name_len > 0 && rest[name_len..].starts_with('}') {
            let name = &rest[..name_len];
            match PLACEHOLDERS.iter().find(|p| **p == name) {
                Some(p) => used.push(*p),
                None => {
                    return Err(format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.join(", ")
                    ));
                }
            }
        }
    }
    Ok(used)
}

/// A template with its placeholders filled in.
pub fn render(template: &str, target: &Target<'_>) -> String {
    template
        .replace("{model}", target.model)
        .replace("{version}", target.version)
        .replace("{role}", target.role)
        .replace("{window}", &target.window.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout.yaml");
        std::fs::write(&path, text).unwrap();
        Settings::load(&path)
    }

    #[test]
    fn defaults_are_valid_and_measure_kiln_serve_by_version() {
        let s = Settings::default();
        s.validate("defaults").unwrap();
        let target = Target {
            model: "adult-income",
            version: "7",
            role: "canary",
            window: s.window(),
        };
        assert_eq!(
            render(&s.queries.requests, &target),
            r#"sum(increase(kiln_requests_total{model_name="adult-income",model_version="7"}[30s]))"#
        );
        assert_eq!(
            render(&s.queries.errors, &target),
            r#"sum(increase(kiln_requests_total{model_name="adult-income",model_version="7",code=~"5.."}[30s])) or vector(0)"#
        );
        assert!(render(&s.queries.p99, &target).starts_with("histogram_quantile(0.99, "));
    }

    #[test]
    fn a_file_overrides_what_it_names() {
        let s =
            load("interval: 5s\npromote_after: 3\nthresholds:\n  max_p99_ratio: null\n").unwrap();
        assert_eq!(s.interval.0.as_secs(), 5);
        assert_eq!(s.promote_after, 3);
        assert_eq!(s.thresholds.max_p99_ratio, None);
        assert_eq!(s.thresholds.max_error_ratio, Some(0.01));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let e = load("thresholds:\n  max_error_ratio: 2\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("rollout.yaml: thresholds.max_error_ratio: 2 must be in [0, 1]"),
            "{e}"
        );
        let e = load("intervall: 5s\n").unwrap_err().to_string();
        assert!(
            e.contains("rollout.yaml: intervall: unknown field `intervall`"),
            "{e}"
        );
        let e = load("interval: soon\n").unwrap_err().to_string();
        assert!(
            e.contains("rollout.yaml: interval: `soon` is not a Prometheus duration"),
            "{e}"
        );
        let e = load("canary_percent: 100\n").unwrap_err().to_string();
        assert!(
            e.contains("canary_percent: 100 must be between 1 and 99"),
            "{e}"
        );
        let e = load("thresholds:\n  min_requests: 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no promotion on no data"), "{e}");
    }

    #[test]
    fn templates_must_tell_versions_apart_and_use_known_placeholders() {
        let e = load("queries:\n  requests: sum(rate(x[{window}]))\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("queries.requests: must use {version} or {role}"),
            "{e}"
        );
        let e = load("queries:\n  p99: 'x{server=\"{rol}\"}[{window}]'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("queries.p99: unknown placeholder {rol}"), "{e}");
        let e = load("queries:\n  errors: 'x{v=\"{version}\"}[5m]'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("queries.errors: must use {window}"), "{e}");
        assert_eq!(
            placeholders(r#"sum(x{code=~"5..",server="{role}"}[{window}])"#).unwrap(),
            vec!["role", "window"]
        );
    }
}
