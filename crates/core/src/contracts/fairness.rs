//! What fairness writes: `fairness/report.json` (groups, disparities, gates and what
//! mitigation changed) and `fairness/thresholds.json` (mitigation's group thresholds,
//! which register copies into the model version's decision policy).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::contracts::measures::Interval;
use crate::spec::FairnessMetric;

pub use crate::decision::GroupThresholds;

use super::Artifact;

/// `fairness/thresholds.json`.
pub type Thresholds = GroupThresholds;

/// One group's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupStats {
    pub group: String,
    pub count: u64,
    pub positives: u64,
    /// Below `min_group_count`: shown, but kept out of disparities and gates.
    pub excluded: bool,
    pub selection_rate: f64,
    pub tpr: Option<f64>,
    pub fpr: Option<f64>,
    pub precision: Option<f64>,
}

/// Disparities between the included groups of one attribute.
pub type Disparities = BTreeMap<FairnessMetric, Option<f64>>;

/// The analysis of one attribute (or intersection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttributeReport {
    pub attribute: String,
    pub groups: Vec<GroupStats>,
    pub disparities: Disparities,
    /// Bootstrap 95 % intervals of the disparities.
    pub intervals: BTreeMap<FairnessMetric, Interval>,
}

/// The verdict of one gate on one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    pub metric: FairnessMetric,
    pub attribute: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `null` when the metric is undefined (fewer than two comparable groups): the gate fails.
    pub observed: Option<f64>,
    pub passed: bool,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FairnessReport {
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    pub rows: u64,
    pub min_group_count: u64,
    pub attributes: Vec<AttributeReport>,
    pub gates: Vec<GateResult>,
    pub passed: bool,
    /// With `fairness.mitigation`: the thresholds and their effect; the groups and
    /// gates above then describe the mitigated decisions (what ships).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<MitigationReport>,
}

/// Accuracy and the constrained ratio of a set of decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionSummary {
    pub accuracy: f64,
    /// Demographic parity ratio or equal opportunity ratio of the mitigated attribute.
    pub ratio: Option<f64>,
}

/// Before and after mitigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BeforeAfter {
    pub before: DecisionSummary,
    pub after: Option<DecisionSummary>,
}

/// What mitigation chose and what it changed, on the validation rows it was chosen
/// on and on the test rows it is judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MitigationReport {
    /// False when no thresholds satisfy the constraint (the model is judged unmitigated).
    pub feasible: bool,
    pub thresholds: Option<GroupThresholds>,
    pub validation: BeforeAfter,
    pub test: BeforeAfter,
    /// Test accuracy lost to mitigation (before − after).
    pub accuracy_cost: Option<f64>,
}

impl Artifact for FairnessReport {
    const STEP: &'static str = "fairness";
    const FILE: &'static str = "report.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl Artifact for GroupThresholds {
    const STEP: &'static str = "fairness";
    const FILE: &'static str = crate::decision::GROUP_THRESHOLDS;
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl FairnessReport {
    /// One line per failed gate, for the error report.
    pub fn failures(&self) -> Vec<String> {
        self.gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| {
                let bound = match (g.min, g.max) {
                    (Some(lo), Some(hi)) => format!("in [{lo}, {hi}]"),
                    (Some(lo), None) => format!(">= {lo}"),
                    (None, Some(hi)) => format!("<= {hi}"),
                    (None, None) => String::new(),
                };
                let observed = g
                    .observed
                    .map_or("undefined".to_string(), |v| format!("{v:.4}"));
                format!(
                    "{:?} of `{}` is {observed}, must be {bound}",
                    g.metric, g.attribute
                )
            })
            .collect()
    }

    /// A readable table for the terminal.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut out = String::new();
        for a in &self.attributes {
            out.push_str(&format!(
                "{}\n  {:<28} {:>7} {:>9} {:>6} {:>6} {:>9}\n",
                a.attribute, "group", "count", "selection", "tpr", "fpr", "precision"
            ));
            for g in &a.groups {
                let flag = if g.excluded {
                    " (too small, not compared)"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "  {:<28} {:>7} {:>9.3} {:>6} {:>6} {:>9}{flag}\n",
                    g.group,
                    g.count,
                    g.selection_rate,
                    f(g.tpr),
                    f(g.fpr),
                    f(g.precision)
                ));
            }
            for (metric, value) in &a.disparities {
                out.push_str(&format!("  {:<34} {}\n", format!("{metric:?}"), f(*value)));
            }
        }
        for g in &self.gates {
            out.push_str(&format!(
                "gate {:?} on `{}`: {}\n",
                g.metric,
                g.attribute,
                if g.passed { "passed" } else { "FAILED" }
            ));
        }
        out
    }
}

impl super::Verdict for FairnessReport {
    fn passed(&self) -> bool {
        self.passed
    }
    fn failures(&self) -> Vec<String> {
        FairnessReport::failures(self)
    }
}
