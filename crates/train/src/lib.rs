//! # kiln-train
//!
//! Trains the Kiln classifier (an MLP from [`kiln_model`]) on prepare's train table,
//! through prepare's fitted transform, and writes under `<run>/train/`:
//!
//! | file | what |
//! | --- | --- |
//! | `model/` | the model bundle ([`kiln_model::bundle`]) |
//! | `history.json` | per-epoch train loss, validation loss and AUC, learning rate, time |
//! | `checkpoints/` | while training: the latest checkpoints (removed on success) |
//! | `manifest.json` | written last |
//!
//! Early stopping watches the loss on a validation part carved from train by a hash of
//! the row id. On SIGTERM the step saves a checkpoint and exits with code 75; run it
//! again and it resumes where it stopped, to the same final weights.

use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::contracts::Artifact;
use kiln_core::contracts::prepare;
use kiln_core::contracts::train::{TrainHistory, TrainSummary};
use kiln_core::driver::{self, PipelineStep};
use kiln_core::manifest::InputRecord;
use kiln_core::spec::{BestConfig, TrainSpec, apply_params};
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::sha256_hex;
use kiln_core::{Error, Result};
use kiln_features::FittedTransform;
use kiln_model::bundle::{BUNDLE_FORMAT, BundleMetadata, BundleParts, TrainingMetrics};
use kiln_model::device::check_available;

pub use kiln_model::training::{Best, EpochRecord};
use kiln_model::training::{CheckpointStore, Control, Dataset, Io};

/// The step's name and folder.
pub const STEP: &str = "train";
/// The spec sections train reads (prepare's outputs are hashed as inputs); the
/// bundle's decision threshold is the spec's `evaluate.threshold`.
pub const SPEC_SECTIONS: &[&str] = &["train", "label", "evaluate.threshold"];
/// With a `tune:` section, the tune output train reads.
const TUNED: &str = "best.json";
/// The prepare outputs train reads.
const INPUTS: &[&str] = &[prepare::TRAIN, prepare::TRANSFORM, prepare::PROFILE];

/// The step with its cache key: prepare's outputs and the train section of the spec.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let prepare = ctx.completed_step("prepare", STEP).await?;
    let mut inputs = Vec::new();
    for name in INPUTS {
        let object = prepare.object(name);
        inputs.push(ctx.input(format!("prepare/{name}"), &object).await?);
    }
    if ctx.spec.spec.tune.is_some() {
        // The tuned configuration is an input: a new search retrains.
        let tune = ctx.completed_step("tune", STEP).await?;
        inputs.push(
            ctx.input(format!("tune/{TUNED}"), &tune.object(TUNED))
                .await?,
        );
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The train step, for the driver.
pub struct Train;

impl PipelineStep for Train {
    fn name(&self) -> &'static str {
        STEP
    }

    fn preflight(&self, _ctx: &StepContext, control: &driver::Control) -> Result<()> {
        check_available(control.device)
    }

    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(plan(ctx))
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        control: &'a driver::Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(execute(ctx, control, step))
    }

    fn tracked<'a>(
        &'a self,
        ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(tracked(ctx))
    }
}

/// The `train` section as params, and the per-epoch history as metric histories (the
/// epoch as step), which replace the summary's best-epoch values of the same names.
async fn tracked(ctx: &StepContext) -> Result<kiln_core::tracked::Tracked> {
    use kiln_core::tracked::{Tracked, TrackedMetric};
    let history: TrainHistory = kiln_core::contracts::read(&ctx.run.child(STEP)).await?;
    let section = serde_json::to_value(&ctx.spec.spec.train)
        .map_err(|e| Error::Invalid(format!("encoding the train section: {e}")))?;
    let mut tracked = Tracked::default()
        .params_from(STEP, &section)
        .artifacts([TrainHistory::FILE]);
    for record in &history.epochs {
        let fields = [
            ("train_loss", Some(record.train_loss)),
            ("val_loss", Some(record.val_loss)),
            ("val_auc", record.val_auc),
            ("learning_rate", Some(record.learning_rate)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                tracked.metrics.push(TrackedMetric {
                    name: name.to_string(),
                    value,
                    step: record.epoch as i64,
                });
            }
        }
    }
    Ok(tracked)
}

/// Trains a planned step (or takes it from the cache).
async fn execute(ctx: &StepContext, options: &driver::Control, step: Step) -> Result<StepOutcome> {
    // Checkpoints belong to one spec + input combination.
    // Where and when an input was stored (its version) is not part of what it is.
    let inputs: Vec<InputRecord> = step
        .key
        .inputs
        .iter()
        .map(InputRecord::unversioned)
        .collect();
    let key_text =
        serde_json::to_string(&(&step.key.spec_fingerprint, &inputs)).unwrap_or_default();
    let checkpoints = CheckpointStore {
        dir: ctx.run.child("train/checkpoints"),
        key: sha256_hex(key_text.as_bytes()),
    };
    let fingerprint = step.key.spec_fingerprint.clone();
    step.run(|writer| train(ctx, options, writer, checkpoints, inputs, fingerprint))
        .await
}

