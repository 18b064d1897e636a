//! Grafana dashboards (JSON models) for Kiln: serving, SLOs (built from the SLO spec),
//! pipeline steps (Argo's template metrics) and GPUs (dcgm-exporter).
//!
//! Every panel is a `timeseries` or `stat` panel on a Prometheus data source chosen by
//! the `datasource` variable; queries use Grafana's `$__rate_interval` and the
//! dashboard variables below. The tests validate each dashboard against Grafana's
//! schemas and evaluate every query on a live Prometheus.

use kiln_core::metric_names::{
    BATCH_ROWS, DECISIONS_TOTAL, DRIFT_WINDOW_ROWS, DRIFTED_FEATURES_RATIO, FEATURE_DRIFT_PSI,
    FEATURE_LOOKUPS_TOTAL, FEATURE_TABLE_ROWS, GROUP_DECISIONS_TOTAL, INFLIGHT_REQUESTS,
    MODEL_INFO, MODEL_READY, REQUEST_DURATION_SECONDS, REQUESTS_TOTAL, SHED_REQUESTS_TOTAL,
};
use serde_json::{Value, json};

use crate::rules::{names, sli_series};
use crate::spec::SloSpec;
use crate::windows::AlertWindows;

/// The data source every panel and target uses.
fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// A query of a panel.
pub struct Query {
    pub expr: String,
    pub legend: String,
}

fn q(expr: impl Into<String>, legend: &str) -> Query {
    Query {
        expr: expr.into(),
        legend: legend.into(),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// A time series with a unit.
    Series(&'static str),
    /// A single stat with a unit, coloured by thresholds (`(value, colour)` from the base).
    Stat(&'static str, &'static [(f64, &'static str)]),
}

struct Layout {
    panels: Vec<Value>,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            panels: Vec::new(),
            x: 0,
            y: 0,
            row_height: 0,
        }
    }

    fn add(&mut self, title: &str, description: &str, width: u32, kind: Kind, queries: Vec<Query>) {
        let height = match kind {
            Kind::Series(_) => 8,
            Kind::Stat(..) => 4,
        };
        if self.x + width > 24 {
            self.x = 0;
            self.y += self.row_height;
            self.row_height = 0;
        }
        let id = self.panels.len() as u64 + 1;
        let targets: Vec<Value> = queries
            .iter()
            .enumerate()
            .map(|(i, query)| {
                json!({
                    "datasource": datasource(),
                    "expr": query.expr,
                    "legendFormat": query.legend,
                    "refId": ((b'A' + i as u8) as char).to_string(),
                    "range": true,
                    "editorMode": "code",
                })
            })
            .collect();
        let (panel_type, options, defaults) = match kind {
            Kind::Series(unit) => (
                "timeseries",
                json!({
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                }),
                json!({
                    "unit": unit,
                    "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false},
                }),
            ),
            Kind::Stat(unit, steps) => (
                "stat",
                json!({
                    "graphMode": "area",
                    "colorMode": "value",
                    "justifyMode": "auto",
                    "textMode": "auto",
                    "wideLayout": true,
                    "showPercentChange": false,
                    "percentChangeColorMode": "standard",
                    "orientation": "auto",
                    "reduceOptions": {"calcs": ["lastNotNull"], "values": false, "fields": ""},
                }),
                json!({
                    "unit": unit,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": steps.iter().enumerate().map(|(i, (value, color))| {
                            json!({"value": if i == 0 { Value::Null } else { json!(value) }, "color": color})
                        }).collect::<Vec<_>>(),
                    },
                }),
            ),
        };
        self.panels.push(json!({
            "type": panel_type,
            "id": id,
            "title": title,
            "description": description,
            "datasource": datasource(),
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "targets": targets,
            "options": options,
            "fieldConfig": {"defaults": defaults, "overrides": []},
        }));
        self.x += width;
        self.row_height = self.row_height.max(height);
    }
}

fn dashboard(
    uid: &str,
    title: &str,
    description: &str,
    tags: &[&str],
    variables: Vec<Value>,
    panels: Vec<Value>,
) -> Value {
    let mut list = vec![json!({
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
    })];
    list.extend(variables);
    json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "editable": true,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": 41,
        "version": 1,
        "templating": {"list": list},
        "annotations": {"list": []},
        "panels": panels,
    })
}

fn query_variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "type": "query",
        "name": name,
        "label": label,
        "datasource": datasource(),
        "query": query,
        "refresh": 2,
        "includeAll": true,
        "multi": true,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
    })
}

const RED_BELOW_ZERO: &[(f64, &str)] = &[(0.0, "red"), (0.0, "orange"), (0.25, "green")];
const GOOD_IS_ONE: &[(f64, &str)] = &[(0.0, "red"), (1.0, "green")];
const PLAIN: &[(f64, &str)] = &[(0.0, "blue")];

