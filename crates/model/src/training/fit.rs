//! The training loop, generic over burn's autodiff backend (ndarray on CPU, CUDA on GPU).
//!
//! Every random choice is a function of (seed, epoch, batch): the shuffle of an epoch
//! and a reseed of the backend before each batch (dropout). So the only state to save
//! is the weights, the optimiser's moments and the position — and a run resumed from a
//! checkpoint, even one taken mid-epoch, ends with the same weights as one that was
//! never interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::bundle::{decode_model, encode_model, predict_matrix_threads};
use crate::{Classifier, ClassifierConfig, FeatureLayout};
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use kiln_core::spec::{ClassWeight, TrainSpec};
use kiln_core::split::SplitMix64;
use kiln_core::{Error, Result};
use kiln_features::FeatureMatrix;
use kiln_stats::metrics::{log_loss, roc_auc};

use super::checkpoint::{Best, Checkpoint, CheckpointStore, EpochRecord, Progress};
use super::schedule::{derive_seed, epoch_order, learning_rate};

/// What training needs, backend-free.
pub struct TrainData<'a> {
    pub features: &'a FeatureMatrix,
    pub labels: &'a [u8],
    pub train_rows: Vec<usize>,
    pub validation: FeatureMatrix,
    pub validation_labels: Vec<u8>,
    pub layout: FeatureLayout,
}

/// The outcome: the best model (encoded) and how training went.
pub struct TrainResult {
    pub best_model: Vec<u8>,
    pub best: Best,
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// The epoch hook asked to stop (a pruned trial).
    pub pruned: bool,
    pub resumed_from: Option<u64>,
}

/// Blocks on the object store from the training thread.
pub struct Io<'a> {
    pub runtime: tokio::runtime::Handle,
    pub checkpoints: &'a CheckpointStore,
}

/// What may stop a training early, besides patience.
pub struct Control<'a> {
    /// Set by a SIGTERM handler: checkpoint and stop with [`Error::Interrupted`].
    pub stop: &'a AtomicBool,
    /// Called after every epoch; `false` ends training there (the result keeps the
    /// best epoch so far and says `pruned`).
    pub on_epoch: Option<&'a (dyn Fn(&EpochRecord) -> bool + Sync)>,
}

