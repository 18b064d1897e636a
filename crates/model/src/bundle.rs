//! The model bundle: one folder that holds everything needed to score a row, and
//! nothing else. `serve` loads exactly this folder.
//!
//! | file | what |
//! | --- | --- |
//! | `model.bin` | the burn record (full precision) |
//! | `model_config.json` | [`ClassifierConfig`], the architecture |
//! | `training_config.json` | the hyperparameters the model was trained with |
//! | `transform.json` | the fitted feature transform from prepare |
//! | `reference_profile.json` | train-split column statistics, the reference for drift |
//! | `metadata.json` | [`BundleMetadata`]: spec fingerprint, data hashes, metrics, threshold |
//! | `decision_policy.json` | registered versions: the [`DecisionPolicy`] (global and group thresholds) |
//!
//! A bundle without `decision_policy.json` (train's output) decides with its metadata's
//! threshold; a registered version carries the policy register wrote, so every reader
//! of the version decides the same way ([`ModelBundle::decide`]).

use std::panic::AssertUnwindSafe;

use arrow::record_batch::RecordBatch;
use burn::module::Module;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use bytes::Bytes;
use kiln_core::decision::{DECISION_POLICY, DecisionPolicy};
use kiln_core::step::StepWriter;
use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use kiln_features::FittedTransform;

use crate::classifier::{Classifier, ClassifierConfig};
use crate::layout::FeatureLayout;

pub use kiln_core::contracts::bundle::{
    BUNDLE_FILES, BUNDLE_FORMAT, BundleMetadata, METADATA, MODEL_CONFIG, MODEL_RECORD,
    REFERENCE_PROFILE, TRAINING_CONFIG, TRANSFORM, TrainingMetrics, bundle_digest,
    bundle_digest_of,
};

/// Serialises a model's parameters.
pub fn encode_model<B: Backend>(model: &Classifier<B>) -> Result<Vec<u8>> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(model.clone().into_record(), ())
        .map_err(|e| Error::Invalid(format!("encoding the model: {e}")))
}

/// Rebuilds a model from its architecture and serialised parameters. Corrupt bytes
/// are an error, never a panic (burn's decoder panics on them, so it is contained).
pub fn decode_model<B: Backend>(
    bytes: &[u8],
    config: &ClassifierConfig,
    device: &B::Device,
    what: &str,
) -> Result<Classifier<B>> {
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        BinBytesRecorder::<FullPrecisionSettings>::default().load(bytes.to_vec(), device)
    }));
    let record = match decoded {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            return Err(Error::Corrupt {
                uri: what.to_string(),
                message: format!("cannot decode the model: {e}"),
            });
        }
        Err(_) => {
            return Err(Error::Corrupt {
                uri: what.to_string(),
                message: "the model record does not decode".into(),
            });
        }
    };
    let model = std::panic::catch_unwind(AssertUnwindSafe(|| {
        config.init::<B>(device).load_record(record)
    }))
    .map_err(|_| Error::Corrupt {
        uri: what.to_string(),
        message: "the model record does not fit its config".into(),
    })?;
    Ok(model)
}

/// Everything written into a bundle folder.
pub struct BundleParts<'a> {
    /// The encoded model ([`encode_model`]).
    pub model: &'a [u8],
    pub config: &'a ClassifierConfig,
    pub training_config: &'a serde_json::Value,
    pub transform: &'a FittedTransform,
    pub reference_profile: &'a kiln_stats::profile::TableProfile,
    pub metadata: &'a BundleMetadata,
}

impl BundleParts<'_> {
    /// Writes the bundle under `prefix` (e.g. `model/`) of a step's outputs.
    pub async fn write(&self, writer: &StepWriter, prefix: &str) -> Result<()> {
        let at = |name: &str| format!("{}/{name}", prefix.trim_end_matches('/'));
        writer
            .put(&at(MODEL_RECORD), Bytes::copy_from_slice(self.model))
            .await?;
        writer.put_json(&at(MODEL_CONFIG), self.config).await?;
        writer
            .put_json(&at(TRAINING_CONFIG), self.training_config)
            .await?;
        writer.put_json(&at(TRANSFORM), self.transform).await?;
        writer
            .put_json(&at(REFERENCE_PROFILE), self.reference_profile)
            .await?;
        // Metadata last: a reader that finds it finds a complete bundle.
        writer.put_json(&at(METADATA), self.metadata).await?;
        Ok(())
    }
}

