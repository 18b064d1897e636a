//! The pipeline spec: one YAML or JSON file that describes a project end to end.
//!
//! The types here are the contract: unknown fields are errors that name the field and
//! the file, and `kiln spec schema` prints a JSON Schema generated from these types so
//! that editors validate the file as it is written.

mod load;
mod tune;
mod validate;

pub use load::{LoadedSpec, apply_override};
pub use tune::{
    BEST_CONFIG_FORMAT, BestConfig, Distribution, PruningSpec, Sampler, TuneMetric, TuneSpec,
    apply_params, startup_trials,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole pipeline: data, schema, label, split, transform and what later steps need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Project name; the default run folder is `./kiln-runs/<name>`.
    pub name: String,
    /// Where the raw data is and how to read it.
    pub data: DataSpec,
    /// The typed columns of the raw data, in file order for header-less CSV.
    pub schema: Vec<ColumnSpec>,
    /// The label column and its positive class.
    pub label: LabelSpec,
    /// Sensitive attributes for fairness analysis (kept as columns in every table).
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Row filters applied after parsing, before splitting; a row must pass all.
    #[serde(default)]
    pub filters: Vec<RowFilter>,
    /// How rows are split into train and test.
    pub split: SplitSpec,
    /// The feature transform, fitted on the train split.
    pub transform: TransformSpec,
    /// Where each row's `event_timestamp` comes from.
    #[serde(default)]
    pub event_time: EventTimeSpec,
    /// Data quality checks run by the validate step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSpec>,
    /// Model and training hyperparameters for the train step.
    /// Hyperparameter search before train (the tune step runs only with this section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
    #[serde(default)]
    pub train: TrainSpec,
    /// How the evaluate step scores the model.
    #[serde(default)]
    pub evaluate: EvaluateSpec,
    /// Fairness analysis and its gates.
    #[serde(default)]
    pub fairness: FairnessSpec,
    /// Where the register step records the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySpec>,
}

/// Raw data sources and their format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// File format of every source.
    pub format: DataFormat,
    /// CSV parsing options (ignored for Parquet).
    #[serde(default)]
    pub csv: CsvOptions,
    /// One or more files. A relative URI is relative to the spec file's folder.
    pub sources: Vec<SourceSpec>,
}

/// The file format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Csv,
    Parquet,
}

/// How CSV sources are parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Field delimiter, one character.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line (after `skip_lines`) is a header naming the columns.
    #[serde(default)]
    pub header: bool,
    /// Trim spaces and tabs around every field.
    #[serde(default = "default_true")]
    pub trim: bool,
    /// Field values (after trimming) that mean "missing", e.g. `?` or `NA`.
    /// An empty field is always missing.
    #[serde(default)]
    pub null_values: Vec<String>,
    /// Skip blank lines (a trailing empty line is common in exported files).
    #[serde(default = "default_true")]
    pub skip_blank_lines: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: default_delimiter(),
            header: false,
            trim: true,
            null_values: Vec::new(),
            skip_blank_lines: true,
        }
    }
}

fn default_delimiter() -> char {
    ','
}

fn default_true() -> bool {
    true
}

/// One raw data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Path or URI: plain path, `file://`, `s3://bucket/key`, `memory://name/key`.
    pub uri: String,
    /// Lines to skip at the top of the file, before any header (e.g. a banner line).
    #[serde(default)]
    pub skip_lines: u64,
    /// With `split.method: files`, which split this file's rows go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitRole>,
}

/// Which split a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitRole {
    Train,
    Test,
}

impl SplitRole {
    /// The artifact name of this split (`train`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            SplitRole::Train => "train",
            SplitRole::Test => "test",
        }
    }
}

/// A typed column of the raw data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name, kept unchanged in the prepared tables.
    pub name: String,
    /// Logical type.
    #[serde(rename = "type")]
    pub dtype: ColumnType,
    /// Whether missing values are allowed; a missing value in a non-nullable column is an error.
    #[serde(default = "default_true")]
    pub nullable: bool,
}

/// Logical column types and their Arrow types in the prepared tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// 64-bit signed integer (Arrow Int64).
    Int,
    /// 64-bit float (Arrow Float64).
    Float,
    /// UTF-8 text (Arrow Utf8).
    String,
    /// Boolean: true/false, 1/0, yes/no (Arrow Boolean).
    Bool,
    /// RFC 3339 date-time, `YYYY-MM-DD HH:MM:SS` or a date, in UTC (Arrow Timestamp µs, UTC).
    Timestamp,
}

impl ColumnType {
    /// Whether numeric transforms apply to this type.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Float)
    }
}