/// Trains with early stopping; with `io`, saves checkpoints every `checkpoint_every`
/// epochs and when `stop` is set (SIGTERM), in which case it returns
/// [`Error::Interrupted`]. Without `io` (a tuning trial) nothing is saved.
pub fn fit<B: AutodiffBackend>(
    spec: &TrainSpec,
    config: &ClassifierConfig,
    data: &TrainData<'_>,
    device: &B::Device,
    io: Option<&Io<'_>>,
    control: &Control<'_>,
) -> Result<TrainResult> {
    let stop = control.stop;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let mut model = seeded_init::<B>(config, spec.seed, device);
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(spec.weight_decay as f32)
        .init::<B, crate::Classifier<B>>();
    let mut progress = Progress {
        epoch: 0,
        batch: 0,
        global_step: 0,
        train_loss_sum: 0.0,
        train_loss_batches: 0,
        best: None,
        stale_epochs: 0,
        history: Vec::new(),
    };
    let mut best_model: Option<Vec<u8>> = None;
    let mut resumed_from = None;
    let latest = match io {
        Some(io) => io.runtime.block_on(io.checkpoints.latest())?,
        None => None,
    };
    if let Some(checkpoint) = latest {
        model = decode_model::<B>(&checkpoint.model, config, device, "checkpoint model")?;
        let record = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            recorder.load(checkpoint.optimizer.clone(), device)
        }))
        .map_err(|_| Error::Invalid("checkpoint optimizer state is corrupt".into()))?
        .map_err(|e| Error::Invalid(format!("checkpoint optimizer state: {e}")))?;
        optimizer = optimizer.load_record(record);
        best_model = checkpoint.best_model;
        resumed_from = Some(checkpoint.progress.global_step);
        tracing::info!(
            epoch = checkpoint.progress.epoch,
            batch = checkpoint.progress.batch,
            "resuming from checkpoint"
        );
        progress = checkpoint.progress;
    }

    let (positive_weight, negative_weight) =
        class_weights(&spec.class_weight, data.labels, &data.train_rows);
    let batches_per_epoch = data.train_rows.len().div_ceil(spec.batch_size);
    // Saves a checkpoint of the current state (weights, optimizer, position, best).
    let save = |model: &crate::Classifier<B>,
                optimizer: &_,
                progress: &Progress,
                best: &Option<Vec<u8>>|
     -> Result<()> {
        let Some(io) = io else { return Ok(()) };
        let optimizer = recorder
            .record(
                Optimizer::<crate::Classifier<B>, B>::to_record(optimizer),
                (),
            )
            .map_err(|e| Error::Invalid(format!("encoding the optimizer: {e}")))?;
        let checkpoint = Checkpoint {
            progress: progress.clone(),
            model: encode_model(model)?,
            optimizer,
            best_model: best.clone(),
        };
        io.runtime.block_on(io.checkpoints.save(&checkpoint))
    };

    let mut stopped_early = false;
    let mut pruned = false;
    while progress.epoch < spec.epochs {
        let epoch = progress.epoch;
        let started = Instant::now();
        let lr = learning_rate(spec.learning_rate, &spec.lr_schedule, epoch, spec.epochs);
        let order = epoch_order(&data.train_rows, spec.seed, epoch);
        let bar = kiln_core::progress::Progress::start(
            Some(batches_per_epoch as u64),
            &format!("epoch {}", epoch + 1),
        );
        bar.set_position(progress.batch as u64);
        let (mut in_steps, mut in_optimizer) = (0.0f64, 0.0f64);
        for (b, rows) in order
            .chunks(spec.batch_size)
            .enumerate()
            .skip(progress.batch)
        {
            if stop.load(Ordering::SeqCst) {
                progress.batch = b;
                bar.finish();
                save(&model, &optimizer, &progress, &best_model)?;
                return Err(Error::Interrupted(match io {
                    Some(io) => format!(
                        "checkpoint saved at epoch {} batch {b} in {}; run the step again to resume",
                        epoch + 1,
                        io.checkpoints.dir.uri()
                    ),
                    None => format!("stopped at epoch {} batch {b}", epoch + 1),
                }));
            }
            let batch_seed = derive_seed(spec.seed, epoch, b);
            let weights = (positive_weight, negative_weight);
            let timer = Instant::now();
            let (value, grads) =
                sharded_step(&model, data, rows, spec.shards, batch_seed, weights, device);
            in_steps += timer.elapsed().as_secs_f64();
            if !value.is_finite() {
                return Err(Error::Invalid(format!(
                    "training diverged at epoch {} batch {b} (loss {value}); lower train.learning_rate",
                    epoch + 1
                )));
            }
            let timer = Instant::now();
            model = optimizer.step(lr, model, grads);
            in_optimizer += timer.elapsed().as_secs_f64();
            progress.train_loss_sum += value;
            progress.train_loss_batches += 1;
            progress.global_step += 1;
            bar.inc(1);
        }
        bar.finish();

        let timer = Instant::now();
        let inference = model.valid();
        let probabilities = predict_matrix_threads(
            &inference,
            &data.layout,
            &data.validation,
            device,
            spec.shards,
        )?;
        let val_loss = log_loss(&probabilities, &data.validation_labels);
        let val_auc = roc_auc(&probabilities, &data.validation_labels);
        let in_validation = timer.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: progress.train_loss_sum / progress.train_loss_batches.max(1) as f64,
            val_loss,
            val_auc,
            learning_rate: lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            epoch = record.epoch,
            train_loss = record.train_loss,
            val_loss = record.val_loss,
            val_auc = record.val_auc,
            learning_rate = record.learning_rate,
            seconds = record.seconds,
            "epoch"
        );
        tracing::debug!(
            epoch = record.epoch,
            forward_backward = in_steps,
            optimizer = in_optimizer,
            validation = in_validation,
            "epoch phases (seconds)"
        );
        let keep_going = control.on_epoch.is_none_or(|hook| hook(&record));
        progress.history.push(record);
        let improved = progress
            .best
            .as_ref()
            .is_none_or(|b| val_loss < b.val_loss - 1e-6);
        if improved {
            progress.best = Some(Best {
                epoch: epoch + 1,
                val_loss,
                val_auc,
            });
            best_model = Some(encode_model(&model)?);
            progress.stale_epochs = 0;
        } else {
            progress.stale_epochs += 1;
        }
        progress.epoch += 1;
        progress.batch = 0;
        progress.train_loss_sum = 0.0;
        progress.train_loss_batches = 0;
        if !keep_going {
            pruned = true;
            tracing::debug!(epoch = epoch + 1, "stopped by the epoch hook (pruned)");
            break;
        }
        if progress.stale_epochs >= spec.patience {
            stopped_early = true;
            tracing::info!(
                epoch = epoch + 1,
                patience = spec.patience,
                "early stop: validation loss stopped improving"
            );
            break;
        }
        if progress.epoch.is_multiple_of(spec.checkpoint_every) && progress.epoch < spec.epochs {
            save(&model, &optimizer, &progress, &best_model)?;
        }
    }
    let best = progress
        .best
        .clone()
        .ok_or_else(|| Error::Invalid("no epoch completed".into()))?;
    Ok(TrainResult {
        best_model: best_model.ok_or_else(|| Error::Invalid("no best model kept".into()))?,
        best,
        history: progress.history,
        stopped_early,
        pruned,
        resumed_from,
    })
}