/// A loaded bundle, ready to score record batches.
pub struct ModelBundle<B: Backend> {
    pub model: Classifier<B>,
    pub config: ClassifierConfig,
    pub transform: FittedTransform,
    pub layout: FeatureLayout,
    pub metadata: BundleMetadata,
    /// How scores become decisions.
    pub policy: DecisionPolicy,
    device: B::Device,
}

impl<B: Backend> ModelBundle<B> {
    /// Loads a bundle folder from any store.
    pub async fn load(dir: &ArtifactStore, device: &B::Device) -> Result<Self> {
        let metadata: BundleMetadata = kiln_core::contracts::read_at(dir, METADATA).await?;
        if metadata.format_version != BUNDLE_FORMAT {
            return Err(Error::Invalid(format!(
                "{}: bundle format {} is not supported (expected {BUNDLE_FORMAT})",
                dir.uri_of(METADATA),
                metadata.format_version
            )));
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the bundle's own model configuration"
        )]
        let config: ClassifierConfig = dir.get_json(MODEL_CONFIG).await?;
        let transform =
            FittedTransform::from_json(&dir.get(TRANSFORM).await?, &dir.uri_of(TRANSFORM))?;
        let embedding_dim = config.embeddings.first().map_or(1, |e| e.dim);
        let (layout, _) = FeatureLayout::of(&transform, embedding_dim, config.periodic.is_some());
        if layout.dense_slots.len() != config.dense_inputs {
            return Err(Error::Corrupt {
                uri: dir.uri().to_string(),
                message: format!(
                    "the transform gives {} dense inputs but the model takes {}",
                    layout.dense_slots.len(),
                    config.dense_inputs
                ),
            });
        }
        let periodic = config.periodic.map_or(0, |p| p.features);
        if layout.periodic_slots.len() != periodic {
            return Err(Error::Corrupt {
                uri: dir.uri().to_string(),
                message: format!(
                    "the transform has {} numeric features but the model embeds {periodic}",
                    layout.periodic_slots.len(),
                ),
            });
        }
        let bytes = dir.get(MODEL_RECORD).await?;
        let model = decode_model(&bytes, &config, device, &dir.uri_of(MODEL_RECORD))?;
        let policy = if dir.exists(DECISION_POLICY).await? {
            DecisionPolicy::from_json(
                &dir.get(DECISION_POLICY).await?,
                &dir.uri_of(DECISION_POLICY),
            )?
        } else {
            DecisionPolicy::global(metadata.decision_threshold)
        };
        Ok(ModelBundle {
            model,
            config,
            transform,
            layout,
            metadata,
            policy,
            device: device.clone(),
        })
    }

    /// The raw columns a row must carry: the transform's inputs, then the policy's
    /// attribute when it is not one of them.
    pub fn input_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self
            .transform
            .input_columns()
            .into_iter()
            .map(str::to_string)
            .collect();
        if let Some(attribute) = self.policy.attribute()
            && !columns.iter().any(|c| c == attribute)
        {
            columns.push(attribute.to_string());
        }
        columns
    }

    /// Decisions for scores of a batch's rows, through the bundle's policy (the batch
    /// must carry the policy's attribute when it has group thresholds).
    pub fn decide(&self, batch: &RecordBatch, scores: &[f64]) -> Result<Vec<u8>> {
        decide_batch(&self.policy, batch, scores)
    }

    /// Probabilities of the positive class for every row of a batch of prepared rows.
    pub fn predict_proba(&self, batch: &RecordBatch) -> Result<Vec<f32>> {
        let matrix = self.transform.apply_batch(batch)?;
        predict_matrix(&self.model, &self.layout, &matrix, &self.device)
    }
}

/// Decisions for scores of a batch's rows through `policy`: a policy with group
/// thresholds reads each row's group from the batch's column of its attribute.
pub fn decide_batch(
    policy: &DecisionPolicy,
    batch: &RecordBatch,
    scores: &[f64],
) -> Result<Vec<u8>> {
    let groups = match policy.attribute() {
        None => Vec::new(),
        Some(attribute) => {
            let column = batch.column_by_name(attribute).ok_or_else(|| {
                Error::usage(format!(
                    "the decision policy needs column `{attribute}` (group thresholds)"
                ))
            })?;
            (0..batch.num_rows())
                .map(|row| kiln_stats::profile::category_key(column.as_ref(), row))
                .collect()
        }
    };
    // A null group value gets the default threshold (kiln_core::decision's one rule).
    policy.decide_all(scores, &groups)
}

