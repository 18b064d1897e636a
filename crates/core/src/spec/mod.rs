//! The pipeline spec: one YAML or JSON file that describes a project end to end.
//!
//! The types here are the contract: unknown fields are errors that name the field and
//! the file, and `kiln spec schema` prints a JSON Schema generated from these types so
//! that editors validate the file as it is written.

mod data;
mod derived;
mod gates;
mod load;
mod train;
mod transform;
mod tune;
mod validate;

pub use data::*;
pub use derived::{DerivedSpec, Expr};
pub use gates::*;
pub use train::*;
pub use transform::*;

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
    /// Hyperparameter search before train (the tune step runs only with this section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
    /// Model and training hyperparameters for the train step.
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

impl PipelineSpec {
    /// The column spec of a named column.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.schema.iter().find(|c| c.name == name)
    }

    /// The columns of prepare's tables before `row_id` and `event_timestamp`: the
    /// schema's, then each derived column (`transform.derived`, nullable float).
    pub fn table_columns(&self) -> Vec<ColumnSpec> {
        let derived = self.transform.derived.iter().map(|d| ColumnSpec {
            name: d.name.clone(),
            dtype: ColumnType::Float,
            nullable: true,
        });
        self.schema.iter().cloned().chain(derived).collect()
    }

    /// The JSON Schema of the spec file, for editors and `kiln spec schema`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(PipelineSpec)).unwrap_or(serde_json::Value::Null)
    }

    /// Whether `path` (`section` or `section.field`, as steps name what they hash in
    /// [`fingerprint`](Self::fingerprint)) names a field of the spec, by its JSON Schema:
    /// a misspelt name would hash as `null` and never invalidate a cache.
    pub fn has_field(path: &str) -> bool {
        let schema = Self::json_schema();
        let resolve = |node: &serde_json::Value| -> Option<serde_json::Value> {
            // An optional section is `anyOf: [{$ref}, {type: null}]`; a required one a `$ref`.
            let reference = node.get("$ref").or_else(|| {
                node.get("anyOf")?
                    .as_array()?
                    .iter()
                    .find_map(|alternative| alternative.get("$ref"))
            });
            match reference.and_then(|r| r.as_str()) {
                Some(r) => schema.pointer(r.trim_start_matches('#')).cloned(),
                None => Some(node.clone()),
            }
        };
        let mut node = schema.clone();
        for part in path.split('.') {
            let Some(next) = resolve(&node).and_then(|n| n.get("properties")?.get(part).cloned())
            else {
                return false;
            };
            node = next;
        }
        true
    }

    /// A stable sha256 over the named sections (top-level, or one field of one as
    /// `section.field`), so that each step reruns only when the part of the spec it
    /// reads changes.
    pub fn fingerprint(&self, sections: &[&str]) -> String {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let mut picked = serde_json::Map::new();
        for section in sections {
            let pointer = format!("/{}", section.replace('.', "/"));
            picked.insert(
                (*section).to_string(),
                value
                    .pointer(&pointer)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            );
        }
        // serde_json's map is ordered by key, so the text is canonical.
        let text = serde_json::Value::Object(picked).to_string();
        crate::store::sha256_hex(text.as_bytes())
    }
}
