//! Prometheus rules from an SLO spec, with Sloth's series names, labels and
//! expressions: per SLO a group of SLI recording rules (one per window), a group of
//! metadata rules (objective, budget, burn rates, budget remaining, info) and a group
//! with the page and ticket multiwindow multi-burn-rate alerts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::{Slo, SloSpec};
use crate::windows::{AlertWindows, PromDuration, WindowPair};

/// A Prometheus rule file (`groups:`), as `promtool check rules` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// One rule group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    fn record(name: &str, expr: String, labels: BTreeMap<String, String>) -> Rule {
        Rule {
            record: Some(name.to_string()),
            alert: None,
            expr,
            for_: None,
            labels,
            annotations: BTreeMap::new(),
        }
    }

    /// The rule's name: its record or alert.
    pub fn name(&self) -> &str {
        self.record
            .as_deref()
            .or(self.alert.as_deref())
            .unwrap_or("")
    }
}

/// What the generator adds beyond the spec.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Labels added to every recording rule (Sloth's `--extra-labels`).
    pub extra_labels: BTreeMap<String, String>,
    /// The `sloth_version` of the info series.
    pub version: String,
    /// The period and alert windows.
    pub windows: AlertWindows,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            extra_labels: BTreeMap::new(),
            version: format!("kiln-{}", env!("CARGO_PKG_VERSION")),
            windows: AlertWindows::builtin("30d").expect("the built-in 30d windows"),
        }
    }
}

/// Sloth's names for the series it records.
pub mod names {
    pub const SLI_ERROR_PREFIX: &str = "slo:sli_error:ratio_rate";
    pub const OBJECTIVE: &str = "slo:objective:ratio";
    pub const ERROR_BUDGET: &str = "slo:error_budget:ratio";
    pub const TIME_PERIOD_DAYS: &str = "slo:time_period:days";
    pub const CURRENT_BURN_RATE: &str = "slo:current_burn_rate:ratio";
    pub const PERIOD_BURN_RATE: &str = "slo:period_burn_rate:ratio";
    pub const BUDGET_REMAINING: &str = "slo:period_error_budget_remaining:ratio";
    pub const INFO: &str = "sloth_slo_info";
}

/// The recorded error ratio of one window, e.g. `slo:sli_error:ratio_rate5m`.
pub fn sli_series(window: PromDuration) -> String {
    format!("{}{window}", names::SLI_ERROR_PREFIX)
}

/// The rules of every SLO of the spec, three groups per SLO.
pub fn generate(spec: &SloSpec, options: &GenerateOptions) -> RuleFile {
    let mut groups = Vec::new();
    for slo in &spec.slos {
        let slo_rules = SloRules::new(spec, slo, options);
        groups.push(RuleGroup {
            name: format!("sloth-slo-sli-recordings-{}", slo_rules.id),
            interval: None,
            rules: slo_rules.sli_rules(),
        });
        groups.push(RuleGroup {
            name: format!("sloth-slo-meta-recordings-{}", slo_rules.id),
            interval: None,
            rules: slo_rules.meta_rules(),
        });
        let alerts = slo_rules.alert_rules();
        if !alerts.is_empty() {
            groups.push(RuleGroup {
                name: format!("sloth-slo-alerts-{}", slo_rules.id),
                interval: None,
                rules: alerts,
            });
        }
    }
    RuleFile { groups }
}

struct SloRules<'a> {
    spec: &'a SloSpec,
    slo: &'a Slo,
    options: &'a GenerateOptions,
    id: String,
}

impl<'a> SloRules<'a> {
    fn new(spec: &'a SloSpec, slo: &'a Slo, options: &'a GenerateOptions) -> Self {
        SloRules {
            id: slo.id(&spec.service),
            spec,
            slo,
            options,
        }
    }

