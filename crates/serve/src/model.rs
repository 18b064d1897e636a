//! The served model: a bundle resolved from `--model`, its input columns, its name and
//! version, and the one scoring path (the bundle's transform, the burn model, the
//! decision policy) that every protocol goes through.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use kiln_core::decision::DecisionPolicy;
use kiln_core::spec::ColumnType;
use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use kiln_features::{Feature, FittedTransform};
use kiln_model::bundle::{REFERENCE_PROFILE, decide_batch, predict_matrix};
use kiln_model::{Classifier, CpuBackend, FeatureLayout, ModelBundle};
use kiln_registry::{ModelReference, resolve};
use kiln_stats::profile::{ColumnStats, TableProfile};

use crate::inputs::{InputColumn, InputSchema};
use crate::lookup::{FeatureStore, Lookup};

/// What a scored batch gives back, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub probabilities: Vec<f32>,
    pub labels: Vec<u8>,
}

/// The parts of a loaded bundle that every scoring thread shares.
pub struct ServedModel {
    /// The name clients address (`/v2/models/{name}`).
    pub name: String,
    /// The registered version, else the first 12 hex digits of the model's sha256.
    pub version: String,
    /// sha256 of the bundle's `model.bin`.
    pub bundle_sha256: String,
    /// Where it came from (for logs).
    pub source: String,
    pub inputs: InputSchema,
    pub transform: FittedTransform,
    pub layout: FeatureLayout,
    pub policy: DecisionPolicy,
    /// The training features' profile (the reference for drift).
    pub reference: TableProfile,
    /// The model; each scoring thread takes its own clone.
    pub classifier: Classifier<CpuBackend>,
}

/// How to find the model.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// A bundle folder or URI, or a registry reference.
    pub reference: String,
    /// The local registry's root (for `name@alias` and `name/version`).
    pub registry: String,
    /// The name to serve under; default: the registered model's name, else `model`.
    pub name: Option<String>,
    /// Most rows one request may carry.
    pub max_request_rows: usize,
    /// The bundle digest the model must have (`--bundle-sha256`): anything else is
    /// refused at load.
    pub bundle_sha256: Option<String>,
    /// A public key (`--verify-with`): the bundle's OMS signature must verify with it.
    pub verify_with: Option<String>,
    /// The feature table (`--feature-table`) for a model with `transform.lookup`.
    pub feature_table: Option<String>,
}

impl ServedModel {
    /// Resolves and loads the model (downloading an MLflow version to a temporary folder).
    pub async fn load(source: &ModelSource) -> Result<ServedModel> {
        let reference = ModelReference::parse(&source.reference)?;
        let scratch_dir = std::env::temp_dir().join(format!("kiln-serve-{}", std::process::id()));
        let scratch = ArtifactStore::open(&scratch_dir.to_string_lossy())?;
        // The key is read before anything is downloaded: a bad key is a usage error.
        let verifier = match &source.verify_with {
            Some(uri) => Some(
                kiln_signing::read_verifying_key(uri)
                    .await
                    .map_err(|e| Error::usage(format!("--verify-with: {e}")))?,
            ),
            None => None,
        };
        let resolved = resolve(&reference, &source.registry, &scratch).await?;
        // Downloaded or not, the files are checked against the signature before any
        // is decoded.
        if let Some(key) = &verifier {
            let verified = kiln_signing::verify_store(&resolved.bundle, key)
                .await
                .map_err(|e| {
                    Error::usage(format!(
                        "--model {}: refusing a model whose signature does not verify with --verify-with: {e}",
                        source.reference
                    ))
                })?;
            tracing::info!(
                files = verified.files.len(),
                root_sha256 = verified.root_digest,
                key = key.hint(),
                "model signature verified"
            );
        }
        let bundle = ModelBundle::<CpuBackend>::load(&resolved.bundle, &Default::default())
            .await
            .map_err(|e| match e {
                Error::InputNotFound { uri } => Error::usage(format!(
                    "--model {}: no model bundle at {uri}",
                    source.reference
                )),
                other => other,
            })?;
        let bundle_sha256 = kiln_model::bundle::bundle_digest_of(&resolved.bundle).await?;
        if let Some(pinned) = &source.bundle_sha256
            && !pinned.eq_ignore_ascii_case(&bundle_sha256)
        {
            return Err(Error::usage(format!(
                "--model {}: the bundle's sha256 is {bundle_sha256}, not the pinned {pinned} (--bundle-sha256): refusing a bundle that changed since it was registered",
                source.reference
            )));
        }
        let reference: TableProfile =
            kiln_stats::profile::read_reference(&resolved.bundle.object(REFERENCE_PROFILE)).await?;
        let columns = input_columns(&bundle);
        let mut inputs = InputSchema::new(columns, source.max_request_rows);
        inputs.lookup = lookup(&bundle.transform, &inputs, source.feature_table.as_deref()).await?;
        let name = source
            .name
            .clone()
            .or(resolved.model.clone())
            .unwrap_or_else(|| "model".to_string());
        let version = resolved
            .version
            .clone()
            .unwrap_or_else(|| bundle_sha256[..12].to_string());
        Ok(ServedModel {
            name,
            version,
            bundle_sha256,
            source: resolved.description,
            inputs,
            transform: bundle.transform,
            layout: bundle.layout,
            policy: bundle.policy,
            reference,
            classifier: bundle.model,
        })
    }

