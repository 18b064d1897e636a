//! `validate/report.json`: Great Expectations-shaped results of the suite on the train
//! and test tables, and drift of test against train.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Artifact;

type Json = Value;

/// One expectation of a suite, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpectationConfig {
    /// The expectation type, e.g. `expect_column_values_to_not_be_null`.
    #[serde(rename = "type")]
    pub kind: String,
    pub kwargs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Value>,
    /// GE 1.x's own severity field; `meta.severity` is read too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

impl ExpectationConfig {
    /// `warning` expectations are reported but never fail the step.
    pub fn is_warning(&self) -> bool {
        let meta = self.meta.get("severity").and_then(Value::as_str);
        matches!(self.severity.as_deref().or(meta), Some("warning" | "info"))
    }

    /// The `column` kwarg, when the expectation has one.
    pub fn column(&self) -> Option<&str> {
        self.kwargs.get("column").and_then(Value::as_str)
    }
}

/// GE's `exception_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExceptionInfo {
    pub raised_exception: bool,
    pub exception_message: Option<String>,
    pub exception_traceback: Option<String>,
}

/// The result of one expectation, in GE's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpectationResult {
    pub success: bool,
    pub expectation_config: ExpectationConfig,
    pub result: Map<String, Json>,
    pub exception_info: ExceptionInfo,
    /// `kiln.seconds`: time spent on this expectation (its own per-row work, its share
    /// of the shared column statistics, and its verdict).
    pub meta: Map<String, Json>,
}

impl ExpectationResult {
    /// Whether this result fails the step (a failure not marked `warning`).
    pub fn blocks(&self) -> bool {
        !self.success && !self.expectation_config.is_warning()
    }

    /// One line: column, expectation, observed vs expected.
    pub fn describe(&self) -> String {
        let config = &self.expectation_config;
        let target = config
            .column()
            .map(|c| format!("`{c}`"))
            .or_else(|| {
                config.kwargs.get("column_A").map(|a| {
                    format!(
                        "`{}`,`{}`",
                        a.as_str().unwrap_or(""),
                        config
                            .kwargs
                            .get("column_B")
                            .and_then(Json::as_str)
                            .unwrap_or("")
                    )
                })
            })
            .or_else(|| config.kwargs.get("column_list").map(|l| l.to_string()))
            .unwrap_or_else(|| "table".to_string());
        let observed = if let Some(e) = &self.exception_info.exception_message {
            format!("error: {e}")
        } else if let Some(v) = self.result.get("observed_value") {
            format!("observed {}", short(v))
        } else if let Some(n) = self.result.get("unexpected_count") {
            let pct = self
                .result
                .get("unexpected_percent")
                .and_then(Json::as_f64)
                .unwrap_or(0.0);
            let sample: Vec<String> = self
                .result
                .get("partial_unexpected_list")
                .and_then(Json::as_array)
                .map(|l| l.iter().take(3).map(short).collect())
                .unwrap_or_default();
            format!(
                "{n} unexpected ({pct:.2} %){}",
                if sample.is_empty() {
                    String::new()
                } else {
                    format!(", e.g. {}", sample.join(", "))
                }
            )
        } else {
            "failed".to_string()
        };
        let mut expected: Vec<String> = config
            .kwargs
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "column"
                        | "column_A"
                        | "column_B"
                        | "column_list"
                        | "result_format"
                        | "catch_exceptions"
                        | "include_config"
                )
            })
            .map(|(k, v)| format!("{k}={}", short(v)))
            .collect();
        expected.sort();
        format!(
            "{target} {}: {observed}; expected {}",
            config.kind,
            if expected.is_empty() {
                "—".into()
            } else {
                expected.join(" ")
            }
        )
    }
}

fn short(v: &Json) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    }
}

/// GE's `statistics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Statistics {
    pub evaluated_expectations: u64,
    pub successful_expectations: u64,
    pub unsuccessful_expectations: u64,
    pub success_percent: Option<f64>,
}

/// A validation result, in GE's shape, with Kiln's details in `meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidationResult {
    pub success: bool,
    pub statistics: Statistics,
    pub results: Vec<ExpectationResult>,
    pub suite_name: String,
    pub meta: Map<String, Json>,
}

