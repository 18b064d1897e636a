//! Sloth's `prometheus/v1` SLO spec: the format Sloth reads, so a spec written for Sloth
//! works here and the other way round.
//!
//! <https://sloth.dev/specs/prometheus-v1/> describes the format; the validation here
//! follows Sloth's (objective in (0, 100], every query templated on `{{.window}}`, one
//! SLI kind per SLO, an alert name unless both alerts are disabled).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SloError};

/// The one spec version Sloth's Prometheus generator reads.
pub const SPEC_VERSION: &str = "prometheus/v1";
/// The placeholder every SLI query carries for the window it is evaluated over.
pub const WINDOW_PLACEHOLDER: &str = "{{.window}}";

/// A service's SLOs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub version: String,
    pub service: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub slos: Vec<Slo>,
}

/// One SLO: an objective over a ratio of bad events to all events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub name: String,
    /// Percent of good events, e.g. 99.9.
    pub objective: f64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub sli: Sli,
    pub alerting: Alerting,
}

/// How the error ratio is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sli {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsSli>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawSli>,
    /// Sloth's SLI plugins are Go code; named here only to refuse them clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_norway::Value>,
}

/// Bad events over all events, as two queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSli {
    pub error_query: String,
    pub total_query: String,
}

/// The error ratio as one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSli {
    pub error_ratio_query: String,
}

/// The SLO's alerts: one page and one ticket alert, under one name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub page_alert: AlertSettings,
    #[serde(default)]
    pub ticket_alert: AlertSettings,
}

/// The labels and annotations of one of the two alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[serde(default)]
    pub disable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// How an SLO measures its error ratio, after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum SliQuery {
    Events { error: String, total: String },
    Raw { error_ratio: String },
}

impl SliQuery {
    /// The error-ratio expression for one window (Sloth's layout of it).
    pub fn for_window(&self, window: &str) -> String {
        match self {
            SliQuery::Events { error, total } => format!(
                "({})\n/\n({})\n",
                error.replace(WINDOW_PLACEHOLDER, window),
                total.replace(WINDOW_PLACEHOLDER, window)
            ),
            SliQuery::Raw { error_ratio } => {
                format!(
                    "(\n{}\n)\n",
                    error_ratio.replace(WINDOW_PLACEHOLDER, window)
                )
            }
        }
    }
}

impl Slo {
    /// Sloth's SLO id: `<service>-<slo>`.
    pub fn id(&self, service: &str) -> String {
        format!("{service}-{}", self.name)
    }

    /// The SLI as a query (the spec was validated, so exactly one kind is set).
    pub fn query(&self) -> SliQuery {
        match (&self.sli.events, &self.sli.raw) {
            (Some(events), _) => SliQuery::Events {
                error: events.error_query.trim().to_string(),
                total: events.total_query.trim().to_string(),
            },
            (None, Some(raw)) => SliQuery::Raw {
                error_ratio: raw.error_ratio_query.trim().to_string(),
            },
            (None, None) => unreachable!("validated: every SLO has an SLI"),
        }
    }

    /// The error budget as a ratio, computed as Sloth does: `(100 - objective) / 100`.
    pub fn error_budget_ratio(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }
}