/// The backend's RNG is one per process: trainings on several threads (tune's parallel
/// trials) take turns seeding it and drawing their initial weights, so each model's
/// weights depend on its seed alone. Training itself draws nothing from it (dropout
/// masks come from [`derive_seed`]).
fn seeded_init<B: AutodiffBackend>(
    config: &ClassifierConfig,
    seed: u64,
    device: &B::Device,
) -> Classifier<B> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = INIT.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    config.init::<B>(device)
}

/// One optimisation step's loss and gradients over `rows`, computed in `shards`
/// contiguous parts, each on its own thread, and summed in shard order. Each part's
/// loss is its rows' weighted sum over the whole batch's size, so the sum is the
/// batch's mean loss and its gradient. The result depends on the number of shards
/// (float sums in another grouping round differently), never on thread timing.
fn sharded_step<B: AutodiffBackend>(
    model: &Classifier<B>,
    data: &TrainData<'_>,
    rows: &[usize],
    shards: usize,
    batch_seed: u64,
    (positive_weight, negative_weight): (f32, f32),
    device: &B::Device,
) -> (f64, GradientsParams) {
    let total = rows.len() as f32;
    let shard = |model: &Classifier<B>, part: &[usize], index: usize| -> (f64, GradientsParams) {
        let mut input = data.layout.tensors::<B>(data.features, part, device);
        input.dropout_seed = Some(SplitMix64::new(batch_seed ^ index as u64).next_u64());
        let targets: Vec<f32> = part.iter().map(|&r| f32::from(data.labels[r])).collect();
        let weights: Vec<f32> = targets
            .iter()
            .map(|&y| {
                if y == 1.0 {
                    positive_weight
                } else {
                    negative_weight
                }
            })
            .collect();
        let y = Tensor::<B, 1>::from_data(TensorData::new(targets, [part.len()]), device);
        let w = Tensor::<B, 1>::from_data(TensorData::new(weights, [part.len()]), device);
        let logits = model.forward(input);
        // BCE with logits, stable form: max(z, 0) − z·y + log(1 + e^−|z|).
        let per_row =
            logits.clone().clamp_min(0.0) - logits.clone() * y + logits.abs().neg().exp().log1p();
        let loss = (per_row * w).sum() / total;
        let value: f64 = loss.clone().into_scalar().elem();
        (value, GradientsParams::from_grads(loss.backward(), model))
    };
    let size = rows.len().div_ceil(shards.max(1)).max(1);
    let parts: Vec<&[usize]> = rows.chunks(size).collect();
    let mut accumulator = GradientsAccumulator::<Classifier<B>>::new();
    let mut value = 0.0;
    let mut add = |(loss, grads): (f64, GradientsParams)| {
        value += loss;
        accumulator.accumulate(model, grads);
    };
    if parts.len() == 1 {
        add(shard(model, parts[0], 0));
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, part)| {
                    let shard = &shard;
                    let local = model.clone();
                    scope.spawn(move || {
                        // Each thread's copy has its own autodiff graph (backward passes
                        // over one shared graph from two threads deadlock in burn); the
                        // parameter ids, which the gradients are keyed by, stay the same.
                        let local = local.fork(device);
                        shard(&local, part, i)
                    })
                })
                .collect();
            // The first part on this thread with the model itself, summed while the
            // others still run; the rest in shard order.
            add(shard(model, parts[0], 0));
            for handle in handles {
                add(handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
    }
    (value, accumulator.grads())
}

/// Loss weights (positive, negative) of the train rows.
fn class_weights(weight: &ClassWeight, labels: &[u8], rows: &[usize]) -> (f32, f32) {
    match weight {
        ClassWeight::None => (1.0, 1.0),
        ClassWeight::Positive(w) => (*w as f32, 1.0),
        ClassWeight::Balanced => {
            let n = rows.len() as f64;
            let positives = rows.iter().filter(|&&r| labels[r] == 1).count().max(1) as f64;
            let negatives = (n - positives).max(1.0);
            (
                (n / (2.0 * positives)) as f32,
                (n / (2.0 * negatives)) as f32,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_follow_scikit_learn() {
        // sklearn compute_class_weight('balanced', classes=[0,1], y=[0,0,0,1]) == [0.667, 2.0]
        let (p, n) = class_weights(&ClassWeight::Balanced, &[0, 0, 0, 1], &[0, 1, 2, 3]);
        assert!((p - 2.0).abs() < 1e-6 && (n - 4.0 / 6.0).abs() < 1e-6);
        assert_eq!(class_weights(&ClassWeight::None, &[1], &[0]), (1.0, 1.0));
    }
}
