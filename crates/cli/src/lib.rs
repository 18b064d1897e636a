//! # kiln-cli
//!
//! The `kiln` command runs the whole pipeline in-process, in DAG order, with the
//! same step libraries the per-step binaries use (it never shells out), or any one
//! step alone.

pub mod lineage;
pub mod report;
pub mod verify;

use kiln_core::Result;
use kiln_core::driver::{self, Control, PipelineStep, StepReport, StepStatus};

/// The lifecycle's DAG, in order: the one place it is defined. `kiln run` runs it,
/// `kiln <step>` and `kiln explain-cache <step>` find steps in it, and the Argo
/// template must list the same steps in the same order (tests/manifests.rs checks).
/// A new step is a crate with a [`PipelineStep`] and one line here.
pub const PIPELINE: &[&dyn PipelineStep] = &[
    &kiln_prepare::Prepare,
    &kiln_validate::Validate,
    &kiln_tune::Tune,
    &kiln_train::Train,
    &kiln_evaluate::Evaluate,
    &kiln_fairness::Fairness,
    &kiln_register::Register,
];

/// The DAG's step names, in order.
pub fn step_names() -> Vec<&'static str> {
    PIPELINE.iter().map(|s| s.name()).collect()
}

/// The step of the DAG named `name` (a usage error naming the steps otherwise).
pub fn step(name: &str) -> Result<&'static dyn PipelineStep> {
    driver::find(PIPELINE, name)
}

/// Runs one step by name through the driver (MLflow tracking observes it).
pub async fn run_step(
    name: &str,
    ctx: &kiln_core::context::StepContext,
    control: Control,
) -> Result<kiln_core::step::StepOutcome> {
    kiln_runtime::driver(control).run(step(name)?, ctx).await
}

/// Why a step would run or be skipped, without running it.
pub async fn explain_cache(
    name: &str,
    ctx: &kiln_core::context::StepContext,
) -> Result<kiln_core::manifest::CacheDecision> {
    kiln_runtime::driver(Control::default())
        .explain(step(name)?, ctx)
        .await
}

/// Runs every step in DAG order; stops at the first failure. With MLflow tracking on,
/// the MLflow run ends FINISHED or FAILED with it.
pub async fn run_pipeline(
    ctx: &kiln_core::context::StepContext,
    control: Control,
) -> Result<Vec<StepReport>> {
    kiln_runtime::driver(control)
        .run_pipeline(PIPELINE, ctx)
        .await
}

/// The end-of-run summary table.
pub fn format_summary(reports: &[StepReport], run_uri: &str) -> String {
    let mut out = format!(
        "{:<10} {:<10} {:>8}  {}\n",
        "step", "status", "time", "outputs"
    );
    for r in reports {
        let time = if matches!(r.status, StepStatus::Skipped(_)) {
            "-".to_string()
        } else {
            format!("{:.2}s", r.elapsed.as_secs_f64())
        };
        out.push_str(&format!(
            "{:<10} {:<10} {:>8}  {}\n",
            r.step,
            r.status.label(),
            time,
            r.location
        ));
    }
    out.push_str(&format!("run: {run_uri}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_step_is_a_usage_error_that_names_the_steps() {
        let err = step("bake").err().expect("no step `bake`");
        assert_eq!(
            err.to_string(),
            "unknown step `bake` (steps: prepare, validate, tune, train, evaluate, fairness, register)"
        );
        assert_eq!(err.class().code(), 2);
        assert_eq!(step("train").map(|s| s.name()).ok(), Some("train"));
    }

    #[test]
    fn every_spec_section_a_step_hashes_names_a_field_of_the_spec() {
        for (step, sections) in [
            ("prepare", kiln_prepare::SPEC_SECTIONS),
            ("validate", kiln_validate::SPEC_SECTIONS),
            ("tune", kiln_tune::SPEC_SECTIONS),
            ("train", kiln_train::SPEC_SECTIONS),
            ("evaluate", kiln_evaluate::SPEC_SECTIONS),
            ("fairness", kiln_fairness::SPEC_SECTIONS),
            ("register", kiln_register::SPEC_SECTIONS),
        ] {
            for section in sections {
                assert!(
                    kiln_core::PipelineSpec::has_field(section),
                    "{step} hashes `{section}`, which is not a field of the spec"
                );
            }
        }
        for misspelt in ["evaluate.treshold", "trian", "train.epochs.x"] {
            assert!(!kiln_core::PipelineSpec::has_field(misspelt), "{misspelt}");
        }
        assert!(
            kiln_core::PipelineSpec::has_field("tune.trials"),
            "an optional section's field"
        );
    }

    #[test]
    fn summary_lists_every_step() {
        let reports = vec![StepReport {
            step: "prepare",
            status: StepStatus::Cached,
            elapsed: std::time::Duration::from_millis(20),
            location: "r/prepare".into(),
        }];
        let text = format_summary(&reports, "r");
        assert!(
            text.contains("prepare    cached        0.02s  r/prepare"),
            "{text}"
        );
        assert!(text.ends_with("run: r\n"));
    }
}
