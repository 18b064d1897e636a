//! The `tune:` section: a search space over `train.*` fields, the budget, the metric,
//! the sampler and early stopping of poor trials.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TrainSpec;

/// Hyperparameter search (the tune step runs only when this section is present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// The search space: `train.<field>` (dotted, like `--set`) → its distribution.
    pub space: BTreeMap<String, Distribution>,
    /// Number of trials.
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// Trials trained at once (each on its own thread; a round of this many trials is
    /// sampled from the results of the rounds before it, so the search does not
    /// depend on which trial finishes first).
    #[serde(default = "default_parallelism")]
    pub parallelism: usize,
    /// What to optimise, on train's validation rows (never the test split).
    #[serde(default)]
    pub metric: TuneMetric,
    /// How configurations are chosen.
    #[serde(default)]
    pub sampler: Sampler,
    /// Seed of the sampler.
    #[serde(default = "default_tune_seed")]
    pub seed: u64,
    /// Stop poor trials early (asynchronous successive halving on per-epoch metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningSpec>,
}

fn default_trials() -> usize {
    16
}
fn default_parallelism() -> usize {
    2
}
fn default_tune_seed() -> u64 {
    7
}

/// One parameter's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// One of these values (any YAML value: numbers, lists, maps).
    Choice(Vec<serde_json::Value>),
    /// A float uniform in `[low, high]`.
    Uniform([f64; 2]),
    /// A float whose logarithm is uniform in `[ln low, ln high]` (low > 0).
    LogUniform([f64; 2]),
    /// An integer uniform in `[low, high]`, both included.
    Int([i64; 2]),
}

/// The tuning objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TuneMetric {
    /// ROC AUC at the trial's best epoch (maximised).
    #[default]
    ValAuc,
    /// Log loss at the trial's best epoch (minimised).
    ValLoss,
}

impl TuneMetric {
    /// True when larger is better.
    pub fn maximize(self) -> bool {
        matches!(self, TuneMetric::ValAuc)
    }

    /// The name used in reports and MLflow.
    pub fn name(self) -> &'static str {
        match self {
            TuneMetric::ValAuc => "val_auc",
            TuneMetric::ValLoss => "val_loss",
        }
    }
}

/// How trial configurations are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// Independent draws from the distributions.
    Random,
    /// Tree-structured Parzen estimator (Bergstra et al., 2011), after
    /// `startup_trials` random trials.
    #[default]
    Tpe,
}

/// Successive halving: at epochs `min_epochs`, `min_epochs·reduction`, ... a trial
/// continues only if its metric is in the best `1/reduction` of the metrics earlier
/// rounds' trials had at that epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruningSpec {
    /// The first rung (epochs).
    #[serde(default = "default_min_epochs")]
    pub min_epochs: usize,
    /// Rung spacing and the share kept (1/reduction).
    #[serde(default = "default_reduction")]
    pub reduction: usize,
}

fn default_min_epochs() -> usize {
    3
}
fn default_reduction() -> usize {
    3
}

/// Version of `tune/best.json` and the trial files.
pub const BEST_CONFIG_FORMAT: u32 = 1;

/// `tune/best.json`: what train trains the final model with (written by tune, read
/// by train; both use this type, a contract: `kiln_core::contracts::read`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BestConfig {
    pub format_version: u32,
    pub metric: TuneMetric,
    pub value: f64,
    pub trial: usize,
    /// The tuned fields (`train.<path>` → value): train applies these to its section.
    pub params: BTreeMap<String, serde_json::Value>,
}

/// The first trials of the TPE sampler, drawn at random.
pub fn startup_trials(spec: &TuneSpec) -> usize {
    (spec.trials / 4).clamp(2, 10)
}

/// `train` with `params` (keys `train.<dotted path>`) set, parsed and checked like a
/// spec's own train section. Errors name the key.
pub fn apply_params(
    train: &TrainSpec,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<TrainSpec, String> {
    let mut value = serde_json::to_value(train).map_err(|e| e.to_string())?;
    for (key, param) in params {
        let path = key
            .strip_prefix("train.")
            .ok_or_else(|| format!("tune.space.{key}: only `train.*` fields can be tuned"))?;
        let segments: Vec<&str> = path.split('.').collect();
        let mut at = &mut value;
        for (i, segment) in segments.iter().enumerate() {
            if !at.is_object() {
                // A variant written as a plain string (`none`) becomes a map when a
                // field inside another variant is set.
                *at = serde_json::Value::Object(Default::default());
            }
            let serde_json::Value::Object(map) = at else {
                unreachable!("made an object above")
            };
            if i > 0 && map.len() == 1 && !map.contains_key(*segment) {
                // An externally tagged variant (`{cosine: {...}}`): naming another
                // variant replaces it.
                map.clear();
            }
            at = map
                .entry((*segment).to_string())
                .or_insert(serde_json::Value::Null);
        }
        *at = param.clone();
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("tune: train.{path}: {}", e.into_inner())
    })
}

