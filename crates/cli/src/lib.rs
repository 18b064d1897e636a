//! # kiln-cli
//!
//! The `kiln` command runs the whole pipeline in-process, in DAG order, with the
//! same step libraries the per-step binaries use (it never shells out), or any one
//! step alone.

pub mod report;

use std::time::{Duration, Instant};

use kiln_core::Result;
use kiln_core::manifest::CacheDecision;
use kiln_core::runtime::StepContext;
use kiln_core::step::StepOutcome;
pub use kiln_train::TrainOptions;

/// The lifecycle in DAG order. Steps not yet built are listed so that `kiln run` can
/// say what it skipped; the Argo template must follow the same order.
pub const PIPELINE: &[&str] = &[
    "prepare", "validate", "tune", "train", "evaluate", "fairness", "register",
];

/// Whether a step exists in this build.
pub fn is_available(step: &str) -> bool {
    PIPELINE.contains(&step)
}

/// Runs one step by name.
pub async fn run_step(step: &str, ctx: &StepContext, train: &TrainOptions) -> Result<StepOutcome> {
    match step {
        "prepare" => kiln_prepare::run(ctx).await,
        "validate" => kiln_validate::run(ctx).await,
        "tune" => {
            let options = kiln_tune::TuneOptions {
                device: train.device,
                stop: train.stop.clone(),
            };
            kiln_tune::run(ctx, &options).await
        }
        "train" => kiln_train::run(ctx, train).await,
        "evaluate" => kiln_evaluate::run(ctx).await,
        "fairness" => kiln_fairness::run(ctx).await,
        "register" => kiln_register::run(ctx).await,
        other => Err(not_available(other)),
    }
}

/// Why a step would run or be skipped, without running it.
pub async fn explain_cache(step: &str, ctx: &StepContext) -> Result<CacheDecision> {
    match step {
        "prepare" => kiln_prepare::plan(ctx).await?.cache_decision().await,
        "validate" => kiln_validate::plan(ctx).await?.cache_decision().await,
        "tune" => kiln_tune::plan(ctx).await?.cache_decision().await,
        "train" => kiln_train::plan(ctx).await?.cache_decision().await,
        "evaluate" => kiln_evaluate::plan(ctx).await?.cache_decision().await,
        "fairness" => kiln_fairness::plan(ctx).await?.cache_decision().await,
        "register" => kiln_register::plan(ctx).await?.cache_decision().await,
        other => Err(not_available(other)),
    }
}

fn not_available(step: &str) -> kiln_core::Error {
    if PIPELINE.contains(&step) {
        kiln_core::Error::usage(format!(
            "step `{step}` is not implemented in this version of kiln"
        ))
    } else {
        kiln_core::Error::usage(format!(
            "unknown step `{step}` (steps: {})",
            PIPELINE.join(", ")
        ))
    }
}

/// What happened to one step of `kiln run`.
#[derive(Debug)]
pub struct StepReport {
    pub step: String,
    pub status: &'static str,
    pub elapsed: Duration,
    pub location: String,
}

/// Runs every available step in DAG order; stops at the first failure. With MLflow
/// tracking on, the MLflow run ends FINISHED or FAILED with it.
pub async fn run_pipeline(ctx: &StepContext, train: &TrainOptions) -> Result<Vec<StepReport>> {
    let result = run_steps(ctx, train).await;
    let finished = kiln_mlflow::finish_run(ctx, result.is_ok()).await;
    let reports = result?;
    finished?;
    Ok(reports)
}

async fn run_steps(ctx: &StepContext, train: &TrainOptions) -> Result<Vec<StepReport>> {
    let mut reports = Vec::new();
    for step in PIPELINE {
        if !is_available(step) {
            reports.push(StepReport {
                step: (*step).to_string(),
                status: "not built",
                elapsed: Duration::ZERO,
                location: String::new(),
            });
            continue;
        }
        if *step == "validate" && ctx.spec.spec.validation.is_none() {
            tracing::warn!("the spec has no `validation.suite`: validate skipped");
            reports.push(StepReport {
                step: (*step).to_string(),
                status: "no suite",
                elapsed: Duration::ZERO,
                location: String::new(),
            });
            continue;
        }
        if *step == "tune" && ctx.spec.spec.tune.is_none() {
            reports.push(StepReport {
                step: (*step).to_string(),
                status: "no search",
                elapsed: Duration::ZERO,
                location: String::new(),
            });
            continue;
        }
        tracing::info!(step, "starting");
        let started = Instant::now();
        let outcome = run_step(step, ctx, train).await?;
        reports.push(StepReport {
            step: (*step).to_string(),
            status: if outcome.cached() { "cached" } else { "ran" },
            elapsed: started.elapsed(),
            location: ctx.run.uri_of(step),
        });
    }
    Ok(reports)
}

/// The end-of-run summary table.
pub fn format_summary(reports: &[StepReport], run_uri: &str) -> String {
    let mut out = format!(
        "{:<10} {:<10} {:>8}  {}\n",
        "step", "status", "time", "outputs"
    );
    for r in reports {
        let time = if matches!(r.status, "not built" | "no suite" | "no search") {
            "-".to_string()
        } else {
            format!("{:.2}s", r.elapsed.as_secs_f64())
        };
        out.push_str(&format!(
            "{:<10} {:<10} {:>8}  {}\n",
            r.step, r.status, time, r.location
        ));
    }
    out.push_str(&format!("run: {run_uri}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unbuilt_steps_are_usage_errors() {
        assert!(
            not_available("train")
                .to_string()
                .contains("not implemented")
        );
        assert!(
            not_available("bake")
                .to_string()
                .contains("unknown step `bake`")
        );
        assert_eq!(not_available("bake").class().code(), 2);
    }

    #[test]
    fn summary_lists_every_step() {
        let reports = vec![StepReport {
            step: "prepare".into(),
            status: "cached",
            elapsed: Duration::from_millis(20),
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
