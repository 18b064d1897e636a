//! The model and its training: architecture, numeric embeddings and optimiser settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Model architecture and training hyperparameters (every field has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Hidden layer sizes of the MLP.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout probability after each hidden layer.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Layer normalisation after each hidden linear layer.
    #[serde(default)]
    pub layer_norm: bool,
    /// Embedding size for categorical features with `encoding: index`.
    #[serde(default = "default_embedding_dim")]
    pub embedding_dim: usize,
    /// Learned embeddings of the numeric features' scalar values.
    #[serde(default)]
    pub numeric_embedding: NumericEmbedding,
    /// Peak learning rate of AdamW.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Learning-rate schedule over the planned epochs.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Rows per optimisation step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Data-parallel shards per batch, each on its own thread, gradients summed in
    /// shard order. Results depend on this number (and the seed), not on the machine:
    /// 2 uses two cores where there are two and gives the same model on one.
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Maximum number of epochs.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Share of the train split held out (deterministically, by row id) for early stopping.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Weighting of the two classes in the loss.
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// Seed for initialisation, shuffling, dropout and the validation split.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Write a checkpoint every this many epochs (and always on SIGTERM).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            hidden: default_hidden(),
            activation: Activation::default(),
            dropout: default_dropout(),
            layer_norm: false,
            embedding_dim: default_embedding_dim(),
            numeric_embedding: NumericEmbedding::default(),
            learning_rate: default_learning_rate(),
            weight_decay: default_weight_decay(),
            lr_schedule: LrSchedule::default(),
            batch_size: default_batch_size(),
            shards: default_shards(),
            epochs: default_epochs(),
            patience: default_patience(),
            validation_fraction: default_validation_fraction(),
            class_weight: ClassWeight::default(),
            seed: default_seed(),
            checkpoint_every: default_checkpoint_every(),
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![64, 32]
}
fn default_dropout() -> f64 {
    0.1
}
fn default_embedding_dim() -> usize {
    8
}
fn default_learning_rate() -> f64 {
    1e-3
}
fn default_weight_decay() -> f64 {
    1e-4
}
fn default_batch_size() -> usize {
    256
}
fn default_shards() -> usize {
    2
}
fn default_epochs() -> usize {
    40
}
fn default_patience() -> usize {
    5
}
fn default_validation_fraction() -> f64 {
    0.1
}
pub(super) fn default_seed() -> u64 {
    42
}
fn default_checkpoint_every() -> usize {
    1
}

/// How the numeric features' scalar values enter the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumericEmbedding {
    /// As they are (one input each).
    #[default]
    None,
    /// Periodic embeddings: `k` learned frequencies per feature, sin and cos, then a
    /// linear layer to `dim` per feature and a ReLU (Gorishniy et al., 2022).
    Periodic(PeriodicSpec),
}

/// The periodic embedding's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodicSpec {
    /// Learned frequencies per feature.
    #[serde(default = "default_frequencies")]
    pub frequencies: usize,
    /// Output size per feature.
    #[serde(default = "default_periodic_dim")]
    pub dim: usize,
    /// Standard deviation of the initial frequencies (the most important setting:
    /// larger values fit sharper functions of the value).
    #[serde(default = "default_sigma")]
    pub sigma: f64,
}

fn default_frequencies() -> usize {
    16
}
fn default_periodic_dim() -> usize {
    16
}
fn default_sigma() -> f64 {
    0.1
}

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Gelu,
    Silu,
    Tanh,
}

/// Learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Cosine decay from the peak rate to `min_factor` × peak over `epochs`.
    Cosine { min_factor: f64 },
    /// Multiply the rate by `gamma` every `every` epochs.
    Step { every: usize, gamma: f64 },
}

/// Class weights in the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Both classes weigh 1.
    #[default]
    None,
    /// n / (2 · n_class) for each class, as scikit-learn's `balanced`.
    Balanced,
    /// The positive class weighs this much; the negative class 1.
    Positive(f64),
}
