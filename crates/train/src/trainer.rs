//! The training loop, generic over burn's autodiff backend (ndarray on CPU, CUDA on GPU).
//!
//! Every random choice is a function of (seed, epoch, batch): the shuffle of an epoch
//! and a reseed of the backend before each batch (dropout). So the only state to save
//! is the weights, the optimiser's moments and the position — and a run resumed from a
//! checkpoint, even one taken mid-epoch, ends with the same weights as one that was
//! never interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use kiln_core::metrics::{log_loss, roc_auc};
use kiln_core::spec::{ClassWeight, TrainSpec};
use kiln_core::transform::FeatureMatrix;
use kiln_core::{Error, Result};
use kiln_model::bundle::{decode_model, encode_model, predict_matrix};
use kiln_model::{ClassifierConfig, FeatureLayout};

use crate::checkpoint::{Best, Checkpoint, CheckpointStore, EpochRecord, Progress};
use crate::schedule::{derive_seed, epoch_order, learning_rate};

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
    pub resumed_from: Option<u64>,
}

/// Blocks on the object store from the training thread.
pub struct Io<'a> {
    pub runtime: tokio::runtime::Handle,
    pub checkpoints: &'a CheckpointStore,
}

/// Trains with early stopping; saves checkpoints every `checkpoint_every` epochs and
/// when `stop` is set (SIGTERM), in which case it returns [`Error::Interrupted`].
pub fn fit<B: AutodiffBackend>(
    spec: &TrainSpec,
    config: &ClassifierConfig,
    data: &TrainData<'_>,
    device: &B::Device,
    io: &Io<'_>,
    stop: &AtomicBool,
) -> Result<TrainResult> {
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    B::seed(device, spec.seed);
    let mut model = config.init::<B>(device);
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(spec.weight_decay as f32)
        .init::<B, kiln_model::Classifier<B>>();
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
    if let Some(checkpoint) = io.runtime.block_on(io.checkpoints.latest())? {
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
    let save = |model: &kiln_model::Classifier<B>,
                optimizer: &_,
                progress: &Progress,
                best: &Option<Vec<u8>>|
     -> Result<()> {
        let optimizer = recorder
            .record(
                Optimizer::<kiln_model::Classifier<B>, B>::to_record(optimizer),
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
    while progress.epoch < spec.epochs {
        let epoch = progress.epoch;
        let started = Instant::now();
        let lr = learning_rate(spec.learning_rate, &spec.lr_schedule, epoch, spec.epochs);
        let order = epoch_order(&data.train_rows, spec.seed, epoch);
        let bar = kiln_core::runtime::progress_bar(
            Some(batches_per_epoch as u64),
            &format!("epoch {}", epoch + 1),
        );
        bar.set_position(progress.batch as u64);
        for (b, rows) in order
            .chunks(spec.batch_size)
            .enumerate()
            .skip(progress.batch)
        {
            if stop.load(Ordering::SeqCst) {
                progress.batch = b;
                bar.finish_and_clear();
                save(&model, &optimizer, &progress, &best_model)?;
                return Err(Error::Interrupted(format!(
                    "checkpoint saved at epoch {} batch {b} in {}; run the step again to resume",
                    epoch + 1,
                    io.checkpoints.dir.uri()
                )));
            }
            B::seed(device, derive_seed(spec.seed, epoch, b));
            let (dense, codes) = data.layout.tensors::<B>(data.features, rows, device);
            let targets: Vec<f32> = rows.iter().map(|&r| f32::from(data.labels[r])).collect();
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
            let y = Tensor::<B, 1>::from_data(TensorData::new(targets, [rows.len()]), device);
            let w = Tensor::<B, 1>::from_data(TensorData::new(weights, [rows.len()]), device);
            let logits = model.forward(dense, codes);
            // BCE with logits, stable form: max(z, 0) − z·y + log(1 + e^−|z|).
            let per_row = logits.clone().clamp_min(0.0) - logits.clone() * y
                + logits.abs().neg().exp().log1p();
            let loss = (per_row * w).mean();
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(Error::Invalid(format!(
                    "training diverged at epoch {} batch {b} (loss {value}); lower train.learning_rate",
                    epoch + 1
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            progress.train_loss_sum += value;
            progress.train_loss_batches += 1;
            progress.global_step += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();

        let inference = model.valid();
        let probabilities = predict_matrix(&inference, &data.layout, &data.validation, device)?;
        let val_loss = log_loss(&probabilities, &data.validation_labels);
        let val_auc = roc_auc(&probabilities, &data.validation_labels);
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
        resumed_from,
    })
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
