//! The report's tune section: the search's trials (typed, from `tune/trials.json` and
//! `tune/best.json`), a plot of the metric by trial, a parallel-coordinates plot of the
//! parameters against the metric, and the chosen configuration.

use kiln_core::Result;
use kiln_core::spec::BestConfig;
use kiln_core::store::ArtifactStore;
use kiln_tune::TrialRecord;

use super::{esc, table};

/// The section's HTML, or nothing when the run has no search; an unreadable
/// `best.json` or `trials.json` is an error naming the file, not a missing section.
pub async fn section(run: &ArtifactStore) -> Result<String> {
    let Some(best) = super::load::<BestConfig>(run).await? else {
        return Ok(String::new());
    };
    let trials: Vec<TrialRecord> = kiln_tune::read_trials(run).await?;
    let metric = best.metric.name();
    let mut out = format!(
        "<h2>Hyperparameter search</h2><p>{} trials, {} pruned; best: trial {} with {metric} {:.4} (on train's validation rows).</p>",
        trials.len(),
        trials.iter().filter(|t| t.pruned).count(),
        best.trial,
        best.value
    );
    out.push_str(&plot(&trials, best.trial, metric));
    let names: Vec<&String> = best.params.keys().collect();
    out.push_str(&parallel_coordinates(&trials, &names, best.trial, metric));
    let rows: Vec<Vec<String>> = best
        .params
        .iter()
        .map(|(k, v)| vec![esc(k), esc(&v.to_string())])
        .collect();
    out.push_str("<h3>Chosen configuration</h3>");
    out.push_str(&table(&["parameter", "value"], &rows));
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
    Ok(out)
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

/// Where a trial's value sits on a parameter's axis, in [0, 1]: numbers by their range
/// over the trials (log scale when all are positive and span more than 10×), anything
/// else (a choice of lists, strings) by its rank among the distinct values.
fn axis_positions(values: &[Option<&serde_json::Value>]) -> (Vec<Option<f64>>, String, String) {
    let numbers: Vec<f64> = values.iter().flatten().filter_map(|v| v.as_f64()).collect();
    if !numbers.is_empty() && numbers.len() == values.iter().flatten().count() {
        let lo = numbers.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log = lo > 0.0 && hi / lo > 10.0;
        let f = |x: f64| if log { x.ln() } else { x };
        let span = (f(hi) - f(lo)).max(1e-12);
        let positions = values
            .iter()
            .map(|v| v.and_then(|v| v.as_f64()).map(|x| (f(x) - f(lo)) / span))
            .collect();
        let label = |x: f64| format!("{x:.3}");
        return (positions, label(lo), label(hi));
    }
    let mut distinct: Vec<String> = values.iter().flatten().map(|v| v.to_string()).collect();
    distinct.sort();
    distinct.dedup();
    let step = (distinct.len().max(2) - 1) as f64;
    let positions = values
        .iter()
        .map(|v| {
            v.and_then(|v| {
                let text = v.to_string();
                distinct.iter().position(|d| *d == text)
            })
            .map(|i| i as f64 / step)
        })
        .collect();
    let first = distinct.first().cloned().unwrap_or_default();
    let last = distinct.last().cloned().unwrap_or_default();
    (positions, first, last)
}

/// One vertical axis per parameter and one for the metric; each trial a line across
/// them (the best in a second colour, pruned trials dashed), so the ranges that give
/// good values stand out.
fn parallel_coordinates(
    trials: &[TrialRecord],
    names: &[&String],
    best: usize,
    metric: &str,
) -> String {
    let (w, h, pad, top) = (640.0, 280.0, 60.0, 40.0);
    let axes = names.len() + 1;
    let x = |a: usize| pad + (w - 2.0 * pad) * a as f64 / (axes.max(2) - 1) as f64;
    let y = |p: f64| h - pad + (top - (h - pad)) * p;
    let mut columns: Vec<(String, Vec<Option<f64>>, String, String)> = names
        .iter()
        .map(|n| {
            let values: Vec<Option<&serde_json::Value>> =
                trials.iter().map(|t| t.params.get(*n)).collect();
            let (positions, lo, hi) = axis_positions(&values);
            let name = n.trim_start_matches("train.").to_string();
            (name, positions, lo, hi)
        })
        .collect();
    let metric_values: Vec<serde_json::Value> =
        trials.iter().map(|t| serde_json::json!(t.value)).collect();
    let (positions, lo, hi) = axis_positions(&metric_values.iter().map(Some).collect::<Vec<_>>());
    columns.push((metric.to_string(), positions, lo, hi));
    let mut svg = format!(
        "<figure><svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' aria-label='parameters and {metric} by trial'>"
    );
    svg.push_str(&format!(
        "<text x='{pad}' y='16' font-size='12'>parameters and {metric}, one line per trial</text>"
    ));
    for (a, (name, _, lo, hi)) in columns.iter().enumerate() {
        let ax = x(a);
        svg.push_str(&format!(
            "<line x1='{ax:.1}' y1='{top}' x2='{ax:.1}' y2='{:.1}' stroke='#999'/>\
             <text x='{ax:.1}' y='{:.1}' font-size='10' text-anchor='middle'>{}</text>\
             <text x='{ax:.1}' y='{:.1}' font-size='9' text-anchor='middle'>{}</text>\
             <text x='{ax:.1}' y='{:.1}' font-size='9' text-anchor='middle'>{}</text>",
            h - pad,
            h - pad + 28.0,
            esc(name),
            h - pad + 14.0,
            esc(lo),
            top - 4.0,
            esc(hi)
        ));
    }
    // The best last, so that it is drawn on top.
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by_key(|&i| trials[i].index == best);
    for i in order {
        let t = &trials[i];
        let points: Vec<String> = columns
            .iter()
            .enumerate()
            .filter_map(|(a, (_, positions, _, _))| {
                positions[i].map(|p| format!("{:.1},{:.1}", x(a), y(p)))
            })
            .collect();
        let (colour, width) = if t.index == best {
            ("#d95f02", 2.5)
        } else {
            ("#1b9e77", 1.0)
        };
        let dash = if t.pruned {
            " stroke-dasharray='4 3'"
        } else {
            ""
        };
        svg.push_str(&format!(
            "<polyline fill='none' stroke='{colour}' stroke-width='{width}' stroke-opacity='0.8'{dash} points='{}'><title>trial {}: {:.4}{}</title></polyline>",
            points.join(" "),
            t.index,
            t.value,
            if t.pruned { " (pruned)" } else { "" }
        ));
    }
    svg.push_str("</svg></figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn trial(index: usize, lr: f64, hidden: serde_json::Value, value: f64) -> TrialRecord {
        let mut params = BTreeMap::new();
        params.insert("train.learning_rate".to_string(), serde_json::json!(lr));
        params.insert("train.hidden".to_string(), hidden);
        TrialRecord {
            format_version: kiln_tune::TUNE_FORMAT,
            index,
            round: index / 2,
            params,
            value,
            best_epoch: 3,
            epochs_run: 4,
            pruned: index == 2,
            history: Vec::new(),
            seconds: 1.0,
        }
    }

    #[test]
    fn parallel_coordinates_draw_one_line_per_trial_across_every_axis() {
        let trials = vec![
            trial(0, 0.001, serde_json::json!([64, 32]), 0.90),
            trial(1, 0.01, serde_json::json!([128, 64]), 0.92),
            trial(2, 0.003, serde_json::json!([64, 32]), 0.85),
        ];
        let (lr, hidden) = (
            "train.learning_rate".to_string(),
            "train.hidden".to_string(),
        );
        let svg = parallel_coordinates(&trials, &[&hidden, &lr], 1, "val_auc");
        assert_eq!(svg.matches("<polyline").count(), 3);
        // Three axes: two parameters and the metric, labelled without the `train.` prefix.
        assert_eq!(svg.matches("<line ").count(), 3);
        assert!(svg.contains(">learning_rate<") && svg.contains(">hidden<"));
        // Each line crosses all three axes; the pruned trial is dashed, the best wide.
        for line in svg.split("<polyline").skip(1) {
            let points = line
                .split("points='")
                .nth(1)
                .unwrap()
                .split('\'')
                .next()
                .unwrap();
            assert_eq!(points.split(' ').count(), 3, "{line}");
        }
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(svg.contains("stroke-width='2.5'"));
        // The learning rate spans 10× exactly: a linear axis from 0.001 to 0.010.
        assert!(svg.contains(">0.001<") && svg.contains(">0.010<"));
        // Lists are ranked: [128,64] sorts before [64,32] as text.
        let (positions, first, last) = axis_positions(&[
            Some(&serde_json::json!([64, 32])),
            Some(&serde_json::json!([128, 64])),
        ]);
        assert_eq!(positions, [Some(1.0), Some(0.0)]);
        assert_eq!((first.as_str(), last.as_str()), ("[128,64]", "[64,32]"));
    }
}