/// The label column and how its raw values map to 0/1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// The label column (declared in `schema`); written as 0/1 under the same name.
    pub column: String,
    /// The raw value of the positive class (label 1).
    pub positive: String,
    /// The raw value of the negative class (label 0). When given, any other value is an
    /// error; when absent, every non-positive value is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
    /// A suffix stripped from raw labels before comparing (e.g. `.` for `>50K.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_suffix: Option<String>,
}

/// A row filter: `column op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    /// The column compared.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value for `eq`, `ne`, `lt`, `le`, `gt`, `ge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The values for `in` and `not_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<serde_json::Value>>,
}

/// Comparison operators of a [`RowFilter`]. A missing value fails every comparison
/// except `is_null` (as in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    IsNull,
    NotNull,
}

/// How rows are assigned to train and test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "method", rename_all = "snake_case")]
pub enum SplitSpec {
    /// Every source names its split (`sources[].split`).
    Files,
    /// A deterministic hash of a key column (or the row id) with a seed.
    Hash {
        /// Column whose value is hashed; rows with equal keys land in the same split.
        /// Without it, the row id is hashed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Fraction of rows (by hash) that go to test, in (0, 1).
        test_fraction: f64,
        /// Seed mixed into the hash; change it for a different split.
        #[serde(default)]
        seed: u64,
    },
}

/// The feature transform: which columns feed the model and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// Numeric features, in output order.
    #[serde(default)]
    pub numeric: Vec<NumericFeatureSpec>,
    /// Categorical features, in output order after the numeric ones.
    #[serde(default)]
    pub categorical: Vec<CategoricalFeatureSpec>,
}

/// A numeric feature: impute → clip → log1p → standardise, plus optional buckets and a
/// missing-value indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NumericFeatureSpec {
    /// Source column (int or float).
    pub column: String,
    /// How missing values are filled.
    #[serde(default)]
    pub impute: Impute,
    /// Clip to fixed bounds or to quantiles fitted on train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipSpec>,
    /// Apply `ln(1 + x)` after clipping (values must be > -1 after clipping).
    #[serde(default)]
    pub log1p: bool,
    /// Standardise to zero mean and unit variance (population std, fitted on train).
    #[serde(default)]
    pub standardize: bool,
    /// Add one-hot bucket features over the (clipped, log1p'd) value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucketize: Option<BucketSpec>,
    /// Add a piecewise-linear encoding over this many quantile bins fitted on train
    /// (Gorishniy et al., 2022): bin t is 0 below its range, 1 above it and linear
    /// inside, so a value's position among the train quantiles is one dense vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piecewise_linear: Option<PiecewiseLinearSpec>,
    /// Add a 0/1 feature that says the value was missing.
    #[serde(default)]
    pub missing_indicator: bool,
}

/// Imputation of missing numeric values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The train median.
    #[default]
    Median,
    /// The train mean.
    Mean,
    /// A fixed value.
    Constant(f64),
}

/// Clipping bounds: fixed values or train quantiles (not both on one side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClipSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Lower bound = this quantile of train, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_quantile: Option<f64>,
    /// Upper bound = this quantile of train, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_quantile: Option<f64>,
}

/// A piecewise-linear encoding (PLE) of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PiecewiseLinearSpec {
    /// Number of bins at equally spaced train quantiles (bins that would be empty,
    /// such as many quantiles at one repeated value, are merged).
    pub bins: u32,
}

/// Bucket boundaries: given, or at equally spaced train quantiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum BucketSpec {
    /// Ascending boundaries; n boundaries make n + 1 buckets.
    Boundaries(Vec<f64>),
    /// This many buckets at train quantiles (duplicate edges are merged).
    Quantiles(u32),
}

/// A categorical feature: a vocabulary fitted on train, with an unknown bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoricalFeatureSpec {
    /// Source column (string, int or bool).
    pub column: String,
    /// Categories seen fewer times than this in train go to the unknown bucket.
    #[serde(default = "default_min_frequency")]
    pub min_frequency: u64,
    /// Keep at most this many categories (the most frequent; ties by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_categories: Option<usize>,
    /// Output encoding.
    #[serde(default)]
    pub encoding: CategoricalEncoding,
    /// How a missing value is encoded.
    #[serde(default)]
    pub missing: MissingCategory,
}

fn default_min_frequency() -> u64 {
    1
}

/// How a categorical feature is written into the feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalEncoding {
    /// One 0/1 feature per category, plus one for unknown (and one for missing if separate).
    #[default]
    OneHot,
    /// One feature holding the category index (0 = unknown), for learned embeddings.
    Index,
}