/// "Kiln serving": traffic, errors, latency, saturation, drift, decisions.
pub fn serving() -> Value {
    let m = r#"model_name=~"$model""#;
    let mut l = Layout::new();
    l.add(
        "Model version",
        &format!("The version each server serves ({MODEL_INFO})"),
        6,
        Kind::Stat("none", PLAIN),
        vec![q(
            format!("max by (model_version) ({MODEL_INFO}{{{m}}})"),
            "{{model_version}}",
        )],
    );
    l.add(
        "Servers ready",
        "Servers whose model loaded and passed the self-check",
        6,
        Kind::Stat("none", GOOD_IS_ONE),
        vec![q(format!("sum({MODEL_READY}{{{m}}})"), "ready")],
    );
    l.add(
        "Requests / s",
        "Inference requests per second, all protocols",
        6,
        Kind::Stat("reqps", PLAIN),
        vec![q(
            format!("sum(rate({REQUESTS_TOTAL}{{{m}}}[$__rate_interval]))"),
            "requests/s",
        )],
    );
    l.add("Error ratio (5xx)", "Share of inference requests answered with a 5xx", 6, Kind::Stat("percentunit", &[(0.0, "green"), (0.001, "red")]),
        vec![q(format!("sum(rate({REQUESTS_TOTAL}{{{m}, code=~\"5..\"}}[$__rate_interval])) / sum(rate({REQUESTS_TOTAL}{{{m}}}[$__rate_interval]))"), "5xx")]);
    l.add(
        "Request rate by protocol and code",
        REQUESTS_TOTAL,
        12,
        Kind::Series("reqps"),
        vec![q(
            format!("sum by (protocol, code) (rate({REQUESTS_TOTAL}{{{m}}}[$__rate_interval]))"),
            "{{protocol}} {{code}}",
        )],
    );
    l.add(
        "Request rate by model version",
        "The canary's and the stable version's traffic",
        12,
        Kind::Series("reqps"),
        vec![q(
            format!("sum by (model_version) (rate({REQUESTS_TOTAL}{{{m}}}[$__rate_interval]))"),
            "version {{model_version}}",
        )],
    );
    l.add("Latency percentiles", &format!("Whole requests ({REQUEST_DURATION_SECONDS}); the SLO is 99 % under 300 ms"), 12, Kind::Series("s"),
        ["0.5", "0.9", "0.99"].iter().map(|p| q(format!("histogram_quantile({p}, sum by (le) (rate({REQUEST_DURATION_SECONDS}_bucket{{{m}}}[$__rate_interval])))"), &format!("p{}", &p[2..]))).collect());
    l.add("p99 by stage", "Decode (preprocess), scoring with queue wait (predict), encode (postprocess)", 12, Kind::Series("s"),
        ["preprocess", "predict", "postprocess"].iter().map(|s| q(format!("histogram_quantile(0.99, sum by (le) (rate(request_{s}_seconds_bucket{{{m}}}[$__rate_interval])))"), s)).collect());
    l.add(
        "In-flight requests",
        "Requests being served now, per server (the limit is --max-concurrency)",
        8,
        Kind::Series("none"),
        vec![q(
            format!("sum by (instance) ({INFLIGHT_REQUESTS}{{{m}}})"),
            "{{instance}}",
        )],
    );
    l.add("Shed requests / s", "Refused at once with 503: concurrency limit or full queue", 8, Kind::Series("reqps"),
        vec![q(format!("sum by (reason) (rate({SHED_REQUESTS_TOTAL}{{{m}}}[$__rate_interval])) or vector(0)"), "{{reason}}")]);
    l.add("Rows per scoring pass (p50, p99)", "Dynamic batching across requests", 8, Kind::Series("none"),
        ["0.5", "0.99"].iter().map(|p| q(format!("histogram_quantile({p}, sum by (le) (rate({BATCH_ROWS}_bucket{{{m}}}[$__rate_interval])))"), &format!("p{}", &p[2..]))).collect());
    l.add(
        "Drift per feature (PSI)",
        "Population stability index of each input over the served window, against training",
        12,
        Kind::Series("none"),
        vec![q(
            format!("max by (feature) ({FEATURE_DRIFT_PSI}{{{m}}})"),
            "{{feature}}",
        )],
    );
    l.add(
        "Drifted share",
        "Share of features over the drift threshold; the SLO counts time above 0.1",
        6,
        Kind::Series("percentunit"),
        vec![q(
            format!("max({DRIFTED_FEATURES_RATIO}{{{m}}})"),
            "drifted share",
        )],
    );
    l.add(
        "Rows in the drift window",
        "Readings need --drift-min-rows",
        6,
        Kind::Series("none"),
        vec![q(format!("max({DRIFT_WINDOW_ROWS}{{{m}}})"), "rows")],
    );
    l.add(
        "Decisions by label",
        "Positive and negative decisions per second, per model version",
        12,
        Kind::Series("ops"),
        vec![q(
            format!(
                "sum by (model_version, label) (rate({DECISIONS_TOTAL}{{{m}}}[$__rate_interval]))"
            ),
            "v{{model_version}} label {{label}}",
        )],
    );
    l.add("Positive rate by group", "Share of positive decisions per group of the policy's sensitive attribute", 12, Kind::Series("percentunit"),
        vec![q(format!("sum by (attribute, group) (rate({GROUP_DECISIONS_TOTAL}{{{m}, label=\"1\"}}[$__rate_interval])) / sum by (attribute, group) (rate({GROUP_DECISIONS_TOTAL}{{{m}}}[$__rate_interval]))"), "{{attribute}}={{group}}")]);
    l.add("Feature lookups missed", "Share of request rows whose key the feature table does not have (their looked-up features are imputed); 0 without lookups", 12, Kind::Series("percentunit"),
        vec![q(format!("(sum(rate({FEATURE_LOOKUPS_TOTAL}{{{m}, result=\"miss\"}}[$__rate_interval])) / (sum(rate({FEATURE_LOOKUPS_TOTAL}{{{m}}}[$__rate_interval])) > 0)) or vector(0)"), "missed")]);
    l.add("Feature table keys", "Keys in the feature table each server serves from (0: the model looks nothing up); a stuck refresh pages as KilnFeatureTableRefreshFailing", 12, Kind::Series("none"),
        vec![q(format!("max by (instance) ({FEATURE_TABLE_ROWS}{{{m}}})"), "{{instance}}")]);
    dashboard(
        "kiln-serving",
        "Kiln serving",
        "kiln-serve: traffic, errors, latency, saturation, drift and decisions",
        &["kiln", "serving"],
        vec![query_variable(
            "model",
            "Model",
            &format!("label_values({MODEL_INFO}, model_name)"),
        )],
        l.panels,
    )
}