async fn train(
    ctx: &StepContext,
    options: &driver::Control,
    writer: StepWriter,
    checkpoints: CheckpointStore,
    inputs: Vec<InputRecord>,
    spec_fingerprint: String,
) -> Result<(StepWriter, serde_json::Value)> {
    let spec = &ctx.spec.spec;
    let prepare = ctx.run.child(prepare::STEP);
    let transform = FittedTransform::from_json(
        &prepare.get(prepare::TRANSFORM).await?,
        &prepare.uri_of(prepare::TRANSFORM),
    )?;
    let dataset = Dataset::load(
        &prepare.object(prepare::TRAIN),
        &transform,
        &spec.label.column,
    )
    .await?;
    let train_spec = effective_train_spec(ctx).await?;

    let started = std::time::Instant::now();
    // Splitting and training are CPU work: they run on the blocking pool (any runtime
    // flavour), and the checkpoint writes go back to the runtime through the handle.
    let (trained, checkpoints) = {
        let (device, stop) = (options.device, options.stop.clone());
        let (spec, transform) = (train_spec.clone(), transform.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let io = Io {
                runtime,
                checkpoints: &checkpoints,
            };
            let control = Control {
                stop: &stop,
                on_epoch: None,
            };
            let trained = kiln_model::training::plan(&dataset, &transform, &spec).and_then(
                |(data, config)| {
                    let (train_rows, validation_rows) =
                        (data.train_rows.len(), data.validation_labels.len());
                    tracing::info!(
                        train_rows,
                        validation_rows,
                        features = transform.width(),
                        ?device,
                        "training"
                    );
                    let result = kiln_model::training::fit_on(
                        device,
                        &spec,
                        &config,
                        &data,
                        Some(&io),
                        &control,
                    )?;
                    Ok((result, config, train_rows, validation_rows))
                },
            );
            (trained, checkpoints)
        })
        .await
        .map_err(|e| Error::Invalid(format!("the training thread failed: {e}")))?
    };
    let (result, config, train_rows, validation_rows) = trained?;
    let seconds = started.elapsed().as_secs_f64();

    let profiles =
        kiln_stats::profile::SplitProfiles::read(&prepare.object(prepare::PROFILE)).await?;
    let metrics = TrainingMetrics {
        best_epoch: result.best.epoch,
        val_loss: result.best.val_loss,
        val_auc: result.best.val_auc,
        epochs_run: result.history.len(),
        stopped_early: result.stopped_early,
    };
    let metadata = BundleMetadata {
        format_version: BUNDLE_FORMAT,
        kiln_version: kiln_core::manifest::TOOL_VERSION.to_string(),
        created_at: chrono::Utc::now(),
        spec_fingerprint,
        label: spec.label.column.clone(),
        positive_class: spec.label.positive.clone(),
        feature_names: transform.output_names.clone(),
        data: inputs,
        metrics,
        // The threshold evaluate decides with, so a train bundle served as it is
        // decides as evaluate did (register's policy starts from the same value).
        decision_threshold: spec.evaluate.threshold,
        inputs: transform
            .input_columns()
            .into_iter()
            .filter_map(|name| spec.schema.iter().find(|c| c.name == name).cloned())
            .collect(),
        libraries: linked_libraries(),
    };
    let training_config =
        serde_json::to_value(&train_spec).map_err(|e| Error::Invalid(e.to_string()))?;
    BundleParts {
        model: &result.best_model,
        config: &config,
        training_config: &training_config,
        transform: &transform,
        reference_profile: &profiles.train,
        metadata: &metadata,
    }
    .write(&writer, "model")
    .await?;
    writer
        .put_json(
            TrainHistory::FILE,
            &TrainHistory::new(result.history.clone()),
        )
        .await?;
    checkpoints.clear().await?;

    let trained_samples: usize = train_rows * result.history.len();
    let summary = TrainSummary {
        format_version: TrainSummary::FORMAT_VERSION,
        best_epoch: result.best.epoch,
        epochs_run: result.history.len(),
        stopped_early: result.stopped_early,
        val_loss: result.best.val_loss,
        val_auc: result.best.val_auc,
        train_rows,
        validation_rows,
        seconds,
        samples_per_second: trained_samples as f64 / seconds.max(1e-9),
        device: format!("{:?}", options.device).to_lowercase(),
        resumed_from_step: result.resumed_from,
    };
    writer.put_json(TrainSummary::FILE, &summary).await?;
    tracing::info!(
        best_epoch = summary.best_epoch,
        epochs_run = summary.epochs_run,
        val_auc = summary.val_auc,
        seconds = summary.seconds,
        samples_per_second = summary.samples_per_second,
        "trained"
    );
    Ok((
        writer,
        serde_json::to_value(&summary).map_err(|e| Error::Invalid(e.to_string()))?,
    ))
}

/// The spec's train section, with tune's best parameters applied when it has a
/// `tune:` section.
async fn effective_train_spec(ctx: &StepContext) -> Result<TrainSpec> {
    let spec = &ctx.spec.spec;
    if spec.tune.is_none() {
        return Ok(spec.train.clone());
    }
    let tune = ctx.run.child("tune");
    let best: BestConfig = kiln_core::contracts::read(&tune).await?;
    let train = apply_params(&spec.train, &best.params)
        .map_err(|e| Error::usage(format!("{}: {e}", tune.uri_of(TUNED))))?;
    tracing::info!(trial = best.trial, value = best.value, params = ?best.params, "training with the tuned configuration");
    Ok(train)
}

/// The libraries this binary linked, from the workspace's `Cargo.lock` at build time
/// (see `kiln_buildinfo::dependencies`): the ML-BOM's record of what trained a model.
pub fn linked_libraries() -> Vec<kiln_core::contracts::bundle::Library> {
    serde_json::from_str(include_str!(concat!(env!("OUT_DIR"), "/dependencies.json")))
        .unwrap_or_default()
}