/// Where a missing categorical value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissingCategory {
    /// Its own slot, so "missing" can carry signal.
    #[default]
    Separate,
    /// The unknown bucket.
    Unknown,
}

/// Where `event_timestamp` comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum EventTimeSpec {
    /// The time prepare ran (the default; makes the output differ between reruns).
    #[default]
    IngestTime,
    /// A timestamp column of the data.
    Column(String),
    /// One fixed RFC 3339 time for every row (e.g. the census date of a snapshot).
    Fixed(String),
}

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
fn default_seed() -> u64 {
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

/// Evaluation settings (every field has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateSpec {
    /// Scores at or above this are the positive class.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Equal-width bins of the reliability diagram.
    #[serde(default = "default_calibration_bins")]
    pub calibration_bins: usize,
    /// Bootstrap resamples for the 95 % intervals of ROC AUC and F1 (0 = none).
    #[serde(default = "default_bootstrap_resamples")]
    pub bootstrap_resamples: usize,
    /// Seed of the bootstrap.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl Default for EvaluateSpec {
    fn default() -> Self {
        EvaluateSpec {
            threshold: default_threshold(),
            calibration_bins: default_calibration_bins(),
            bootstrap_resamples: default_bootstrap_resamples(),
            seed: default_seed(),
        }
    }
}

fn default_threshold() -> f64 {
    0.5
}
fn default_calibration_bins() -> usize {
    10
}
fn default_bootstrap_resamples() -> usize {
    1000
}

/// Fairness analysis settings (every field has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FairnessSpec {
    /// Groups with fewer rows are reported, flagged, and kept out of disparities and gates.
    #[serde(default = "default_min_group_count")]
    pub min_group_count: u64,
    /// Also analyse the intersection of all sensitive attributes (e.g. sex × race).
    #[serde(default = "default_true")]
    pub intersections: bool,
    /// Bootstrap resamples for the 95 % intervals of the disparities (0 = none).
    #[serde(default = "default_fairness_resamples")]
    pub bootstrap_resamples: usize,
    /// Seed of the bootstrap.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Bounds the model must meet; a failed gate is exit code 3.
    #[serde(default)]
    pub gates: Vec<FairnessGate>,
    /// Post-processing: group-specific thresholds chosen on train's validation rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<MitigationSpec>,
}

/// Group thresholds that satisfy a fairness constraint with the least loss of accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MitigationSpec {
    pub constraint: MitigationConstraint,
    /// The sensitive attribute whose groups get their own thresholds.
    pub attribute: String,
    /// Lowest accepted ratio of the constrained rate between groups (four-fifths: 0.8).
    #[serde(default = "default_min_ratio")]
    pub min_ratio: f64,
}

/// What mitigation equalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MitigationConstraint {
    /// Selection rates (demographic parity).
    DemographicParity,
    /// True positive rates (equal opportunity).
    EqualOpportunity,
}

fn default_min_ratio() -> f64 {
    0.8
}

impl Default for FairnessSpec {
    fn default() -> Self {
        FairnessSpec {
            min_group_count: default_min_group_count(),
            intersections: true,
            bootstrap_resamples: default_fairness_resamples(),
            seed: default_seed(),
            gates: Vec::new(),
            mitigation: None,
        }
    }
}

fn default_min_group_count() -> u64 {
    30
}
fn default_fairness_resamples() -> usize {
    200
}

/// One fairness bound, e.g. `{metric: demographic_parity_ratio, min: 0.8}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FairnessGate {
    pub metric: FairnessMetric,
    /// The attribute it applies to (`sex`, or `sex × race` for the intersection);
    /// every analysed attribute when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// The metric must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The metric must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Disparity metrics, as Fairlearn defines them (between groups: max − min, or min / max).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FairnessMetric {
    DemographicParityDifference,
    DemographicParityRatio,
    EqualOpportunityDifference,
    EqualOpportunityRatio,
    EqualizedOddsDifference,
    EqualizedOddsRatio,
    PredictiveParityRatio,
}

/// Data quality checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationSpec {
    /// Expectation suite (Great Expectations JSON), relative to the spec file.
    pub suite: String,
    /// Report unknown expectation types as skipped instead of failing.
    #[serde(default)]
    pub allow_unknown: bool,
    /// Drift of the test split against the training split's profile.
    #[serde(default)]
    pub drift: DriftSpec,
}