    /// Scores a batch of raw rows with a scoring thread's model.
    pub fn score(&self, model: &Classifier<CpuBackend>, batch: &RecordBatch) -> Result<Scored> {
        let matrix = self.transform.apply_batch(batch)?;
        let probabilities = predict_matrix(model, &self.layout, &matrix, &Default::default())?;
        let scores: Vec<f64> = probabilities.iter().map(|&p| f64::from(p)).collect();
        let labels = decide_batch(&self.policy, batch, &scores)?;
        Ok(Scored {
            probabilities,
            labels,
        })
    }

    /// One row of typical values (training medians and most frequent categories):
    /// what the self-check scores before the server says it is ready.
    pub fn typical_row(&self) -> serde_json::Value {
        let mut row = serde_json::Map::new();
        for column in &self.inputs.columns {
            let value = match self.reference.column(&column.name).map(|c| &c.stats) {
                Some(ColumnStats::Numeric {
                    quantiles, mean, ..
                }) => {
                    let median = quantiles
                        .iter()
                        .find(|[level, _]| (*level - 0.5).abs() < 1e-9)
                        .map(|[_, v]| *v)
                        .or(*mean)
                        .unwrap_or(0.0);
                    match column.dtype {
                        ColumnType::Int => serde_json::json!(median.round() as i64),
                        _ => serde_json::json!(median),
                    }
                }
                Some(ColumnStats::Categorical { top, .. }) => top
                    .first()
                    .map_or(serde_json::Value::Null, |(v, _)| serde_json::json!(v)),
                _ => serde_json::Value::Null,
            };
            row.insert(column.name.clone(), value);
        }
        serde_json::Value::Object(row)
    }
}

/// The raw columns a request carries: the bundle's recorded input types, else the
/// kind of transform feature that reads the column; plus the policy's attribute.
fn input_columns(bundle: &ModelBundle<CpuBackend>) -> Vec<InputColumn> {
    bundle
        .input_columns()
        .into_iter()
        .map(|name| {
            let recorded = bundle.metadata.inputs.iter().find(|c| c.name == name);
            let dtype = match recorded {
                Some(c) => c.dtype,
                None => match bundle
                    .transform
                    .features
                    .iter()
                    .find(|f| f.column() == name)
                {
                    Some(Feature::Numeric(_)) => ColumnType::Float,
                    _ => ColumnType::String,
                },
            };
            InputColumn { name, dtype }
        })
        .collect()
}

/// The model's lookup (`transform.lookup`) with its feature table loaded, if given.
async fn lookup(
    transform: &FittedTransform,
    inputs: &InputSchema,
    table: Option<&str>,
) -> Result<Option<Lookup>> {
    let Some(spec) = &transform.lookup else {
        return match table {
            Some(uri) => Err(Error::usage(format!(
                "--feature-table {uri}: the model looks nothing up (its transform has no lookup)"
            ))),
            None => Ok(None),
        };
    };
    let index = |name: &str| {
        inputs
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("transform.lookup: `{name}` is not an input")))
    };
    let key = index(&spec.key)?;
    let columns = spec
        .columns
        .iter()
        .map(|c| index(c))
        .collect::<Result<Vec<_>>>()?;
    let store = match table {
        Some(uri) => {
            let types = columns
                .iter()
                .map(|&c| inputs.columns[c].arrow_type())
                .collect();
            let store =
                FeatureStore::open(uri, spec.clone(), inputs.columns[key].arrow_type(), types)
                    .await
                    .map_err(|e| match e {
                        Error::InputNotFound { uri } => {
                            Error::usage(format!("--feature-table: no feature table at {uri}"))
                        }
                        other => other,
                    })?;
            Some(Arc::new(store))
        }
        None => {
            tracing::warn!(
                key = %spec.key,
                columns = %spec.columns.join(", "),
                "the model looks features up by key but no --feature-table was given: requests must carry them"
            );
            None
        }
    };
    Ok(Some(Lookup {
        key,
        columns,
        key_name: spec.key.clone(),
        store,
    }))
}

/// A shared handle.
pub type SharedModel = Arc<ServedModel>;