/// "Kiln SLOs": per SLO of the spec, budget left, burn rates and the SLI per window.
pub fn slos(spec: &SloSpec, windows: &AlertWindows) -> Value {
    let mut l = Layout::new();
    let period = windows.slo_period;
    let shortest = windows.recorded_windows()[0];
    for slo in &spec.slos {
        let id = slo.id(&spec.service);
        let sel = format!("{{sloth_id=\"{id}\"}}");
        l.add(
            &format!("{}: budget left ({period})", slo.name),
            &format!("{} Objective {} %.", slo.description, slo.objective),
            6,
            Kind::Stat("percentunit", RED_BELOW_ZERO),
            vec![q(
                format!("{}{sel}", names::BUDGET_REMAINING),
                "budget left",
            )],
        );
        l.add(
            &format!("{}: burn rate", slo.name),
            "1x spends the budget exactly over the period; the page fires at 14.4x (1h) or 6x (6h)",
            9,
            Kind::Series("none"),
            vec![
                q(
                    format!("{}{sel}", names::CURRENT_BURN_RATE),
                    &format!("now ({shortest})"),
                ),
                q(
                    format!("{}{sel}", names::PERIOD_BURN_RATE),
                    &format!("period ({period})"),
                ),
            ],
        );
        l.add(
            &format!("{}: error ratio by window", slo.name),
            "The recorded SLI of each alert window",
            9,
            Kind::Series("percentunit"),
            windows
                .recorded_windows()
                .iter()
                .map(|w| q(format!("{}{sel}", sli_series(*w)), &w.to_string()))
                .collect(),
        );
    }
    l.add("Alerts firing", "SLO alerts firing now, by SLO and severity", 24, Kind::Series("none"),
        vec![q(format!("sum by (sloth_slo, sloth_severity) (ALERTS{{alertstate=\"firing\", sloth_service=\"{}\"}}) or vector(0)", spec.service), "{{sloth_slo}} {{sloth_severity}}")]);
    dashboard(
        "kiln-slos",
        "Kiln SLOs",
        "Error budgets and burn rates of the serving SLOs (monitoring/slos.yaml)",
        &["kiln", "slo"],
        vec![],
        l.panels,
    )
}

