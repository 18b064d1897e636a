//! `register/decision.json`: each gate's verdict and the version registered.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Artifact;

/// A registered version, as the decision records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Registered {
    /// `mlflow` or `local`.
    pub backend: String,
    pub model: String,
    pub version: String,
    pub alias: String,
    pub source: String,
    /// True when this run's model was already registered (re-running register).
    pub reused: bool,
}

/// One gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateVerdict {
    pub gate: String,
    /// What the gate requires (`{"min": 0.85}`, `"passed"`, the champion's score).
    pub threshold: Value,
    /// What this run has.
    pub observed: Value,
    pub passed: bool,
}

/// `decision.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    pub model: String,
    pub run: String,
    pub gates: Vec<GateVerdict>,
    pub passed: bool,
    /// The version registered (or reused); `null` when a gate failed.
    pub registered: Option<Registered>,
    pub decided_at: String,
}

impl Decision {
    /// One line per failed gate.
    pub fn failures(&self) -> Vec<String> {
        self.gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| {
                format!(
                    "gate `{}`: observed {}, required {}",
                    g.gate, g.observed, g.threshold
                )
            })
            .collect()
    }
}

impl Artifact for Decision {
    const STEP: &'static str = "register";
    const FILE: &'static str = "decision.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl super::Verdict for Decision {
    fn passed(&self) -> bool {
        self.passed
    }
    fn failures(&self) -> Vec<String> {
        Decision::failures(self)
    }
}