impl ValidationResult {
    /// Whether any non-warning expectation failed.
    pub fn blocking_failures(&self) -> Vec<&ExpectationResult> {
        self.results.iter().filter(|r| r.blocks()).collect()
    }

    /// A readable summary: the count that passed, then one line per failure.
    pub fn table(&self, title: &str) -> String {
        let mut out = format!(
            "{title}: {}/{} expectations passed ({} rows)\n",
            self.statistics.successful_expectations,
            self.statistics.evaluated_expectations,
            self.meta.get("rows").and_then(Json::as_u64).unwrap_or(0)
        );
        // Passing expectations are counted above; only the others get a line.
        for r in self.results.iter().filter(|r| !r.success) {
            let mark = if r.expectation_config.is_warning() {
                "warn"
            } else {
                "FAIL"
            };
            out.push_str(&format!("  {mark} {}\n", r.describe()));
        }
        if let Some(skipped) = self
            .meta
            .get("skipped_expectations")
            .and_then(Json::as_array)
            .filter(|s| !s.is_empty())
        {
            out.push_str(&format!(
                "  ({} unknown expectation types skipped)\n",
                skipped.len()
            ));
        }
        out
    }
}

/// One measurement on one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftMeasure {
    /// `psi`, `ks` or `linf`.
    pub method: String,
    pub value: f64,
    pub threshold: f64,
    pub drifted: bool,
}

/// The drift of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnDrift {
    pub column: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub measures: Vec<DriftMeasure>,
    /// `ok`, `drift`, or `insufficient_data` (fewer non-null values than `min_rows`).
    pub verdict: String,
}

/// Drift of every compared column, with the thresholds used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftReport {
    pub reference: String,
    pub current: String,
    pub min_rows: u64,
    pub columns: Vec<ColumnDrift>,
    /// Whether a drifted column fails the step.
    pub gate: bool,
    pub passed: bool,
}

impl DriftReport {
    pub fn drifted(&self) -> Vec<&ColumnDrift> {
        self.columns
            .iter()
            .filter(|c| c.verdict == "drift")
            .collect()
    }

    /// A readable table.
    pub fn table(&self) -> String {
        let mut out = format!("drift of {} against {}:\n", self.current, self.reference);
        for c in &self.columns {
            let measures: Vec<String> = c
                .measures
                .iter()
                .map(|m| format!("{} {:.4} (max {})", m.method, m.value, m.threshold))
                .collect();
            out.push_str(&format!(
                "  {:<18} {:<22} {:<11} n={}/{} {}\n",
                c.column,
                c.kind,
                c.verdict,
                c.reference_rows,
                c.current_rows,
                measures.join(", ")
            ));
        }
        out
    }
}

/// `validate/report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidateReport {
    #[serde(default = "super::first_version")]
    pub format_version: u32,
    pub passed: bool,
    pub suite: String,
    pub train: ValidationResult,
    pub test: ValidationResult,
    pub drift: Option<DriftReport>,
}

impl ValidateReport {
    /// One line per blocking failure.
    pub fn failures(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (split, result) in [("train", &self.train), ("test", &self.test)] {
            lines.extend(
                result
                    .blocking_failures()
                    .iter()
                    .map(|r| format!("{split}: {}", r.describe())),
            );
        }
        if let Some(d) = self.drift.as_ref().filter(|d| d.gate) {
            for c in d.drifted() {
                let over: Vec<String> = c
                    .measures
                    .iter()
                    .filter(|m| m.drifted)
                    .map(|m| format!("{} {:.4} > {}", m.method, m.value, m.threshold))
                    .collect();
                lines.push(format!(
                    "test: `{}` drifted from train: {}",
                    c.column,
                    over.join(", ")
                ));
            }
        }
        lines
    }
}

impl Artifact for ValidateReport {
    const STEP: &'static str = "validate";
    const FILE: &'static str = "report.json";
    const FORMAT_VERSION: u32 = 1;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl super::Verdict for ValidateReport {
    fn passed(&self) -> bool {
        self.passed
    }
    fn failures(&self) -> Vec<String> {
        ValidateReport::failures(self)
    }
}
