//! `kiln report <run>`: one self-contained HTML page for a run — validation, the
//! hyperparameter search, metrics,
//! fairness, mitigation and the registration decision, with the steps' SVG plots
//! inline. No scripts, no external assets, no embedded data beyond the plots.

use serde_json::Value;

use kiln_core::Result;
use kiln_core::contracts::{
    self, Artifact, evaluate::EvaluationReport, fairness::FairnessReport, register::Decision,
    validate::ValidateReport,
};
use kiln_core::manifest::StepManifest;
use kiln_core::store::ArtifactStore;

mod sections;
mod tune;

use sections::{
    bom_summary, evaluation_section, fairness_section, registration_section, validation_section,
};

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

/// A number as [`num`] shows it (`—` when undefined or not finite).
fn float(x: f64) -> String {
    num(&serde_json::json!(x))
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), float)
}

/// An enum's name as its JSON gives it (`demographic_parity_ratio`).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    num(&serde_json::to_value(value).unwrap_or_default())
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

/// A step's artifact, `None` when the step has not written it; a file that does
/// not read as its contract is an error that names it.
async fn load<T: Artifact>(run: &ArtifactStore) -> Result<Option<T>> {
    if run.exists(&T::path()).await? {
        contracts::read_from_run(run).await.map(Some)
    } else {
        Ok(None)
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
    for step in crate::step_names() {
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

    if let Some(v) = load::<ValidateReport>(run).await? {
        body.push_str(&validation_section(&v));
    }

    body.push_str(&tune::section(run).await?);

    if let Some(m) = load::<EvaluationReport>(run).await? {
        body.push_str(&evaluation_section(&m));
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

    if let Some(f) = load::<FairnessReport>(run).await? {
        body.push_str(&fairness_section(run, &f).await);
    }

    if let Some(d) = load::<Decision>(run).await? {
        body.push_str(&registration_section(&d));
        // The BOM of a version this run registered (a reused version has none here).
        if let Some(bom) = kiln_register::bom::read(run).await? {
            body.push_str(&bom_summary(&bom));
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
