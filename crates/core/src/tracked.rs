//! What a step gives experiment tracking beyond its manifest. Every step's summary
//! numbers, input hashes and spec fingerprint are tracked from the manifest the driver
//! hands its observers; a step that has more to say (train's per-epoch history and
//! hyperparameters, evaluate's metrics, the reports worth keeping) says it through
//! [`PipelineStep::tracked`](crate::driver::PipelineStep::tracked), so that a tracker
//! never matches step names or reads a step's files to find out.

use serde_json::Value;

/// One point of a metric: `<step>.<name>` at `step` (an epoch; 0 for a final value).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMetric {
    pub name: String,
    pub value: f64,
    pub step: i64,
}

/// What a step adds to its manifest for experiment tracking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracked {
    /// Metrics named without the step's prefix. A name here replaces the summary's
    /// value of the same name (a history supersedes its best point).
    pub metrics: Vec<TrackedMetric>,
    /// Parameters (`<section>.<field>` = value), logged once per tracked run.
    pub params: Vec<(String, String)>,
    /// Outputs to keep as artifacts, as paths in the step's folder. Plots
    /// (`plots/*.svg`) are kept for every step without being named here.
    pub artifacts: Vec<String>,
    /// Whether the step's tables and raw inputs are the run's datasets (prepare's):
    /// MLflow lists them, with their digests, as the run's dataset inputs.
    pub datasets: bool,
    /// Runs nested under the pipeline's run (tune's trials).
    pub children: Vec<TrackedChild>,
}

/// A run nested under the pipeline's tracked run (a tune trial).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedChild {
    /// Stable across reruns and unique in the pipeline run, e.g. the trial's index and
    /// a hash of its result: a child already logged under its key is skipped.
    pub key: String,
    pub name: String,
    pub params: Vec<(String, String)>,
    /// Metric histories (`step` = epoch) and final values, named as they are.
    pub metrics: Vec<TrackedMetric>,
    pub tags: Vec<(String, String)>,
    /// When the child's metrics were recorded, in milliseconds since the epoch.
    pub at: i64,
}

impl Tracked {
    /// What a step whose report is all tracking keeps of it gives: that artifact.
    pub fn report<T: crate::contracts::Artifact>() -> Tracked {
        Tracked::default().artifacts([T::FILE])
    }

    /// Adds final values (step 0), skipping the absent ones.
    pub fn finals<'a>(mut self, values: impl IntoIterator<Item = (&'a str, Option<f64>)>) -> Self {
        for (name, value) in values {
            if let Some(value) = value {
                self.metrics.push(TrackedMetric {
                    name: name.to_string(),
                    value,
                    step: 0,
                });
            }
        }
        self
    }

    /// Adds artifacts.
    pub fn artifacts<'a>(mut self, paths: impl IntoIterator<Item = &'a str>) -> Self {
        self.artifacts.extend(paths.into_iter().map(str::to_string));
        self
    }

    /// Adds a spec section's leaves as parameters named `<prefix>.<field>…` (strings
    /// as they are, other values as JSON; nulls left out).
    pub fn params_from(mut self, prefix: &str, section: &Value) -> Self {
        flatten_leaves(section, prefix, &mut self.params);
        self
    }
}

fn flatten_leaves(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                flatten_leaves(value, &format!("{prefix}.{key}"), out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_flatten_to_params_and_absent_finals_are_left_out() {
        let tracked = Tracked::default()
            .params_from(
                "train",
                &serde_json::json!({"epochs": 3, "optimizer": {"name": "adam"}, "seed": null}),
            )
            .finals([("auc", Some(0.9)), ("f1", None)])
            .artifacts(["report.json"]);
        assert_eq!(
            tracked.params,
            [
                ("train.epochs".to_string(), "3".to_string()),
                ("train.optimizer.name".to_string(), "adam".to_string())
            ]
        );
        assert_eq!(tracked.metrics.len(), 1);
        assert_eq!(tracked.metrics[0].name, "auc");
        assert_eq!(tracked.artifacts, ["report.json"]);
    }
}