    /// Extra labels, then the service's, then the SLO's, then the generator's own.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.options.extra_labels.clone();
        labels.extend(self.spec.labels.clone());
        labels.extend(self.slo.labels.clone());
        labels.insert("sloth_id".into(), self.id.clone());
        labels.insert("sloth_service".into(), self.spec.service.clone());
        labels.insert("sloth_slo".into(), self.slo.name.clone());
        labels
    }

    /// `{sloth_id="…", sloth_service="…", sloth_slo="…"}`
    fn selector(&self) -> String {
        format!(
            "{{sloth_id=\"{}\", sloth_service=\"{}\", sloth_slo=\"{}\"}}",
            self.id, self.spec.service, self.slo.name
        )
    }

    fn sli_rules(&self) -> Vec<Rule> {
        let windows = self.options.windows.recorded_windows();
        let period = self.options.windows.slo_period;
        let base = windows[0];
        let query = self.slo.query();
        windows
            .iter()
            .map(|&window| {
                let expr = if window == period {
                    // Sloth's optimised period SLI: the mean of the shortest window's
                    // ratio over the period, not a rate over 30 days of raw samples.
                    let base = format!("{}{}", sli_series(base), self.selector());
                    format!(
                        "sum_over_time({base}[{period}])\n/ ignoring (sloth_window)\ncount_over_time({base}[{period}])\n"
                    )
                } else {
                    query.for_window(&window.to_string())
                };
                let mut labels = self.labels();
                labels.insert("sloth_window".into(), window.to_string());
                Rule::record(&sli_series(window), expr, labels)
            })
            .collect()
    }

    fn meta_rules(&self) -> Vec<Rule> {
        let selector = self.selector();
        let objective = self.slo.objective / 100.0;
        let days = self.options.windows.slo_period.millis() as f64 / 86_400_000.0;
        let burn = |sli: String| {
            format!(
                "{sli}{selector}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\n{}{selector}\n",
                names::ERROR_BUDGET
            )
        };
        let labels = self.labels();
        let mut info_labels = labels.clone();
        for (key, value) in [
            ("sloth_mode", "cli-gen-prom".to_string()),
            ("sloth_objective", number(self.slo.objective)),
            ("sloth_spec", crate::spec::SPEC_VERSION.to_string()),
            ("sloth_version", self.options.version.clone()),
        ] {
            info_labels.insert(key.into(), value);
        }
        let period = self.options.windows.slo_period;
        vec![
            Rule::record(
                names::OBJECTIVE,
                format!("vector({})", number(objective)),
                labels.clone(),
            ),
            Rule::record(
                names::ERROR_BUDGET,
                format!("vector(1-{})", number(objective)),
                labels.clone(),
            ),
            Rule::record(
                names::TIME_PERIOD_DAYS,
                format!("vector({})", number(days)),
                labels.clone(),
            ),
            Rule::record(
                names::CURRENT_BURN_RATE,
                burn(sli_series(self.options.windows.recorded_windows()[0])),
                labels.clone(),
            ),
            Rule::record(
                names::PERIOD_BURN_RATE,
                burn(sli_series(period)),
                labels.clone(),
            ),
            Rule::record(
                names::BUDGET_REMAINING,
                format!("1 - {}{selector}", names::PERIOD_BURN_RATE),
                labels,
            ),
            Rule::record(names::INFO, "vector(1)".into(), info_labels),
        ]
    }

    fn alert_rules(&self) -> Vec<Rule> {
        let alerting = &self.slo.alerting;
        let windows = &self.options.windows;
        let mut rules = Vec::new();
        for (severity, settings, pairs) in [
            ("page", &alerting.page_alert, windows.page),
            ("ticket", &alerting.ticket_alert, windows.ticket),
        ] {
            if settings.disable {
                continue;
            }
            let mut labels = alerting.labels.clone();
            labels.extend(settings.labels.clone());
            labels.insert("sloth_severity".into(), severity.into());
            let mut annotations = BTreeMap::from([
                (
                    "title".to_string(),
                    format!(
                        "({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate is too fast."
                    ),
                ),
                (
                    "summary".to_string(),
                    "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.".to_string(),
                ),
            ]);
            annotations.extend(alerting.annotations.clone());
            annotations.extend(settings.annotations.clone());
            rules.push(Rule {
                record: None,
                alert: Some(alerting.name.clone()),
                expr: format!(
                    "(\n{}\n)\nor\n(\n{}\n)\n",
                    self.pair_condition(pairs.quick),
                    self.pair_condition(pairs.slow)
                ),
                for_: None,
                labels,
                annotations,
            });
        }
        rules
    }

    /// Both windows of a pair above the pair's burn rate.
    fn pair_condition(&self, pair: WindowPair) -> String {
        let threshold = format!(
            "({} * {})",
            number(self.options.windows.factor(pair)),
            number(self.slo.error_budget_ratio())
        );
        let one = |window: PromDuration| {
            format!(
                "    max({}{} > {threshold}) without (sloth_window)",
                sli_series(window),
                self.selector()
            )
        };
        format!(
            "{}\n    and\n{}",
            one(pair.short_window),
            one(pair.long_window)
        )
    }
}

/// A number as Go's shortest formatting writes it (`0.9990000000000001`, `14.4`, `6`).
pub fn number(value: f64) -> String {
    format!("{value}")
}

/// The file Kiln writes: a header that says where it came from, then the rules.
pub fn render_rule_file(rules: &RuleFile, source: &str) -> String {
    format!(
        "# Generated by `kiln slo generate` from {source}. Do not edit: change the spec and generate again.\n{}",
        yaml(rules)
    )
}

/// The same rules as a prometheus-operator `PrometheusRule`.
pub fn render_prometheus_rule(
    rules: &RuleFile,
    source: &str,
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Resource<'a> {
        api_version: &'a str,
        kind: &'a str,
        metadata: Metadata<'a>,
        spec: &'a RuleFile,
    }
    #[derive(Serialize)]
    struct Metadata<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<&'a str>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: &'a BTreeMap<String, String>,
    }
    let resource = Resource {
        api_version: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: Metadata {
            name,
            namespace,
            labels,
        },
        spec: rules,
    };
    format!(
        "# Generated by `kiln slo generate --format prometheus-rule` from {source}. Do not edit.\n{}",
        yaml(&resource)
    )
}

fn yaml<T: Serialize>(value: &T) -> String {
    serde_norway::to_string(value).expect("rules serialise to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_go() {
        assert_eq!(number(99.9 / 100.0), "0.9990000000000001");
        assert_eq!(number((100.0 - 99.9) / 100.0), "0.0009999999999999432");
        assert_eq!(number(6.0), "6");
        assert_eq!(number(30.0), "30");
    }
}