/// Probabilities for every row of a transformed matrix, in chunks.
pub fn predict_matrix<B: Backend>(
    model: &Classifier<B>,
    layout: &FeatureLayout,
    matrix: &kiln_features::FeatureMatrix,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let rows: Vec<usize> = (0..matrix.rows).collect();
    predict_rows(model, layout, matrix, &rows, device)
}

/// [`predict_matrix`] on `threads` threads, each scoring a contiguous part of the rows
/// with its own copy of the model. A row's score does not depend on the rows scored
/// with it, so the result is the same for any number of threads.
pub fn predict_matrix_threads<B: Backend>(
    model: &Classifier<B>,
    layout: &FeatureLayout,
    matrix: &kiln_features::FeatureMatrix,
    device: &B::Device,
    threads: usize,
) -> Result<Vec<f32>> {
    let rows: Vec<usize> = (0..matrix.rows).collect();
    let size = rows.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<&[usize]> = rows.chunks(size).collect();
    if parts.len() <= 1 {
        return predict_rows(model, layout, matrix, &rows, device);
    }
    let scored: Vec<Result<Vec<f32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts[1..]
            .iter()
            .map(|part| {
                let local = model.clone();
                scope.spawn(move || predict_rows(&local, layout, matrix, part, device))
            })
            .collect();
        let first = predict_rows(model, layout, matrix, parts[0], device);
        std::iter::once(first)
            .chain(
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
            )
            .collect()
    });
    let mut out = Vec::with_capacity(matrix.rows);
    for part in scored {
        out.extend(part?);
    }
    Ok(out)
}

fn predict_rows<B: Backend>(
    model: &Classifier<B>,
    layout: &FeatureLayout,
    matrix: &kiln_features::FeatureMatrix,
    rows: &[usize],
    device: &B::Device,
) -> Result<Vec<f32>> {
    const CHUNK: usize = 8192;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let probabilities = sigmoid(model.forward(layout.tensors::<B>(matrix, chunk, device)));
        let values = probabilities
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| Error::Invalid(format!("reading predictions: {e:?}")))?;
        out.extend(values);
    }
    Ok(out)
}

/// Parses a bundle's metadata without loading the model.
pub fn parse_metadata(bytes: &[u8], uri: &str) -> Result<BundleMetadata> {
    kiln_core::contracts::parse(bytes, uri)
}

/// A bundle's training configuration (the `train` section it was trained with, as
/// JSON), for the ML-BOM.
pub async fn read_training_config(dir: &ArtifactStore) -> Result<serde_json::Value> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the bundle's own training configuration"
    )]
    dir.get_json(TRAINING_CONFIG).await
}

/// A table scored by a bundle: scores, the policy's decisions and the 0/1 labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTable {
    pub scores: Vec<f64>,
    pub decisions: Vec<u8>,
    pub labels: Vec<u8>,
}

/// Scores a table with a bundle on the CPU and decides through its policy; `label`
/// must be 0 or 1 (any other value is a usage error naming the row).
pub async fn score_table(
    model: &ArtifactStore,
    table: &kiln_core::store::ObjectRef,
    label: &str,
) -> Result<ScoredTable> {
    use futures::TryStreamExt;
    let bundle = ModelBundle::<crate::CpuBackend>::load(model, &Default::default()).await?;
    let (_, mut batches) = kiln_core::parquet_io::read_parquet(table, 16_384).await?;
    let mut out = ScoredTable {
        scores: Vec::new(),
        decisions: Vec::new(),
        labels: Vec::new(),
    };
    let bundle = std::sync::Arc::new(bundle);
    while let Some(batch) = batches.try_next().await? {
        let first_row = out.labels.len() as u64;
        // Burn inference is CPU work: on the blocking pool, not a runtime worker.
        let scoring = std::sync::Arc::clone(&bundle);
        let (uri, label_name) = (table.uri().to_string(), label.to_string());
        let (scores, decisions, labels) = tokio::task::spawn_blocking(move || {
            let labels =
                kiln_core::table::binary_column(&batch, "label", &label_name, &uri, first_row)?;
            let scores: Vec<f64> = scoring
                .predict_proba(&batch)?
                .into_iter()
                .map(f64::from)
                .collect();
            let decisions = scoring.decide(&batch, &scores)?;
            Ok::<_, Error>((scores, decisions, labels))
        })
        .await
        .map_err(|e| Error::Invalid(format!("the scoring thread failed: {e}")))??;
        out.decisions.extend(decisions);
        out.scores.extend(scores);
        out.labels.extend(labels);
    }
    Ok(out)
}
