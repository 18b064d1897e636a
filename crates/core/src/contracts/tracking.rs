//! `<run>/mlflow.json`: the link from a pipeline run to its MLflow run, which every
//! step's tracking, register (the version's run) and tune (child runs) share.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Artifact;

/// The MLflow run of a pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedRun {
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    pub tracking_uri: String,
    pub experiment_id: String,
    pub run_id: String,
    pub artifact_uri: String,
    /// Step → `finished_at` of the manifest last logged (a cached step is not logged twice).
    #[serde(default)]
    pub logged: BTreeMap<String, String>,
    /// Child key → the child run's id (a child already logged is not logged twice).
    #[serde(default)]
    pub children: BTreeMap<String, String>,
}

impl Artifact for TrackedRun {
    /// At the run root, not in a step folder.
    const STEP: &'static str = "";
    const FILE: &'static str = "mlflow.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}