impl TuneSpec {
    /// Semantic checks (called from the spec's own).
    pub fn check(&self, train: &TrainSpec) -> Result<(), String> {
        if self.space.is_empty() {
            return Err("tune.space: name at least one `train.*` field".into());
        }
        if self.trials == 0 || self.parallelism == 0 {
            return Err("tune: trials and parallelism must be at least 1".into());
        }
        if self.trials > 10_000 || self.parallelism > 64 {
            return Err("tune: at most 10000 trials and parallelism 64".into());
        }
        if let Some(p) = &self.pruning
            && (p.min_epochs == 0 || p.reduction < 2)
        {
            return Err("tune.pruning: min_epochs must be ≥ 1 and reduction ≥ 2".into());
        }
        for (key, distribution) in &self.space {
            let field = format!("tune.space.{key}");
            let probe = match distribution {
                Distribution::Choice(values) if values.is_empty() => {
                    return Err(format!("{field}.choice: list at least one value"));
                }
                Distribution::Choice(values) => values.clone(),
                Distribution::Uniform([lo, hi]) | Distribution::LogUniform([lo, hi])
                    if !(lo.is_finite() && hi.is_finite() && lo <= hi) =>
                {
                    return Err(format!("{field}: need finite low ≤ high, got [{lo}, {hi}]"));
                }
                Distribution::LogUniform([lo, _]) if *lo <= 0.0 => {
                    return Err(format!("{field}.log_uniform: low {lo} must be positive"));
                }
                Distribution::Uniform([lo, hi]) | Distribution::LogUniform([lo, hi]) => {
                    vec![(*lo).into(), (*hi).into()]
                }
                Distribution::Int([lo, hi]) if lo > hi => {
                    return Err(format!("{field}.int: low {lo} is above high {hi}"));
                }
                Distribution::Int([lo, hi]) => vec![(*lo).into(), (*hi).into()],
            };
            // Every end of the range must make a valid train section.
            for value in probe {
                let params = BTreeMap::from([(key.clone(), value)]);
                let trial = apply_params(train, &params)?;
                super::validate::check_train_spec(&trial).map_err(|e| format!("{field}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{LrSchedule, NumericEmbedding};

    #[test]
    fn params_set_nested_fields_and_switch_variants() {
        let base = TrainSpec::default();
        assert_eq!(base.numeric_embedding, NumericEmbedding::None);
        let params = BTreeMap::from([
            ("train.learning_rate".to_string(), serde_json::json!(0.01)),
            (
                "train.numeric_embedding.periodic.sigma".to_string(),
                serde_json::json!(12.5),
            ),
            ("train.hidden".to_string(), serde_json::json!([128, 64])),
            (
                "train.lr_schedule.step".to_string(),
                serde_json::json!({"every": 5, "gamma": 0.5}),
            ),
        ]);
        let tuned = apply_params(&base, &params).unwrap();
        assert_eq!(tuned.learning_rate, 0.01);
        assert_eq!(tuned.hidden, vec![128, 64]);
        let NumericEmbedding::Periodic(p) = tuned.numeric_embedding else {
            panic!("{:?}", tuned.numeric_embedding)
        };
        assert_eq!((p.sigma, p.frequencies, p.dim), (12.5, 16, 16));
        assert!(matches!(
            tuned.lr_schedule,
            LrSchedule::Step { every: 5, .. }
        ));
        // Untouched fields keep their values.
        assert_eq!(tuned.batch_size, base.batch_size);
    }

    #[test]
    fn bad_params_name_the_key() {
        let base = TrainSpec::default();
        let err = apply_params(
            &base,
            &BTreeMap::from([("evaluate.threshold".to_string(), serde_json::json!(0.3))]),
        )
        .unwrap_err();
        assert!(err.contains("only `train.*`"), "{err}");
        let err = apply_params(
            &base,
            &BTreeMap::from([("train.batch_size".to_string(), serde_json::json!("big"))]),
        )
        .unwrap_err();
        assert!(err.contains("train.batch_size"), "{err}");
    }

    #[test]
    fn a_space_whose_ends_break_the_train_section_is_refused() {
        let spec = TuneSpec {
            space: BTreeMap::from([(
                "train.dropout".to_string(),
                Distribution::Uniform([0.0, 1.5]),
            )]),
            trials: 4,
            parallelism: 2,
            metric: TuneMetric::ValAuc,
            sampler: Sampler::Random,
            seed: 1,
            pruning: None,
        };
        let err = spec.check(&TrainSpec::default()).unwrap_err();
        assert!(err.starts_with("tune.space.train.dropout: "), "{err}");
    }
}
