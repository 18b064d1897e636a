//! `train/model/metadata.json`: what a model bundle says about itself (the registry
//! copies it with the bundle; the server and the champion gate read it).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::InputRecord;
use crate::spec::ColumnSpec;

use super::Artifact;

/// The version of the bundle format (the folder's files and this metadata).
pub const BUNDLE_FORMAT: u32 = 1;

/// Training's numbers at the kept epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingMetrics {
    pub best_epoch: usize,
    pub val_loss: f64,
    pub val_auc: Option<f64>,
    pub epochs_run: usize,
    pub stopped_early: bool,
}

/// What a bundle says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleMetadata {
    pub format_version: u32,
    pub kiln_version: String,
    #[schemars(with = "String")]
    pub created_at: DateTime<Utc>,
    /// Fingerprint of the spec sections the model depends on.
    pub spec_fingerprint: String,
    /// The label column; 1 means `positive_class`.
    pub label: String,
    pub positive_class: String,
    /// Names of the transform's outputs, in order.
    pub feature_names: Vec<String>,
    /// The prepared tables the model was trained on, with their hashes.
    pub data: Vec<InputRecord>,
    /// Training metrics (validation loss and AUC at the kept epoch, epochs run, ...).
    pub metrics: TrainingMetrics,
    /// Scores at or above this are the positive class.
    pub decision_threshold: f64,
    /// The raw columns the transform reads, with their spec types (what a server's
    /// model metadata advertises). Empty in bundles written before it existed.
    #[serde(default)]
    pub inputs: Vec<ColumnSpec>,
    /// The libraries the training binary linked (its `Cargo.lock` graph): the ML-BOM
    /// lists them. Absent in bundles written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<Library>,
}

/// One library a binary linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Library {
    pub name: String,
    pub version: String,
    /// Where it came from (`registry+…`, `git+…`); absent for Kiln's own crates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The registry's sha256 of the published crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Artifact for BundleMetadata {
    const STEP: &'static str = "train";
    const FILE: &'static str = "model/metadata.json";
    const FORMAT_VERSION: u32 = BUNDLE_FORMAT;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

// The bundle's layout: its files, and the digest that pins them.

pub const MODEL_RECORD: &str = "model.bin";
pub const MODEL_CONFIG: &str = "model_config.json";
pub const TRAINING_CONFIG: &str = "training_config.json";
pub const TRANSFORM: &str = "transform.json";
pub const REFERENCE_PROFILE: &str = "reference_profile.json";
pub const METADATA: &str = "metadata.json";
/// Every file of a bundle (what a registry copies; the policy only in a registered one).
pub const BUNDLE_FILES: &[&str] = &[
    MODEL_RECORD,
    MODEL_CONFIG,
    TRAINING_CONFIG,
    TRANSFORM,
    REFERENCE_PROFILE,
    crate::decision::DECISION_POLICY,
    METADATA,
];

/// The digest that pins a bundle: sha256 of `sha256sum`'s lines (`<hex>  <name>\n`)
/// for every bundle file present, in name order. In a bundle folder,
/// `sha256sum $(ls decision_policy.json metadata.json model.bin model_config.json reference_profile.json training_config.json transform.json 2>/dev/null) | sha256sum`
/// prints the same. Any changed, added or removed bundle file changes it.
pub fn bundle_digest(files: &[(&str, &[u8])]) -> String {
    let mut sorted: Vec<&(&str, &[u8])> = files
        .iter()
        .filter(|(name, _)| BUNDLE_FILES.contains(name))
        .collect();
    sorted.sort_by_key(|(name, _)| *name);
    let lines: String = sorted
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", crate::store::sha256_hex(bytes)))
        .collect();
    crate::store::sha256_hex(lines.as_bytes())
}

/// [`bundle_digest`] of the bundle in `store`.
pub async fn bundle_digest_of(store: &crate::store::ArtifactStore) -> crate::Result<String> {
    let mut files = Vec::new();
    for name in BUNDLE_FILES {
        if store.exists(name).await? {
            files.push((*name, store.get(name).await?));
        }
    }
    let views: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_ref())).collect();
    Ok(bundle_digest(&views))
}
