//! The artifacts one step writes and another reads, as one serde type each.
//!
//! Steps never import each other, so the types they exchange live here: the producer
//! serialises the struct, every consumer (the next step, `kiln report`, MLflow
//! tracking, the model server) deserialises the same struct. Each carries a
//! `format_version`; a reader refuses a version newer than it knows, with a one-line
//! error that names the file. Each has a JSON Schema ([`schemas`], committed under
//! `docs/contracts/` and checked by a test against these types) for tools outside Kiln.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::store::ArtifactStore;

pub mod bundle;
pub mod evaluate;
pub mod fairness;
pub mod measures;
pub mod prepare;
pub mod register;
pub mod tracking;
pub mod train;
pub mod tune;
pub mod validate;

/// An artifact a step writes for others to read.
pub trait Artifact: Serialize + DeserializeOwned + JsonSchema {
    /// The step folder that holds it (`evaluate`).
    const STEP: &'static str;
    /// Its path inside the step folder (`metrics.json`).
    const FILE: &'static str;
    /// The format this build writes; a reader accepts it and every older one.
    const FORMAT_VERSION: u32;

    /// The version the artifact says it has.
    fn format_version(&self) -> u32;

    /// `STEP/FILE`, relative to a run root (`FILE` for an artifact of the run itself).
    fn path() -> String {
        if Self::STEP.is_empty() {
            Self::FILE.to_string()
        } else {
            format!("{}/{}", Self::STEP, Self::FILE)
        }
    }
}

/// An artifact that records a step's verdict: its gate reads it back
/// ([`verdict_gate`](crate::driver::verdict_gate)).
pub trait Verdict: Artifact {
    /// Whether every check passed.
    fn passed(&self) -> bool;
    /// One line per failed check.
    fn failures(&self) -> Vec<String>;
}

/// The version of artifacts written before versions were recorded.
pub(crate) fn first_version() -> u32 {
    1
}

/// Reads an artifact from its step folder, refusing a format newer than this build's.
pub async fn read<T: Artifact>(step_dir: &ArtifactStore) -> Result<T> {
    read_at(step_dir, T::FILE).await
}

/// [`read`] from a run root (`<run>/STEP/FILE`).
pub async fn read_from_run<T: Artifact>(run: &ArtifactStore) -> Result<T> {
    read_at(run, &T::path()).await
}

/// [`read`] from another place than its step folder: `rel` under `dir` (a model
/// bundle's `metadata.json` in a registry version's folder).
pub async fn read_at<T: Artifact>(dir: &ArtifactStore, rel: &str) -> Result<T> {
    parse(&dir.get(rel).await?, &dir.uri_of(rel))
}

/// Parses an artifact's bytes (for callers that already hold them).
pub fn parse<T: Artifact>(bytes: &[u8], uri: &str) -> Result<T> {
    #[expect(clippy::disallowed_methods, reason = "the contracts' own reader")]
    let value: T = crate::store::parse_json(bytes, uri)?;
    check_version(&value, uri)?;
    Ok(value)
}

fn check_version<T: Artifact>(value: &T, uri: &str) -> Result<()> {
    let found = value.format_version();
    if found > T::FORMAT_VERSION {
        return Err(Error::Corrupt {
            uri: uri.to_string(),
            message: format!(
                "format_version {found} is newer than this Kiln reads ({}): upgrade Kiln",
                T::FORMAT_VERSION
            ),
        });
    }
    Ok(())
}

/// The JSON Schema of one artifact type.
pub fn schema_of<T: Artifact>() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".into(),
            format!("https://kiln.dev/contracts/{}", schema_file(&T::path())).into(),
        );
        object.insert(
            "description".into(),
            format!(
                "Kiln `{}` (format_version {}).{}",
                T::path(),
                T::FORMAT_VERSION,
                object
                    .get("description")
                    .and_then(|d| d.as_str())
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default()
            )
            .into(),
        );
    }
    schema
}

/// The file a schema is kept in under `docs/contracts/` (`evaluate.metrics.schema.json`).
pub fn schema_file(path: &str) -> String {
    format!(
        "{}.schema.json",
        path.trim_end_matches(".json").replace('/', ".")
    )
}

/// Every cross-step artifact: its path in a run and its JSON Schema.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    fn entry<T: Artifact>() -> (String, serde_json::Value) {
        (T::path(), schema_of::<T>())
    }
    vec![
        entry::<validate::ValidateReport>(),
        entry::<train::TrainSummary>(),
        entry::<train::TrainHistory>(),
        entry::<crate::spec::BestConfig>(),
        entry::<bundle::BundleMetadata>(),
        entry::<evaluate::EvaluationReport>(),
        entry::<fairness::FairnessReport>(),
        entry::<fairness::Thresholds>(),
        entry::<register::Decision>(),
        entry::<tracking::TrackedRun>(),
    ]
}

#[cfg(test)]
mod tests;
