//! `kiln report <run>`: one self-contained HTML page for a run — validation, the
//! hyperparameter search, metrics,
//! fairness, mitigation and the registration decision, with the steps' SVG plots
//! inline. No scripts, no external assets, no embedded data beyond the plots.

use serde_json::Value;

use kiln_core::Result;
use kiln_core::manifest::StepManifest;
use kiln_core::store::ArtifactStore;

mod tune;

/// The report's file name under the run root.
pub const REPORT: &str = "report.html";

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |x| {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.4}")
                }
            },
        ),
        Value::Null => "—".into(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "<span class=ok>passed</span>"
    } else {
        "<span class=bad>FAILED</span>"
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for h in headers {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

async fn json(run: &ArtifactStore, path: &str) -> Option<Value> {
    if run.exists(path).await.ok()? {
        run.get_json(path).await.ok()
    } else {
        None
    }
}

async fn svg(run: &ArtifactStore, path: &str) -> String {
    match run.get(path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).to_string();
            let start = text.find("<svg").unwrap_or(0);
            format!("<figure>{}</figure>", &text[start..])
        }
        Err(_) => String::new(),
    }
}

/// Builds the report of a run and writes it to `<run>/report.html`; returns its URI.
pub async fn write_report(run: &ArtifactStore) -> Result<String> {
    let html = render(run).await?;
    run.put(REPORT, html.into()).await?;
    Ok(run.uri_of(REPORT))
}

