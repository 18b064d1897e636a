//! What train writes beside the bundle: its summary and the per-epoch history.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Artifact;

/// `train/summary.json` (also the summary in train's manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainSummary {
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    /// The epoch whose weights the bundle holds (0-based).
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub stopped_early: bool,
    /// Validation loss and ROC AUC at the best epoch.
    pub val_loss: f64,
    pub val_auc: Option<f64>,
    pub train_rows: usize,
    pub validation_rows: usize,
    /// Wall time of the training loop.
    pub seconds: f64,
    pub samples_per_second: f64,
    /// `cpu` or `cuda`.
    pub device: String,
    /// The checkpoint step training resumed from, if it did.
    pub resumed_from_step: Option<u64>,
}

impl Artifact for TrainSummary {
    const STEP: &'static str = "train";
    const FILE: &'static str = "summary.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// One epoch of the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_auc: Option<f64>,
    pub learning_rate: f64,
    pub seconds: f64,
}

/// `train/history.json`: every epoch, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainHistory {
    pub format_version: u32,
    pub epochs: Vec<EpochRecord>,
}

impl TrainHistory {
    pub fn new(epochs: Vec<EpochRecord>) -> TrainHistory {
        TrainHistory {
            format_version: Self::FORMAT_VERSION,
            epochs,
        }
    }
}

impl Artifact for TrainHistory {
    const STEP: &'static str = "train";
    const FILE: &'static str = "history.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}
