//! The feature transform's section: numeric and categorical features and their options.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The feature transform: which columns feed the model and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// Row-level derived columns, computed from one row's numeric columns by prepare
    /// (into its tables) and by the model server (from a request's raw fields) with
    /// the same evaluator; a numeric feature may read them by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<super::DerivedSpec>,
    /// Numeric features, in output order.
    #[serde(default)]
    pub numeric: Vec<NumericFeatureSpec>,
    /// Categorical features, in output order after the numeric ones.
    #[serde(default)]
    pub categorical: Vec<CategoricalFeatureSpec>,
    /// Features that need other rows (an entity's history) and so cannot come from one
    /// request: the model server looks them up by the entity key in a feature table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupSpec>,
}

/// Features served from a feature table by entity key: prepare writes the table
/// (`features.parquet`: each key's latest row), `kiln-serve --feature-table` loads and
/// refreshes it, and a request that carries the key (and the request-time columns) gets
/// these columns from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    /// The entity key (an int or string schema column), e.g. `customer_id`.
    pub key: String,
    /// The schema columns looked up by the key, e.g. `[tx_count_90d, tx_sum_90d]`; each
    /// is an input of a feature.
    pub columns: Vec<String>,
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
