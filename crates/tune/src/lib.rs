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

mod rounds;
mod sampler;
mod search;
mod tracking;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::contracts::prepare;
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::spec::TuneSpec;
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::sha256_hex;
use kiln_core::{Error, Result};
use kiln_features::FittedTransform;
use kiln_model::device::check_available;
use kiln_model::training::Dataset;

use rounds::TrialCache;
pub use rounds::{PlannedTrial, RoundPlan, params_text};
pub use sampler::{Observation, sample};
use search::TrialPlan;
pub use search::{BestConfig, TUNE_FORMAT, TrialRecord, best_trial, rungs, survives};

/// The step's name and folder.
pub const STEP: &str = "tune";
/// The spec sections tune reads.
pub const SPEC_SECTIONS: &[&str] = &["tune", "train", "label"];
/// The prepare outputs tune reads.
const INPUTS: &[&str] = &[prepare::TRAIN, prepare::TRANSFORM];
/// The file train reads.
pub const BEST: &str = "best.json";
/// Every finished trial, in the step folder.
pub const TRIALS: &str = "trials.json";
/// [`TRIALS`] from a run root.
pub const TRIALS_PATH: &str = "tune/trials.json";

/// A finished search's trials ([`TRIALS`] of a run): the one reader of the file.
#[expect(clippy::disallowed_methods, reason = "tune reads its own trials file")]
pub async fn read_trials(run: &kiln_core::store::ArtifactStore) -> Result<Vec<TrialRecord>> {
    run.get_json(TRIALS_PATH).await
}

/// The step with its cache key: prepare's outputs and the tune and train sections.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let prepare = ctx.completed_step("prepare", STEP).await?;
    let mut inputs = Vec::new();
    for name in INPUTS {
        inputs.push(
            ctx.input(format!("prepare/{name}"), &prepare.object(name))
                .await?,
        );
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The search's cache key and folder.
fn cache_of(ctx: &StepContext, step: &Step) -> TrialCache {
    let key_text =
        serde_json::to_string(&(&step.key.spec_fingerprint, &step.key.inputs)).unwrap_or_default();
    TrialCache {
        dir: ctx.run.child("tune/trials"),
        key: sha256_hex(key_text.as_bytes())[..16].to_string(),
    }
}

fn tune_section(ctx: &StepContext) -> Result<TuneSpec> {
    ctx.spec
        .spec
        .tune
        .clone()
        .ok_or_else(|| Error::usage("tune: the spec has no `tune:` section (nothing to search)"))
}

/// The tune step, for the driver. A spec without a `tune:` section skips it.
pub struct Tune;

impl PipelineStep for Tune {
    fn name(&self) -> &'static str {
        STEP
    }

    fn skipped(&self, spec: &kiln_core::PipelineSpec) -> Option<&'static str> {
        spec.tune.is_none().then_some("no search")
    }

    fn preflight(&self, ctx: &StepContext, control: &Control) -> Result<()> {
        tune_section(ctx)?;
        check_available(control.device)
    }

    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(plan(ctx))
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(execute(ctx, control, step))
    }

    fn tracked<'a>(
        &'a self,
        ctx: &'a StepContext,
        outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(tracking::tracked(ctx, outcome))
    }
}

/// Runs a planned search (or takes it from the cache).
async fn execute(ctx: &StepContext, options: &Control, step: Step) -> Result<StepOutcome> {
    let tune = tune_section(ctx)?;
    let cache = cache_of(ctx, &step);
    step.run(|writer| search(ctx, options, writer, tune, cache))
        .await
}

/// The next round for the Argo fan-out: its unfinished trials, or none when the search
/// is done (then the `tune` step itself only collects the kept trials).
pub async fn plan_next_round(ctx: &StepContext) -> Result<RoundPlan> {
    let tune = tune_section(ctx)?;
    let step = plan(ctx).await?;
    let cache = cache_of(ctx, &step);
    let position = rounds::advance(&tune, &ctx.spec.spec.train, &cache, Vec::new(), 0).await?;
    Ok(RoundPlan::of(&tune, &position))
}

