//! The report's tune section: the search's trials (typed, from `tune/trials.json` and
//! `tune/best.json`), a plot of the metric by trial, and the chosen configuration.

use kiln_core::spec::BestConfig;
use kiln_core::store::ArtifactStore;
use kiln_tune::TrialRecord;

use super::{esc, table};

/// The section's HTML, or nothing when the run has no search.
pub async fn section(run: &ArtifactStore) -> String {
    let trials: Option<Vec<TrialRecord>> = run.get_json("tune/trials.json").await.ok();
    let best: Option<BestConfig> = run.get_json("tune/best.json").await.ok();
    let (Some(trials), Some(best)) = (trials, best) else {
        return String::new();
    };
    let metric = best.metric.name();
    let mut out = format!(
        "<h2>Hyperparameter search</h2><p>{} trials, {} pruned; best: trial {} with {metric} {:.4} (on train's validation rows).</p>",
        trials.len(),
        trials.iter().filter(|t| t.pruned).count(),
        best.trial,
        best.value
    );
    out.push_str(&plot(&trials, best.trial, metric));
    let rows: Vec<Vec<String>> = best
        .params
        .iter()
        .map(|(k, v)| vec![esc(k), esc(&v.to_string())])
        .collect();
    out.push_str("<h3>Chosen configuration</h3>");
    out.push_str(&table(&["parameter", "value"], &rows));
    let names: Vec<&String> = best.params.keys().collect();
    let mut headers = vec!["trial", "round", metric, "epochs", "pruned"];
    headers.extend(names.iter().map(|n| n.as_str()));
    let rows: Vec<Vec<String>> = trials
        .iter()
        .map(|t| {
            let mut row = vec![
                t.index.to_string(),
                t.round.to_string(),
                format!("{:.4}", t.value),
                t.epochs_run.to_string(),
                if t.pruned {
                    "yes".into()
                } else {
                    String::new()
                },
            ];
            row.extend(
                names
                    .iter()
                    .map(|n| t.params.get(*n).map(|v| esc(&short(v))).unwrap_or_default()),
            );
            row
        })
        .collect();
    out.push_str("<h3>Trials</h3>");
    out.push_str(&table(&headers, &rows));
    out
}

fn short(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => format!("{x:.4}"),
        _ => v.to_string(),
    }
}

/// The metric by trial (pruned trials hollow, the best in a second colour) and the
/// best-so-far line, as inline SVG.
fn plot(trials: &[TrialRecord], best: usize, metric: &str) -> String {
    let (w, h, pad) = (640.0, 240.0, 40.0);
    let values: Vec<f64> = trials.iter().map(|t| t.value).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-9);
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (trials.len().max(2) - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / span;
    let mut svg = format!(
        "<figure><svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' aria-label='{metric} by trial'>"
    );
    svg.push_str(&format!(
        "<text x='{pad}' y='16' font-size='12'>{metric} by trial ({lo:.4} – {hi:.4})</text>"
    ));
    let maximize = metric == "val_auc";
    let mut running: Option<f64> = None;
    let mut line = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        if !t.pruned {
            running = Some(match running {
                Some(r) if maximize => r.max(t.value),
                Some(r) => r.min(t.value),
                None => t.value,
            });
        }
        if let Some(r) = running {
            line.push(format!("{:.1},{:.1}", x(i), y(r)));
        }
        let (fill, colour) = match (t.pruned, t.index == best) {
            (_, true) => ("#d95f02", "#d95f02"),
            (true, false) => ("none", "#7570b3"),
            (false, false) => ("#1b9e77", "#1b9e77"),
        };
        svg.push_str(&format!(
            "<circle cx='{:.1}' cy='{:.1}' r='4' fill='{fill}' stroke='{colour}'><title>trial {}: {:.4}{}</title></circle>",
            x(i),
            y(t.value),
            t.index,
            t.value,
            if t.pruned { " (pruned)" } else { "" }
        ));
    }
    svg.push_str(&format!(
        "<polyline fill='none' stroke='#666' stroke-dasharray='4 3' points='{}'/>",
        line.join(" ")
    ));
    svg.push_str("</svg></figure>");
    svg
}
