//! # kiln-tune
//!
//! Hyperparameter search over the spec's `train` section, between validate and train.
//! Writes under `<run>/tune/`:
//!
//! | file | what |
//! | --- | --- |
//! | `trials/<index>-<key>.json` | each finished trial, written as it finishes (the cache) |
//! | `trials.json` | every trial: parameters, metric, epochs, pruned, history |
//! | `best.json` | the best trial's parameters ([`BestConfig`]); train applies them |
//! | `manifest.json` | written last |
//!
//! Trials train through the same code as the train step ([`kiln_model::training`]),
//! on train's validation rows, never the test split. A trial's file is keyed by the
//! step's inputs, the spec and its index, so a search killed midway (a spot node, ^C)
//! and run again repeats only the trials that had not finished.

mod sampler;
mod search;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kiln_core::manifest::InputRecord;
use kiln_core::runtime::StepContext;
use kiln_core::spec::TuneSpec;
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::{ArtifactStore, sha256_hex};
use kiln_core::transform::FittedTransform;
use kiln_core::{Error, Result};
use kiln_model::device::{DeviceKind, check_available};
use kiln_model::training::Dataset;

pub use sampler::{Observation, sample};
pub use search::{BestConfig, TUNE_FORMAT, TrialRecord, best_trial, rungs, survives};

/// The step's name and folder.
pub const STEP: &str = "tune";
/// The spec sections tune reads.
pub const SPEC_SECTIONS: &[&str] = &["tune", "train", "label"];
/// The prepare outputs tune reads.
const INPUTS: &[&str] = &["train.parquet", "transform.json"];
/// The file train reads.
pub const BEST: &str = "best.json";

/// How to run the search.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub device: DeviceKind,
    /// Set by a SIGTERM handler: finished trials are kept, the step exits 75.
    pub stop: Arc<AtomicBool>,
}

/// The step with its cache key: prepare's outputs and the tune and train sections.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let prepare = ctx.completed_step("prepare", STEP).await?;
    let mut inputs = Vec::new();
    for name in INPUTS {
        inputs.push(InputRecord::of(format!("prepare/{name}"), &prepare.object(name)).await?);
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs))
}

/// Runs the search (or takes it from the cache).
pub async fn run(ctx: &StepContext, options: &TuneOptions) -> Result<StepOutcome> {
    let tune =
        ctx.spec.spec.tune.clone().ok_or_else(|| {
            Error::usage("tune: the spec has no `tune:` section (nothing to search)")
        })?;
    check_available(options.device)?;
    let step = plan(ctx).await?;
    let key_text =
        serde_json::to_string(&(&step.key.spec_fingerprint, &step.key.inputs)).unwrap_or_default();
    let key = sha256_hex(key_text.as_bytes())[..16].to_string();
    let trials = ctx.run.child("tune/trials");
    let outcome = step
        .run(|writer| search(ctx, options, writer, tune, trials, key))
        .await?;
    kiln_mlflow::track_step(ctx, STEP).await?;
    Ok(outcome)
}

async fn search(
    ctx: &StepContext,
    options: &TuneOptions,
    writer: StepWriter,
    tune: TuneSpec,
    trials_dir: ArtifactStore,
    key: String,
) -> Result<(StepWriter, serde_json::Value)> {
    let spec = &ctx.spec.spec;
    let prepare = ctx.run.child("prepare");
    let transform = Arc::new(FittedTransform::from_json(
        &prepare.get("transform.json").await?,
        &prepare.uri_of("transform.json"),
    )?);
    let dataset = Arc::new(
        Dataset::load(
            &prepare.object("train.parquet"),
            &transform,
            &spec.label.column,
        )
        .await?,
    );
    let started = std::time::Instant::now();
    let mut finished: Vec<TrialRecord> = Vec::new();
    let mut reused = 0usize;
    let rounds = tune.trials.div_ceil(tune.parallelism);
    let bar = kiln_core::runtime::progress_bar(Some(tune.trials as u64), "trials");
    for round in 0..rounds {
        let plans = search::plan_round(&tune, &spec.train, round, &finished)?;
        let mut todo = Vec::new();
        for plan in plans {
            let name = format!("{:04}-{key}.json", plan.index);
            if trials_dir.exists(&name).await? {
                let record: TrialRecord = trials_dir.get_json(&name).await?;
                if record.format_version == TUNE_FORMAT && record.params == plan.params {
                    reused += 1;
                    bar.inc(1);
                    finished.push(record);
                    continue;
                }
            }
            todo.push((name, plan));
        }
        if todo.is_empty() {
            continue;
        }
        let rung_values = search::rung_values(&tune, &finished);
        let (tune_c, dataset_c, transform_c) = (tune.clone(), dataset.clone(), transform.clone());
        let (device, stop) = (options.device, options.stop.clone());
        let plans: Vec<_> = todo.iter().map(|(_, p)| p).cloned().collect();
        // CPU work on the blocking pool, one thread per trial of the round.
        let results = tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let handles: Vec<_> = plans
                    .iter()
                    .map(|plan| {
                        let (tune, dataset, transform) = (&tune_c, &dataset_c, &transform_c);
                        let (rung_values, stop) = (&rung_values, &stop);
                        scope.spawn(move || {
                            search::run_trial(
                                tune,
                                plan,
                                dataset,
                                transform,
                                rung_values,
                                device,
                                stop,
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect::<Vec<Result<TrialRecord>>>()
            })
        })
        .await
        .map_err(|e| Error::Invalid(format!("tune: a trial thread failed: {e}")))?;
        // Keep every trial that finished before reporting the first error.
        let mut first_error = None;
        for ((name, _), result) in todo.iter().zip(results) {
            match result {
                Ok(record) => {
                    trials_dir.put_json(name, &record).await?;
                    tracing::info!(
                        trial = record.index,
                        value = record.value,
                        epochs = record.epochs_run,
                        pruned = record.pruned,
                        seconds = record.seconds,
                        "trial"
                    );
                    bar.inc(1);
                    finished.push(record);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            bar.finish_and_clear();
            return Err(e);
        }
    }
    bar.finish_and_clear();
    finished.sort_by_key(|t| t.index);
    let best = best_trial(tune.metric, &finished)
        .ok_or_else(|| Error::usage("tune: every trial was pruned; lower tune.pruning"))?;
    let config = BestConfig {
        format_version: TUNE_FORMAT,
        metric: tune.metric,
        value: best.value,
        trial: best.index,
        params: best.params.clone(),
    };
    writer.put_json("trials.json", &finished).await?;
    writer.put_json(BEST, &config).await?;
    let pruned = finished.iter().filter(|t| t.pruned).count();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        trials = finished.len(),
        reused,
        pruned,
        best_trial = best.index,
        best_value = best.value,
        seconds,
        "tuned"
    );
    let summary = serde_json::json!({
        "trials": finished.len(),
        "reused_trials": reused,
        "pruned_trials": pruned,
        "metric": tune.metric.name(),
        "best_trial": best.index,
        "best_value": best.value,
        "best_params": best.params,
        "seconds": seconds,
    });
    Ok((writer, summary))
}