/// Runs one trial of the round the search stands at (an Argo trial pod) and keeps it
/// in the cache. `expected` is the plan's parameters for it, checked before training.
/// A trial already kept is not run again.
pub async fn run_one_trial(
    ctx: &StepContext,
    options: &Control,
    index: usize,
    expected: Option<&str>,
) -> Result<TrialRecord> {
    let tune = tune_section(ctx)?;
    if index >= tune.trials {
        return Err(Error::usage(format!(
            "tune: --trial {index} is out of range (tune.trials is {})",
            tune.trials
        )));
    }
    check_available(options.device)?;
    let step = plan(ctx).await?;
    let cache = cache_of(ctx, &step);
    let base = &ctx.spec.spec.train;
    let wanted_round = index / tune.parallelism;
    let position = rounds::advance(&tune, base, &cache, Vec::new(), 0).await?;
    if position.round < wanted_round {
        return Err(Error::usage(format!(
            "tune: trial {index} is in round {wanted_round}, but round {} has unfinished \
             trials; run those first",
            position.round
        )));
    }
    let Some(trial) = position.todo.iter().find(|p| p.index == index).cloned() else {
        // Kept already (a retried pod): the kept record is the result.
        let kept = position.finished.into_iter().find(|t| t.index == index);
        return kept.ok_or_else(|| Error::Invalid(format!("tune: trial {index} is not kept")));
    };
    if let Some(expected) = expected {
        rounds::check_expected(&trial, expected)?;
    }
    let data = TrialData::load(ctx).await?;
    let earlier = search::rung_values(&tune, &position.finished, position.round);
    let mut records = run_round(&tune, &data, vec![trial], earlier, options).await?;
    let record = records
        .pop()
        .unwrap_or_else(|| Err(Error::Invalid("tune: the trial returned nothing".into())))?;
    keep(&cache, &record).await?;
    Ok(record)
}

/// Keeps a finished trial in the cache (at once, so a kill loses nothing) and logs it.
async fn keep(cache: &TrialCache, record: &TrialRecord) -> Result<()> {
    cache.put(record).await?;
    tracing::info!(
        trial = record.index,
        value = record.value,
        epochs = record.epochs_run,
        pruned = record.pruned,
        seconds = record.seconds,
        "trial kept"
    );
    Ok(())
}

/// What every trial reads: the fitted transform and train's rows.
struct TrialData {
    transform: Arc<FittedTransform>,
    dataset: Arc<Dataset>,
}

impl TrialData {
    async fn load(ctx: &StepContext) -> Result<TrialData> {
        let prepare = ctx.run.child(prepare::STEP);
        let transform = Arc::new(FittedTransform::from_json(
            &prepare.get(prepare::TRANSFORM).await?,
            &prepare.uri_of(prepare::TRANSFORM),
        )?);
        let dataset = Arc::new(
            Dataset::load(
                &prepare.object(prepare::TRAIN),
                &transform,
                &ctx.spec.spec.label.column,
            )
            .await?,
        );
        Ok(TrialData { transform, dataset })
    }
}

/// Trains `plans` on the blocking pool, one thread each; a result per plan, in order.
async fn run_round(
    tune: &TuneSpec,
    data: &TrialData,
    plans: Vec<TrialPlan>,
    rung_values: BTreeMap<usize, Vec<f64>>,
    options: &Control,
) -> Result<Vec<Result<TrialRecord>>> {
    let (tune, dataset, transform) = (tune.clone(), data.dataset.clone(), data.transform.clone());
    let (device, stop) = (options.device, options.stop.clone());
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let handles: Vec<_> = plans
                .iter()
                .map(|plan| {
                    let (tune, dataset, transform) = (&tune, &dataset, &transform);
                    let (rung_values, stop) = (&rung_values, &stop);
                    scope.spawn(move || {
                        search::run_trial(tune, plan, dataset, transform, rung_values, device, stop)
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
    .map_err(|e| Error::Invalid(format!("tune: a trial thread failed: {e}")))
}

async fn search(
    ctx: &StepContext,
    options: &Control,
    writer: StepWriter,
    tune: TuneSpec,
    cache: TrialCache,
) -> Result<(StepWriter, serde_json::Value)> {
    let base = &ctx.spec.spec.train;
    let data = TrialData::load(ctx).await?;
    let started = std::time::Instant::now();
    let bar = kiln_core::progress::Progress::start(Some(tune.trials as u64), "trials");
    let mut reused = 0usize;
    let mut position = rounds::advance(&tune, base, &cache, Vec::new(), 0).await?;
    while !position.todo.is_empty() {
        reused += position.reused;
        bar.set_position(position.finished.len() as u64);
        let round = position.round;
        let earlier = search::rung_values(&tune, &position.finished, round);
        let results = run_round(&tune, &data, position.todo, earlier, options).await?;
        let mut finished = position.finished;
        // Keep every trial that finished before reporting the first error.
        let mut first_error = None;
        for result in results {
            match result {
                Ok(record) => {
                    keep(&cache, &record).await?;
                    bar.inc(1);
                    finished.push(record);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            bar.finish();
            return Err(e);
        }
        position = rounds::advance(&tune, base, &cache, finished, round + 1).await?;
    }
    reused += position.reused;
    bar.finish();
    let mut finished = position.finished;
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
    writer.put_json(TRIALS, &finished).await?;
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
