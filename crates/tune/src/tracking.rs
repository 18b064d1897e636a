//! Each trial as a run nested under the pipeline's tracked run (an MLflow child run):
//! its parameters, its per-epoch metric history and its result, what tune says it
//! tracks ([`kiln_core::tracked::Tracked::children`]).

use kiln_core::Result;
use kiln_core::context::StepContext;
use kiln_core::spec::TuneMetric;
use kiln_core::step::StepOutcome;
use kiln_core::store::sha256_hex;
use kiln_core::tracked::{Tracked, TrackedChild, TrackedMetric};

use crate::search::TrialRecord;
use crate::{BestConfig, STEP};

/// The finished search's trials (from `trials.json`) as child runs.
pub(crate) async fn tracked(ctx: &StepContext, outcome: &StepOutcome) -> Result<Tracked> {
    let dir = ctx.run.child(STEP);
    let trials: Vec<TrialRecord> = crate::read_trials(&ctx.run).await?;
    let best: BestConfig = kiln_core::contracts::read(&dir).await?;
    let at = outcome.manifest().finished_at.timestamp_millis();
    Ok(Tracked {
        children: trials
            .iter()
            .map(|t| child_of(t, best.metric, best.trial, at))
            .collect(),
        ..Tracked::default()
    })
}

/// One trial's child run.
fn child_of(trial: &TrialRecord, metric: TuneMetric, best: usize, at: i64) -> TrackedChild {
    let content =
        serde_json::to_vec(&(&trial.params, trial.value, &trial.history)).unwrap_or_default();
    let mut metrics = Vec::new();
    let point = |name: &str, value: f64, step: usize| TrackedMetric {
        name: name.to_string(),
        value,
        step: step as i64,
    };
    for r in &trial.history {
        metrics.push(point("train_loss", r.train_loss, r.epoch));
        metrics.push(point("val_loss", r.val_loss, r.epoch));
        metrics.push(point("learning_rate", r.learning_rate, r.epoch));
        if let Some(auc) = r.val_auc {
            metrics.push(point("val_auc", auc, r.epoch));
        }
    }
    metrics.push(point(&format!("best_{}", metric.name()), trial.value, 0));
    metrics.push(point("best_epoch", trial.best_epoch as f64, 0));
    metrics.push(point("seconds", trial.seconds, 0));
    let params = trial
        .params
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), text)
        })
        .collect();
    let tags = vec![
        ("kiln.step".to_string(), STEP.to_string()),
        ("kiln.tune.trial".to_string(), trial.index.to_string()),
        ("kiln.tune.round".to_string(), trial.round.to_string()),
        ("kiln.tune.pruned".to_string(), trial.pruned.to_string()),
        (
            "kiln.tune.epochs_run".to_string(),
            trial.epochs_run.to_string(),
        ),
        (
            "kiln.tune.best".to_string(),
            (trial.index == best).to_string(),
        ),
    ];
    TrackedChild {
        key: format!(
            "tune/trial-{:04}-{}",
            trial.index,
            &sha256_hex(&content)[..12]
        ),
        name: format!("trial-{:04}", trial.index),
        params,
        metrics,
        tags,
        at,
    }
}
