//! `rollout.json`: every check with the numbers it saw, each traffic change, the
//! decision and the timings.

use serde::{Deserialize, Serialize};

use crate::analysis::{Measurement, Verdict};
use crate::settings::Settings;

pub const FORMAT_VERSION: u32 = 1;

/// How the rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The canary took all the traffic and the alias.
    Promoted,
    /// Failed checks (or a canary that never became ready): traffic back to stable,
    /// the alias on the stable version.
    RolledBack,
    /// The analysis could not judge (no data, Prometheus or the router unreachable):
    /// traffic back to stable, the alias untouched, nothing promoted.
    Halted,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// 1, 2, …
    pub n: u32,
    pub at: String,
    /// Seconds since the canary got traffic.
    pub elapsed_s: f64,
    pub canary: Measurement,
    pub stable: Measurement,
    pub verdict: Verdict,
    /// Each crossed threshold, or what data was missing.
    pub reasons: Vec<String>,
    pub passed_so_far: u32,
    pub failed_so_far: u32,
}

/// One change of the canary's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficChange {
    pub at: String,
    pub elapsed_s: f64,
    pub canary_percent: u8,
    pub why: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: String,
    pub at: String,
    /// Seconds since the rollout started.
    pub elapsed_s: f64,
    /// The process exit code this decision gives.
    pub exit_code: u8,
}

/// An alias move the rollout made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasMove {
    pub alias: String,
    pub from: Option<String>,
    pub to: String,
}

/// The whole of `rollout.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format_version: u32,
    pub model: String,
    pub alias: String,
    pub canary_version: String,
    pub stable_version: String,
    pub router: String,
    pub prometheus: String,
    pub settings: Settings,
    pub started_at: String,
    pub finished_at: String,
    /// Seconds from the start until the canary was ready.
    pub ready_after_s: Option<f64>,
    pub traffic: Vec<TrafficChange>,
    pub checks: Vec<Check>,
    pub decision: Decision,
    pub alias_change: Option<AliasMove>,
}

impl Report {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report serialises");
        text.push('\n');
        text
    }
}