impl SloSpec {
    /// Reads and validates a spec file. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<SloSpec> {
        let mut documents = serde_norway::Deserializer::from_str(text);
        let Some(document) = documents.next() else {
            return Err(SloError::spec(
                file,
                "empty: expected one prometheus/v1 document",
            ));
        };
        let spec: SloSpec = serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                SloError::spec(file, inner)
            } else {
                SloError::spec(file, format!("{path}: {inner}"))
            }
        })?;
        let more = 1 + documents.count();
        if more != 1 {
            return Err(SloError::spec(
                file,
                format!("expected one prometheus/v1 document, found {more} (one service per file)"),
            ));
        }
        spec.validate(file)?;
        Ok(spec)
    }

    /// Reads a spec from a path.
    pub fn load(path: &std::path::Path) -> Result<SloSpec> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SloError::spec(&file, format!("cannot read: {e}")))?;
        SloSpec::parse(&file, &text)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let fail = |message: String| Err(SloError::spec(file, message));
        if self.version != SPEC_VERSION {
            return fail(format!(
                "version: `{}` is not supported (only `{SPEC_VERSION}`)",
                self.version
            ));
        }
        if !valid_name(&self.service) {
            return fail(format!(
                "service: `{}` must be letters, digits, `-`, `_` or `.`",
                self.service
            ));
        }
        if self.slos.is_empty() {
            return fail("slos: at least one SLO is required".into());
        }
        check_labels(file, "labels", &self.labels)?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, slo) in self.slos.iter().enumerate() {
            let at = format!("slos[{i}]");
            if !valid_name(&slo.name) {
                return fail(format!(
                    "{at}.name: `{}` must be letters, digits, `-`, `_` or `.`",
                    slo.name
                ));
            }
            if !seen.insert(slo.name.as_str()) {
                return fail(format!("{at}.name: `{}` is used twice", slo.name));
            }
            if !(slo.objective > 0.0 && slo.objective <= 100.0) {
                return fail(format!(
                    "{at}.objective: {} must be over 0 and at most 100 (a percentage)",
                    slo.objective
                ));
            }
            check_labels(file, &format!("{at}.labels"), &slo.labels)?;
            let sli = &slo.sli;
            if sli.plugin.is_some() {
                return fail(format!(
                    "{at}.sli.plugin: Sloth's SLI plugins are Go code and are not supported; write the SLI as `events` or `raw`"
                ));
            }
            let queries: Vec<(&str, &str)> = match (&sli.events, &sli.raw) {
                (Some(_), Some(_)) => {
                    return fail(format!("{at}.sli: set one of `events` and `raw`, not both"));
                }
                (None, None) => return fail(format!("{at}.sli: set `events` or `raw`")),
                (Some(events), None) => vec![
                    ("events.error_query", events.error_query.as_str()),
                    ("events.total_query", events.total_query.as_str()),
                ],
                (None, Some(raw)) => {
                    vec![("raw.error_ratio_query", raw.error_ratio_query.as_str())]
                }
            };
            for (field, query) in queries {
                if !query.contains(WINDOW_PLACEHOLDER) {
                    return fail(format!(
                        "{at}.sli.{field}: the query must use {WINDOW_PLACEHOLDER} as its range (e.g. rate(x[{WINDOW_PLACEHOLDER}]))"
                    ));
                }
            }
            let alerting = &slo.alerting;
            let alerts_on = !(alerting.page_alert.disable && alerting.ticket_alert.disable);
            if alerts_on && !valid_alert_name(&alerting.name) {
                return fail(format!(
                    "{at}.alerting.name: `{}` is not a valid Prometheus alert name",
                    alerting.name
                ));
            }
            check_labels(file, &format!("{at}.alerting.labels"), &alerting.labels)?;
            check_labels(
                file,
                &format!("{at}.alerting.page_alert.labels"),
                &alerting.page_alert.labels,
            )?;
            check_labels(
                file,
                &format!("{at}.alerting.ticket_alert.labels"),
                &alerting.ticket_alert.labels,
            )?;
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_alert_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_labels(file: &str, at: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    for key in labels.keys() {
        if !valid_alert_name(key) {
            return Err(SloError::spec(
                file,
                format!("{at}: `{key}` is not a valid Prometheus label name"),
            ));
        }
        if key.starts_with("sloth_") {
            return Err(SloError::spec(
                file,
                format!("{at}: `{key}`: labels starting with `sloth_` are the generator's own"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
version: "prometheus/v1"
service: "svc"
slos:
  - name: "errors"
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(x{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(x[{{.window}}]))
    alerting:
      name: SvcErrors
"#;

    fn parse(text: &str) -> Result<SloSpec> {
        SloSpec::parse("slos.yaml", text)
    }

    #[test]
    fn a_valid_spec_parses_and_windows_are_templated() {
        let spec = parse(SPEC).unwrap();
        let slo = &spec.slos[0];
        assert_eq!(slo.id(&spec.service), "svc-errors");
        assert_eq!(
            slo.query().for_window("5m"),
            "(sum(rate(x{code=~\"5..\"}[5m])))\n/\n(sum(rate(x[5m])))\n"
        );
        assert!((slo.error_budget_ratio() - 0.001).abs() < 1e-12);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (SPEC.replace("99.9", "120"), "slos[0].objective: 120"),
            (
                SPEC.replace("[{{.window}}]))\n        total", "[5m]))\n        total"),
                "slos[0].sli.events.error_query",
            ),
            (
                SPEC.replace("prometheus/v1", "prometheus/v2"),
                "version: `prometheus/v2`",
            ),
            (
                SPEC.replace("name: SvcErrors", "name: Svc-Errors"),
                "slos[0].alerting.name",
            ),
            (
                SPEC.replace("objective: 99.9", "objective: 99.9\n    objectiv: 1"),
                "unknown field `objectiv`",
            ),
            (
                SPEC.replace(
                    "      events:",
                    "      raw:\n        error_ratio_query: x[{{.window}}]\n      events:",
                ),
                "not both",
            ),
            (
                format!("{SPEC}\n---\n{SPEC}"),
                "expected one prometheus/v1 document, found 2",
            ),
            (
                SPEC.replace("objective: 99.9", "objective: high"),
                "slos[0].objective",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("slos.yaml: "), "{err}");
            assert!(err.contains(expected), "{err} does not contain {expected}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