/// "Kiln pipeline": step durations and results from Argo's template metrics.
pub fn pipeline() -> Value {
    let mut l = Layout::new();
    l.add(
        "Step attempts by status",
        "Argo template metric kiln_step_results_total",
        12,
        Kind::Series("none"),
        vec![q(
            "sum by (step, status) (increase(argo_workflows_kiln_step_results_total[$__range]))",
            "{{step}} {{status}}",
        )],
    );
    l.add("Quality gates failed", "Steps that exited 3: a data-quality, metric or fairness gate failed", 6, Kind::Stat("none", &[(0.0, "green"), (1.0, "red")]),
        vec![q("sum(increase(argo_workflows_kiln_step_results_total{exit_code=\"3\"}[$__range])) or vector(0)", "gates failed")]);
    l.add("Transient failures (retried)", "Steps that exited 75: store or MLflow unreachable", 6, Kind::Stat("none", &[(0.0, "green"), (1.0, "orange")]),
        vec![q("sum(increase(argo_workflows_kiln_step_results_total{exit_code=\"75\"}[$__range])) or vector(0)", "retried")]);
    l.add("Step duration p50 / p95", "From Argo's histogram kiln_step_duration_seconds", 24, Kind::Series("s"),
        ["0.5", "0.95"].iter().map(|p| q(format!("histogram_quantile({p}, sum by (step, le) (rate(argo_workflows_kiln_step_duration_seconds_bucket[$__rate_interval])))"), &format!("{{{{step}}}} p{}", &p[2..]))).collect());
    dashboard(
        "kiln-pipeline",
        "Kiln pipeline",
        "The Argo pipeline's steps: durations, results and gate outcomes",
        &["kiln", "pipeline", "argo"],
        vec![],
        l.panels,
    )
}

/// "Kiln GPUs": dcgm-exporter's utilisation, memory, power and temperature.
pub fn gpu() -> Value {
    let mut l = Layout::new();
    let h = r#"Hostname=~"$node""#;
    l.add(
        "GPU utilisation",
        "DCGM_FI_DEV_GPU_UTIL; the SLO counts time above 95 %",
        12,
        Kind::Series("percent"),
        vec![q(
            format!("max by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{{{h}}})"),
            "{{Hostname}} gpu {{gpu}}",
        )],
    );
    l.add(
        "GPUs above 95 %",
        "How many GPUs are saturated now",
        6,
        Kind::Stat("none", &[(0.0, "green"), (1.0, "orange")]),
        vec![q(
            format!("sum(DCGM_FI_DEV_GPU_UTIL{{{h}}} > bool 95)"),
            "saturated",
        )],
    );
    l.add(
        "Framebuffer used",
        "DCGM_FI_DEV_FB_USED (MiB)",
        6,
        Kind::Stat("decmbytes", PLAIN),
        vec![q(format!("sum(DCGM_FI_DEV_FB_USED{{{h}}})"), "used")],
    );
    l.add(
        "Power",
        "DCGM_FI_DEV_POWER_USAGE (W)",
        12,
        Kind::Series("watt"),
        vec![q(
            format!("max by (Hostname, gpu) (DCGM_FI_DEV_POWER_USAGE{{{h}}})"),
            "{{Hostname}} gpu {{gpu}}",
        )],
    );
    l.add(
        "Temperature",
        "DCGM_FI_DEV_GPU_TEMP (°C)",
        12,
        Kind::Series("celsius"),
        vec![q(
            format!("max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP{{{h}}})"),
            "{{Hostname}} gpu {{gpu}}",
        )],
    );
    dashboard(
        "kiln-gpu",
        "Kiln GPUs",
        "GPU nodes (training and GPU serving), from NVIDIA's dcgm-exporter",
        &["kiln", "gpu"],
        vec![query_variable(
            "node",
            "Node",
            "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)",
        )],
        l.panels,
    )
}

/// Every dashboard, by file name.
pub fn all(spec: &SloSpec, windows: &AlertWindows) -> Vec<(&'static str, Value)> {
    vec![
        ("kiln-serving.json", serving()),
        ("kiln-slos.json", slos(spec, windows)),
        ("kiln-pipeline.json", pipeline()),
        ("kiln-gpu.json", gpu()),
    ]
}

/// Pretty JSON with a final newline, as the files are committed.
pub fn render(dashboard: &Value) -> String {
    serde_json::to_string_pretty(dashboard).expect("JSON") + "\n"
}

/// The dashboards as ConfigMaps that Grafana's sidecar picks up (label `grafana_dashboard: "1"`).
pub fn config_maps(dashboards: &[(&'static str, Value)], namespace: &str) -> String {
    let mut out = String::from(
        "# Generated by `kiln slo dashboards`: the dashboards of monitoring/grafana/dashboards as\n# ConfigMaps for Grafana's dashboard sidecar (label grafana_dashboard). Do not edit.\n",
    );
    for (file, dashboard) in dashboards {
        let name = file.trim_end_matches(".json");
        let doc = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": format!("{name}-dashboard"),
                "namespace": namespace,
                "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "kiln"},
                "annotations": {"grafana_folder": "Kiln"},
            },
            "data": {*file: render(dashboard)},
        });
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&doc).expect("YAML"));
    }
    out
}
