//! The report's sections on validation, model quality, fairness and registration,
//! each from its step's typed artifact.

use serde_json::Value;

use kiln_core::contracts::evaluate::EvaluationReport;
use kiln_core::contracts::fairness::FairnessReport;
use kiln_core::contracts::register::Decision;
use kiln_core::contracts::validate::ValidateReport;
use kiln_core::store::ArtifactStore;

use super::{esc, float, name_of, num, optional, svg, table, verdict};

pub(super) fn validation_section(v: &ValidateReport) -> String {
    let mut body = format!("<h2>Data quality {}</h2>", verdict(v.passed));
    let splits = [("train", &v.train), ("test", &v.test)];
    let rows: Vec<Vec<String>> = splits
        .iter()
        .map(|(split, result)| {
            let s = &result.statistics;
            vec![
                (*split).into(),
                num(result.meta.get("rows").unwrap_or(&Value::Null)),
                format!("{}/{}", s.successful_expectations, s.evaluated_expectations),
                optional(s.success_percent),
            ]
        })
        .collect();
    body.push_str(&table(
        &["table", "rows", "expectations passed", "success %"],
        &rows,
    ));
    let mut failures = Vec::new();
    for (split, result) in splits {
        for r in result.results.iter().filter(|r| !r.success) {
            let c = &r.expectation_config;
            let severity = c
                .severity
                .as_deref()
                .or_else(|| c.meta.get("severity").and_then(Value::as_str))
                .unwrap_or("critical");
            let observed = r
                .result
                .get("observed_value")
                .or_else(|| r.result.get("unexpected_count"))
                .cloned()
                .unwrap_or(Value::Null);
            failures.push(vec![
                split.into(),
                esc(&c.kind),
                c.column().map_or_else(|| "—".into(), esc),
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
    if let Some(drift) = &v.drift {
        let rows: Vec<Vec<String>> = drift
            .columns
            .iter()
            .map(|c| {
                let measures: Vec<String> = c
                    .measures
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {} (max {})",
                            esc(&m.method),
                            float(m.value),
                            float(m.threshold)
                        )
                    })
                    .collect();
                vec![
                    esc(&c.column),
                    esc(&c.kind),
                    measures.join(", "),
                    esc(&c.verdict),
                ]
            })
            .collect();
        body.push_str("<h3>Drift of test against train</h3>");
        body.push_str(&table(&["column", "kind", "measures", "verdict"], &rows));
    }
    body
}

pub(super) fn evaluation_section(m: &EvaluationReport) -> String {
    let mut body = String::from("<h2>Model quality (test split)</h2>");
    let interval = |i: Option<kiln_stats::bootstrap::Interval>| {
        i.map_or(String::new(), |i| {
            format!(" [{}, {}]", float(i.low), float(i.high))
        })
    };
    let b = m.bootstrap.as_ref();
    let rows = vec![
        vec!["rows".into(), m.rows.to_string()],
        vec!["accuracy".into(), float(m.accuracy)],
        vec!["precision".into(), float(m.precision)],
        vec!["recall".into(), float(m.recall)],
        vec![
            "F1 (95 % CI)".into(),
            format!("{}{}", float(m.f1), interval(b.and_then(|b| b.f1))),
        ],
        vec![
            "ROC AUC (95 % CI)".into(),
            format!(
                "{}{}",
                optional(m.roc_auc),
                interval(b.and_then(|b| b.roc_auc))
            ),
        ],
        vec!["average precision".into(), optional(m.average_precision)],
        vec!["log loss".into(), float(m.log_loss)],
        vec!["Brier".into(), float(m.brier)],
        vec![
            "expected calibration error".into(),
            float(m.calibration.expected_calibration_error),
        ],
        vec![
            "threshold / best-F1 threshold".into(),
            format!(
                "{} / {}",
                float(m.threshold),
                optional(m.best_f1.map(|b| b.threshold))
            ),
        ],
    ];
    body.push_str(&table(&["metric", "value"], &rows));
    body
}

pub(super) async fn fairness_section(run: &ArtifactStore, f: &FairnessReport) -> String {
    // With no gate there is nothing to pass: say so instead of "passed".
    let heading = if f.gates.is_empty() {
        "<span class=warn>not gated (no fairness gate in the spec)</span>"
    } else {
        verdict(f.passed)
    };
    let mut body = format!("<h2>Fairness {heading}</h2>");
    for a in &f.attributes {
        body.push_str(&format!("<h3>{}</h3>", esc(&a.attribute)));
        let rows: Vec<Vec<String>> = a
            .groups
            .iter()
            .map(|g| {
                vec![
                    esc(&g.group),
                    g.count.to_string(),
                    float(g.selection_rate),
                    optional(g.tpr),
                    optional(g.fpr),
                    optional(g.precision),
                    if g.excluded {
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
        if !a.disparities.is_empty() {
            let rows: Vec<Vec<String>> = a
                .disparities
                .iter()
                .map(|(k, v)| vec![name_of(k), optional(*v)])
                .collect();
            body.push_str(&table(&["disparity", "value"], &rows));
        }
        let stem: String = a
            .attribute
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
    let gates: Vec<Vec<String>> = f
        .gates
        .iter()
        .map(|g| {
            vec![
                name_of(&g.metric),
                esc(&g.attribute),
                format!("{} – {}", optional(g.min), optional(g.max)),
                optional(g.observed),
                verdict(g.passed).into(),
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
    if let Some(m) = &f.mitigation {
        body.push_str("<h3>Mitigation</h3>");
        let rows: Vec<Vec<String>> = [
            ("before", Some(&m.test.before)),
            ("after", m.test.after.as_ref()),
        ]
        .iter()
        .map(|(k, summary)| {
            vec![
                (*k).into(),
                optional(summary.map(|s| s.accuracy)),
                optional(summary.and_then(|s| s.ratio)),
            ]
        })
        .collect();
        if let Some(t) = &m.thresholds {
            body.push_str(&format!(
                "<p>{} on <b>{}</b>, min ratio {}; thresholds {}</p>",
                name_of(&t.constraint),
                esc(&t.attribute),
                float(t.min_ratio),
                esc(&serde_json::to_string(&t.thresholds).unwrap_or_default())
            ));
        } else {
            body.push_str(
                "<p>No thresholds satisfy the constraint: the model is judged unmitigated.</p>",
            );
        }
        body.push_str(&table(
            &["test split", "accuracy", "constrained ratio"],
            &rows,
        ));
    }
    body
}

/// The ML-BOM register stored with the version, in a few lines: its datasets with
/// their digests, the metrics and groups its model card holds, the library count and
/// the signature.
pub(super) fn bom_summary(bom: &serde_json::Value) -> String {
    let components = bom["components"].as_array().cloned().unwrap_or_default();
    let model = components.first().cloned().unwrap_or_default();
    let datasets: Vec<Vec<String>> = components
        .iter()
        .filter(|c| c["type"] == "data")
        .map(|c| {
            let digest = c["hashes"][0]["content"].as_str().unwrap_or("");
            vec![
                esc(c["name"].as_str().unwrap_or("?")),
                esc(c["properties"][0]["value"].as_str().unwrap_or("")),
                format!("<code>{}</code>", esc(digest.get(..16).unwrap_or(digest))),
            ]
        })
        .collect();
    let libraries = components.iter().filter(|c| c["type"] == "library").count();
    let card = &model["modelCard"];
    let metrics = card["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .map_or(0, Vec::len);
    let groups = card["considerations"]["fairnessAssessments"]
        .as_array()
        .map_or(0, Vec::len);
    let signature = match model["externalReferences"][0]["hashes"][0]["content"].as_str() {
        Some(sha) => format!(
            "signed (OMS v1.0; signature sha256 <code>{}</code>)",
            esc(sha.get(..16).unwrap_or(sha))
        ),
        None => "<span class=warn>unsigned</span> (no KILN_SIGNING_KEY)".to_string(),
    };
    let mut body = format!(
        "<h3>ML-BOM</h3><p>CycloneDX {}: the model card holds {metrics} metrics and {groups} group assessments; {libraries} libraries trained it; {signature}.</p>",
        esc(bom["specVersion"].as_str().unwrap_or("?")),
    );
    body.push_str(&table(&["dataset", "role", "sha256"], &datasets));
    body
}

pub(super) fn registration_section(d: &Decision) -> String {
    let mut body = format!("<h2>Registration {}</h2>", verdict(d.passed));
    let rows: Vec<Vec<String>> = d
        .gates
        .iter()
        .map(|g| {
            vec![
                esc(&g.gate),
                num(&g.threshold),
                num(&g.observed),
                verdict(g.passed).into(),
            ]
        })
        .collect();
    body.push_str(&table(&["gate", "threshold", "observed", "verdict"], &rows));
    if let Some(r) = &d.registered {
        body.push_str(&format!(
            "<p>Registered <b>{}</b> version <b>{}</b> with alias <b>{}</b> in the {} registry{}.</p>",
            esc(&r.model),
            esc(&r.version),
            esc(&r.alias),
            esc(&r.backend),
            if r.reused {
                " (already registered by this run)"
            } else {
                ""
            }
        ));
    }
    body
}