/// Drift and training/serving skew thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// Population stability index above which a column has drifted.
    #[serde(default = "default_psi_max")]
    pub psi_max: f64,
    /// Kolmogorov–Smirnov statistic above which a numeric column has drifted.
    #[serde(default = "default_ks_max")]
    pub ks_max: f64,
    /// L-infinity distance between category shares above which a categorical column has drifted.
    #[serde(default = "default_linf_max")]
    pub linf_max: f64,
    /// Fewer non-null values than this on either side: no verdict.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// Columns to compare; empty compares every profiled column not in `exclude`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Columns left out when `columns` is empty.
    #[serde(default = "default_drift_exclude")]
    pub exclude: Vec<String>,
    /// Whether a drifted column fails the step (exit 3); otherwise it is reported only.
    #[serde(default = "default_true")]
    pub gate: bool,
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            psi_max: default_psi_max(),
            ks_max: default_ks_max(),
            linf_max: default_linf_max(),
            min_rows: default_min_rows(),
            columns: Vec::new(),
            exclude: default_drift_exclude(),
            gate: true,
        }
    }
}

fn default_psi_max() -> f64 {
    0.2
}
fn default_ks_max() -> f64 {
    0.1
}
fn default_linf_max() -> f64 {
    0.1
}
fn default_min_rows() -> u64 {
    100
}
fn default_drift_exclude() -> Vec<String> {
    vec!["row_id".into(), "event_timestamp".into()]
}

/// A model metric by the name evaluate's `metrics.json` gives it. A misspelt name in
/// the spec is an error when the spec loads, not after training.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ModelMetric {
    RocAuc,
    AveragePrecision,
    Accuracy,
    Precision,
    Recall,
    F1,
    LogLoss,
    Brier,
}

impl ModelMetric {
    /// Every metric, in `metrics.json`'s order.
    pub const ALL: [ModelMetric; 8] = [
        ModelMetric::RocAuc,
        ModelMetric::AveragePrecision,
        ModelMetric::Accuracy,
        ModelMetric::Precision,
        ModelMetric::Recall,
        ModelMetric::F1,
        ModelMetric::LogLoss,
        ModelMetric::Brier,
    ];

    /// The name in `metrics.json` and the spec (`roc_auc`).
    pub fn name(self) -> &'static str {
        match self {
            ModelMetric::RocAuc => "roc_auc",
            ModelMetric::AveragePrecision => "average_precision",
            ModelMetric::Accuracy => "accuracy",
            ModelMetric::Precision => "precision",
            ModelMetric::Recall => "recall",
            ModelMetric::F1 => "f1",
            ModelMetric::LogLoss => "log_loss",
            ModelMetric::Brier => "brier",
        }
    }
}

impl std::fmt::Display for ModelMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Model registry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    /// Registered model name.
    pub model_name: String,
    /// The alias a model that passes every gate gets (MLflow's replacement for stages).
    #[serde(default = "default_candidate_alias")]
    pub alias: String,
    /// Minimum values of evaluate's metrics (e.g. `roc_auc: 0.85`); a metric that is
    /// undefined fails its gate.
    #[serde(default)]
    pub min_metrics: std::collections::BTreeMap<ModelMetric, f64>,
    /// Require the validate step to have passed (when the spec has a suite).
    #[serde(default = "default_true")]
    pub require_validation: bool,
    /// Require every fairness gate to have passed.
    #[serde(default = "default_true")]
    pub require_fairness: bool,
    /// Champion/challenger: the version holding `champion_alias` is scored on this run's
    /// test set, and the new model must beat it on `champion_metric` by this margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_margin: Option<f64>,
    #[serde(default = "default_champion_alias")]
    pub champion_alias: String,
    #[serde(default = "default_champion_metric")]
    pub champion_metric: ModelMetric,
    /// The local registry used without MLflow [default: `registry/` beside the run folder].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_uri: Option<String>,
}

fn default_candidate_alias() -> String {
    "staging".into()
}
fn default_champion_alias() -> String {
    "production".into()
}
fn default_champion_metric() -> ModelMetric {
    ModelMetric::RocAuc
}

impl PipelineSpec {
    /// The column spec of a named column.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.schema.iter().find(|c| c.name == name)
    }

    /// The JSON Schema of the spec file, for editors and `kiln spec schema`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(PipelineSpec)).unwrap_or(serde_json::Value::Null)
    }

    /// A stable sha256 over the named top-level sections, so that each step reruns
    /// only when the part of the spec it reads changes.
    pub fn fingerprint(&self, sections: &[&str]) -> String {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let mut picked = serde_json::Map::new();
        for section in sections {
            picked.insert(
                (*section).to_string(),
                value
                    .get(*section)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            );
        }
        // serde_json's map is ordered by key, so the text is canonical.
        let text = serde_json::Value::Object(picked).to_string();
        crate::store::sha256_hex(text.as_bytes())
    }
}
