//! What the later steps check: evaluation, fairness, data quality and drift, the model
//! metrics gates name, and where the register step records the model.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::data::default_true;
use super::train::default_seed;

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