/// The report's HTML.
pub async fn render(run: &ArtifactStore) -> Result<String> {
    let mut body = String::new();
    // Steps.
    let mut rows = Vec::new();
    for step in crate::PIPELINE {
        let manifest = StepManifest::load(&run.child(step)).await?;
        rows.push(match manifest {
            Some(m) => vec![
                esc(step),
                "<span class=ok>completed</span>".into(),
                esc(&m.finished_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                format!(
                    "{:.2} s",
                    (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0
                ),
            ],
            None => vec![esc(step), "not run".into(), "—".into(), "—".into()],
        });
    }
    body.push_str(&format!(
        "<h2>Steps</h2>{}",
        table(&["step", "status", "finished", "time"], &rows)
    ));

    // Validation.
    if let Some(v) = json(run, "validate/report.json").await {
        body.push_str(&format!(
            "<h2>Data quality {}</h2>",
            verdict(v["passed"] == true)
        ));
        let mut rows = Vec::new();
        for split in ["train", "test"] {
            let s = &v[split]["statistics"];
            rows.push(vec![
                split.into(),
                num(&v[split]["meta"]["rows"]),
                format!(
                    "{}/{}",
                    num(&s["successful_expectations"]),
                    num(&s["evaluated_expectations"])
                ),
                num(&s["success_percent"]),
            ]);
        }
        body.push_str(&table(
            &["table", "rows", "expectations passed", "success %"],
            &rows,
        ));
        let mut failures = Vec::new();
        for split in ["train", "test"] {
            for r in v[split]["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["success"] != true)
            {
                let c = &r["expectation_config"];
                let severity = c["meta"]["severity"].as_str().unwrap_or("critical");
                let observed = r["result"]
                    .get("observed_value")
                    .or_else(|| r["result"].get("unexpected_count"))
                    .cloned()
                    .unwrap_or(Value::Null);
                failures.push(vec![
                    split.into(),
                    esc(c["type"].as_str().unwrap_or("")),
                    num(&c["kwargs"]["column"]),
                    num(&observed),
                    esc(severity),
                ]);
            }
        }
        if !failures.is_empty() {
            body.push_str("<h3>Failed expectations</h3>");
            body.push_str(&table(
                &[
                    "table",
                    "expectation",
                    "column",
                    "observed / unexpected",
                    "severity",
                ],
                &failures,
            ));
        }
        if let Some(columns) = v["drift"]["columns"].as_array() {
            let rows: Vec<Vec<String>> = columns
                .iter()
                .map(|c| {
                    let measures: Vec<String> = c["measures"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| {
                            format!(
                                "{} {} (max {})",
                                esc(m["method"].as_str().unwrap_or("")),
                                num(&m["value"]),
                                num(&m["threshold"])
                            )
                        })
                        .collect();
                    vec![
                        esc(c["column"].as_str().unwrap_or("")),
                        esc(c["kind"].as_str().unwrap_or("")),
                        measures.join(", "),
                        esc(c["verdict"].as_str().unwrap_or("")),
                    ]
                })
                .collect();
            body.push_str("<h3>Drift of test against train</h3>");
            body.push_str(&table(&["column", "kind", "measures", "verdict"], &rows));
        }
    }

    body.push_str(&tune::section(run).await);

    // Evaluation.
    if let Some(m) = json(run, "evaluate/metrics.json").await {
        body.push_str("<h2>Model quality (test split)</h2>");
        let ci = |name: &str| {
            let b = &m["bootstrap"][name];
            if b.is_null() {
                String::new()
            } else {
                format!(" [{}, {}]", num(&b["low"]), num(&b["high"]))
            }
        };
        let rows = vec![
            vec!["rows".into(), num(&m["rows"])],
            vec!["accuracy".into(), num(&m["accuracy"])],
            vec!["precision".into(), num(&m["precision"])],
            vec!["recall".into(), num(&m["recall"])],
            vec![
                "F1 (95 % CI)".into(),
                format!("{}{}", num(&m["f1"]), ci("f1")),
            ],
            vec![
                "ROC AUC (95 % CI)".into(),
                format!("{}{}", num(&m["roc_auc"]), ci("roc_auc")),
            ],
            vec!["average precision".into(), num(&m["average_precision"])],
            vec!["log loss".into(), num(&m["log_loss"])],
            vec!["Brier".into(), num(&m["brier"])],
            vec![
                "expected calibration error".into(),
                num(&m["calibration"]["expected_calibration_error"]),
            ],
            vec![
                "threshold / best-F1 threshold".into(),
                format!(
                    "{} / {}",
                    num(&m["threshold"]),
                    num(&m["best_f1"]["threshold"])
                ),
            ],
        ];
        body.push_str(&table(&["metric", "value"], &rows));
        body.push_str("<div class=plots>");
        for plot in [
            "roc",
            "precision_recall",
            "calibration",
            "confusion_matrix",
            "score_histogram",
        ] {
            body.push_str(&svg(run, &format!("evaluate/plots/{plot}.svg")).await);
        }
        body.push_str("</div>");
    }

    // Fairness.
    if let Some(f) = json(run, "fairness/report.json").await {
        // With no gate there is nothing to pass: say so instead of "passed".
        let gates = f["gates"].as_array().map_or(0, Vec::len);
        let heading = if gates == 0 {
            "<span class=warn>not gated (no fairness gate in the spec)</span>"
        } else {
            verdict(f["passed"] == true)
        };
        body.push_str(&format!("<h2>Fairness {heading}</h2>"));
        for a in f["attributes"].as_array().into_iter().flatten() {
            let name = a["attribute"].as_str().unwrap_or("");
            body.push_str(&format!("<h3>{}</h3>", esc(name)));
            let rows: Vec<Vec<String>> = a["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    vec![
                        esc(g["group"].as_str().unwrap_or("")),
                        num(&g["count"]),
                        num(&g["selection_rate"]),
                        num(&g["tpr"]),
                        num(&g["fpr"]),
                        num(&g["precision"]),
                        if g["excluded"] == true {
                            "too small".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            body.push_str(&table(
                &[
                    "group",
                    "count",
                    "selection rate",
                    "TPR",
                    "FPR",
                    "precision",
                    "",
                ],
                &rows,
            ));
            if let Some(d) = a["disparities"].as_object() {
                let rows: Vec<Vec<String>> = d.iter().map(|(k, v)| vec![esc(k), num(v)]).collect();
                body.push_str(&table(&["disparity", "value"], &rows));
            }
            let stem: String = name
                .replace(" × ", "_x_")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            body.push_str(&svg(run, &format!("fairness/plots/{stem}.svg")).await);
        }
        let gates: Vec<Vec<String>> = f["gates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                vec![
                    num(&g["metric"]),
                    num(&g["attribute"]),
                    format!("{} – {}", num(&g["min"]), num(&g["max"])),
                    num(&g["observed"]),
                    verdict(g["passed"] == true).into(),
                ]
            })
            .collect();
        if !gates.is_empty() {
            body.push_str("<h3>Fairness gates</h3>");
            body.push_str(&table(
                &["metric", "attribute", "bounds", "observed", "verdict"],
                &gates,
            ));
        }
        if let Some(m) = f.get("mitigation").filter(|m| !m.is_null()) {
            body.push_str("<h3>Mitigation</h3>");
            let rows: Vec<Vec<String>> = ["before", "after"]
                .iter()
                .map(|k| {
                    vec![
                        (*k).into(),
                        num(&m["test"][k]["accuracy"]),
                        num(&m["test"][k]["ratio"]),
                    ]
                })
                .collect();
            body.push_str(&format!(
                "<p>{} on <b>{}</b>, min ratio {}; thresholds {}</p>",
                num(&m["thresholds"]["constraint"]),
                num(&m["thresholds"]["attribute"]),
                num(&m["thresholds"]["min_ratio"]),
                esc(&m["thresholds"]["thresholds"].to_string())
            ));
            body.push_str(&table(
                &["test split", "accuracy", "constrained ratio"],
                &rows,
            ));
        }
    }

    // Registration.
    if let Some(d) = json(run, "register/decision.json").await {
        body.push_str(&format!(
            "<h2>Registration {}</h2>",
            verdict(d["passed"] == true)
        ));
        let rows: Vec<Vec<String>> = d["gates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                vec![
                    num(&g["gate"]),
                    num(&g["threshold"]),
                    num(&g["observed"]),
                    verdict(g["passed"] == true).into(),
                ]
            })
            .collect();
        body.push_str(&table(&["gate", "threshold", "observed", "verdict"], &rows));
        if let Some(r) = d.get("registered").filter(|r| !r.is_null()) {
            body.push_str(&format!(
                "<p>Registered <b>{}</b> version <b>{}</b> with alias <b>{}</b> in the {} registry{}.</p>",
                num(&r["model"]),
                num(&r["version"]),
                num(&r["alias"]),
                num(&r["backend"]),
                if r["reused"] == true { " (already registered by this run)" } else { "" }
            ));
        }
    }

    Ok(format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Kiln run {title}</title>\n<style>\
body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}}\
table{{border-collapse:collapse;margin:.5em 0 1em}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}\
th{{background:#f3f3f3}}.ok{{color:#11703a;font-weight:600}}.bad{{color:#b00020;font-weight:600}}.warn{{color:#8a5a00;font-weight:600}}\
figure{{display:inline-block;margin:.5em}}figure svg{{max-width:460px;height:auto}}h2{{border-bottom:1px solid #ddd;padding-bottom:.2em}}\
</style></head><body>\n<h1>Kiln run report</h1><p>{title} · generated {when}</p>\n{body}\n</body></html>\n",
        title = esc(run.uri()),
        when = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    ))
}
