//! One driver for every pipeline step. A step says what it is ([`PipelineStep`]): its
//! name, when a spec skips it, its plan (the cache key: typed inputs whose serialised
//! form is the fingerprint), how it produces its outputs under the step protocol, and
//! its gate. The [`Driver`] runs plan → execute → observers → gate the same way for
//! all of them, alone or as the whole DAG; MLflow tracking is an [`Observer`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::context::StepContext;
use crate::error::{Error, Result};
use crate::manifest::CacheDecision;
use crate::spec::PipelineSpec;
use crate::step::{Step, StepOutcome};
use crate::tracked::Tracked;

/// Where training and tuning compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// burn's ndarray backend on the CPU (always available).
    #[default]
    Cpu,
    /// burn's CUDA backend on GPU 0 (builds with `--features cuda` only).
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(format!("unknown device `{other}` (cpu or cuda)")),
        }
    }
}

/// What the caller decides beyond the spec.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Where to compute.
    pub device: Device,
    /// Set on SIGTERM: long steps keep what they finished and stop with exit code 75.
    pub stop: Arc<AtomicBool>,
}

/// One step of the lifecycle, as the driver sees it.
pub trait PipelineStep: Sync {
    /// The step's name: its folder under the run root and its `kiln` subcommand.
    fn name(&self) -> &'static str;

    /// Why this spec does not ask for the step (`None`: it does). `kiln run` reports
    /// the reason and goes on.
    fn skipped(&self, _spec: &PipelineSpec) -> Option<&'static str> {
        None
    }

    /// Checks what the caller asked for before anything is read (a CUDA device on a
    /// build without CUDA, a search without a `tune:` section): a usage error at once.
    fn preflight(&self, _ctx: &StepContext, _control: &Control) -> Result<()> {
        Ok(())
    }

    /// The step with its cache key (reads its inputs' hashes; runs nothing).
    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>>;

    /// Produces the outputs of a planned step under the step protocol (or takes them
    /// from the cache).
    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>>;

    /// What experiment tracking keeps of the step beyond its manifest (see
    /// [`Tracked`]): nothing, unless the step says.
    fn tracked<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<Tracked>> {
        Box::pin(async { Ok(Tracked::default()) })
    }

    /// The step's gate, judged on its committed outputs (cached or new):
    /// [`Error::Gate`] when it failed.
    fn gate<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// How a step the driver ran ended.
#[derive(Debug)]
pub enum StepEnd<'a> {
    /// Its outputs are committed and its gate passed; `cached` when it reused them.
    Completed { cached: bool },
    /// It failed, its gate included: the error the driver returns.
    Failed(&'a Error),
}

/// Told about every step the driver starts, finishes (before its gate is judged, so
/// that a failed gate's report is tracked too) and ends, and about the end of a
/// pipeline.
pub trait Observer: Sync {
    /// The driver is about to check, plan and run a step. Cannot fail the step.
    fn step_started<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _step: &'a dyn PipelineStep,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The step ended, successfully or not (after its gate). Cannot fail the step.
    fn step_ended<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _step: &'a dyn PipelineStep,
        _end: &'a StepEnd<'a>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// A step's outputs are committed (ran or cached), as `outcome`'s manifest says.
    fn step_finished<'a>(
        &'a self,
        ctx: &'a StepContext,
        step: &'a dyn PipelineStep,
        outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<()>>;

    /// `kiln run` is about to run the DAG. Cannot fail the pipeline.
    fn pipeline_started<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// `kiln run` ended, with every step passed or not.
    fn pipeline_finished<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _succeeded: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// What happened to one step of a pipeline run.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: &'static str,
    pub status: StepStatus,
    pub elapsed: Duration,
    /// The step's folder (empty when skipped).
    pub location: String,
}

/// A step's status in a pipeline run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Ran,
    Cached,
    /// The spec does not ask for it, and why.
    Skipped(&'static str),
}

impl StepStatus {
    /// The word in `kiln run`'s summary.
    pub fn label(&self) -> &'static str {
        match self {
            StepStatus::Ran => "ran",
            StepStatus::Cached => "cached",
            StepStatus::Skipped(why) => why,
        }
    }
}

/// Runs steps: alone, or a DAG in order.
pub struct Driver<'a> {
    control: Control,
    observers: Vec<&'a dyn Observer>,
}

impl<'a> Driver<'a> {
    /// A driver with these controls and no observers.
    pub fn new(control: Control) -> Self {
        Driver {
            control,
            observers: Vec::new(),
        }
    }

    /// Adds an observer.
    pub fn observe(mut self, observer: &'a dyn Observer) -> Self {
        self.observers.push(observer);
        self
    }

    /// Checks, plans, executes, tells the observers, then judges the gate. The
    /// observers hear when the step starts and how it ended, whatever happened.
    pub async fn run(&self, step: &dyn PipelineStep, ctx: &StepContext) -> Result<StepOutcome> {
        for observer in &self.observers {
            observer.step_started(ctx, step).await;
        }
        let result = self.run_observed(step, ctx).await;
        let end = match &result {
            Ok(outcome) => StepEnd::Completed {
                cached: outcome.cached(),
            },
            Err(e) => StepEnd::Failed(e),
        };
        for observer in &self.observers {
            observer.step_ended(ctx, step, &end).await;
        }
        result
    }

    async fn run_observed(
        &self,
        step: &dyn PipelineStep,
        ctx: &StepContext,
    ) -> Result<StepOutcome> {
        step.preflight(ctx, &self.control)?;
        ctx.recall(step.name()).await;
        let planned = step.plan(ctx).await?;
        let outcome = step.execute(ctx, &self.control, planned).await?;
        for observer in &self.observers {
            observer.step_finished(ctx, step, &outcome).await?;
        }
        step.gate(ctx).await?;
        Ok(outcome)
    }

    /// Whether the step would be a cache hit, and why not, without running it.
    pub async fn explain(
        &self,
        step: &dyn PipelineStep,
        ctx: &StepContext,
    ) -> Result<CacheDecision> {
        ctx.recall(step.name()).await;
        step.plan(ctx).await?.cache_decision().await
    }

    /// Runs every step of `dag` in order; stops at the first failure. The observers
    /// hear how the pipeline ended either way.
    pub async fn run_pipeline(
        &self,
        dag: &[&dyn PipelineStep],
        ctx: &StepContext,
    ) -> Result<Vec<StepReport>> {
        for observer in &self.observers {
            observer.pipeline_started(ctx).await;
        }
        let result = self.run_steps(dag, ctx).await;
        let mut finished = Ok(());
        for observer in &self.observers {
            if let Err(e) = observer.pipeline_finished(ctx, result.is_ok()).await {
                finished = finished.and(Err(e));
            }
        }
        let reports = result?;
        finished?;
        Ok(reports)
    }

    async fn run_steps(
        &self,
        dag: &[&dyn PipelineStep],
        ctx: &StepContext,
    ) -> Result<Vec<StepReport>> {
        let mut reports = Vec::new();
        for step in dag {
            let name = step.name();
            if let Some(why) = step.skipped(&ctx.spec.spec) {
                tracing::info!(step = name, "skipped: {why}");
                reports.push(StepReport {
                    step: name,
                    status: StepStatus::Skipped(why),
                    elapsed: Duration::ZERO,
                    location: String::new(),
                });
                continue;
            }
            tracing::info!(step = name, "starting");
            let started = Instant::now();
            let outcome = self.run(*step, ctx).await?;
            reports.push(StepReport {
                step: name,
                status: if outcome.cached() {
                    StepStatus::Cached
                } else {
                    StepStatus::Ran
                },
                elapsed: started.elapsed(),
                location: ctx.run.uri_of(name),
            });
        }
        Ok(reports)
    }
}

/// The gate of a step whose committed artifact records its verdict (cached or new):
/// [`Error::Gate`] with one line per failure when it did not pass. `what` says what
/// failed (`data quality check(s) failed`).
pub async fn verdict_gate<T: crate::contracts::Verdict>(
    ctx: &StepContext,
    what: &str,
) -> Result<()> {
    // Through the contract: a report newer than this build is refused, not misread.
    let verdict: T = crate::contracts::read_from_run(&ctx.run).await?;
    if verdict.passed() {
        return Ok(());
    }
    let failures = verdict.failures();
    Err(Error::Gate {
        summary: format!(
            "{} {what}; see {}",
            failures.len(),
            ctx.run.uri_of(&T::path())
        ),
        failures,
    })
}

/// The step of `dag` named `name`, or a usage error that lists the names.
pub fn find<'d>(dag: &[&'d dyn PipelineStep], name: &str) -> Result<&'d dyn PipelineStep> {
    dag.iter()
        .copied()
        .find(|s| s.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = dag.iter().map(|s| s.name()).collect();
            Error::usage(format!(
                "unknown step `{name}` (steps: {})",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::spec::LoadedSpec;
    use crate::store::ArtifactStore;

    const SPEC: &str = r#"
name: demo
data: {format: csv, sources: [{uri: data.csv}]}
schema: [{name: x, type: float}, {name: y, type: string}]
label: {column: y, positive: "yes"}
split: {method: hash, test_fraction: 0.2}
transform: {numeric: [{column: x, standardize: true}]}
"#;

    fn context(run: &str) -> StepContext {
        StepContext::new(
            LoadedSpec::from_text(SPEC, "spec.yaml", &[]).unwrap(),
            ArtifactStore::open(run).unwrap(),
        )
    }

    /// A step that writes one file; its gate passes or fails; it may skip itself.
    struct Demo {
        name: &'static str,
        passes: bool,
        skip: bool,
        log: &'static Mutex<Vec<String>>,
    }

    impl PipelineStep for Demo {
        fn name(&self) -> &'static str {
            self.name
        }
        fn skipped(&self, _spec: &PipelineSpec) -> Option<&'static str> {
            self.skip.then_some("not asked for")
        }
        fn preflight(&self, _ctx: &StepContext, _control: &Control) -> Result<()> {
            self.log
                .lock()
                .unwrap()
                .push(format!("check {}", self.name));
            Ok(())
        }
        fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
            self.log.lock().unwrap().push(format!("plan {}", self.name));
            Box::pin(async move { Ok(ctx.step(self.name, &["split"], Vec::new(), &[])) })
        }
        fn execute<'a>(
            &'a self,
            _ctx: &'a StepContext,
            control: &'a Control,
            step: Step,
        ) -> BoxFuture<'a, Result<StepOutcome>> {
            self.log
                .lock()
                .unwrap()
                .push(format!("execute {} on {:?}", self.name, control.device));
            Box::pin(step.run(|w| async move {
                w.put_json("out.json", &serde_json::json!({"ok": true}))
                    .await?;
                Ok((w, serde_json::json!({})))
            }))
        }
        fn gate<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, Result<()>> {
            self.log.lock().unwrap().push(format!("gate {}", self.name));
            let passes = self.passes;
            Box::pin(async move {
                if passes {
                    Ok(())
                } else {
                    Err(Error::Gate {
                        summary: "1 gate failed".into(),
                        failures: vec!["demo".into()],
                    })
                }
            })
        }
    }

    struct Recorder(&'static Mutex<Vec<String>>);

    impl Observer for Recorder {
        fn step_started<'a>(
            &'a self,
            _ctx: &'a StepContext,
            step: &'a dyn PipelineStep,
        ) -> BoxFuture<'a, ()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("started {}", step.name()));
            Box::pin(async {})
        }
        fn step_ended<'a>(
            &'a self,
            _ctx: &'a StepContext,
            step: &'a dyn PipelineStep,
            end: &'a StepEnd<'a>,
        ) -> BoxFuture<'a, ()> {
            let how = match end {
                StepEnd::Completed { cached } => format!("completed (cached {cached})"),
                StepEnd::Failed(e) => format!("failed with exit {}", e.class().code()),
            };
            self.0
                .lock()
                .unwrap()
                .push(format!("ended {} {how}", step.name()));
            Box::pin(async {})
        }
        fn step_finished<'a>(
            &'a self,
            _ctx: &'a StepContext,
            step: &'a dyn PipelineStep,
            _outcome: &'a StepOutcome,
        ) -> BoxFuture<'a, Result<()>> {
            self.0
                .lock()
                .unwrap()
                .push(format!("observed {}", step.name()));
            Box::pin(async { Ok(()) })
        }
        fn pipeline_finished<'a>(
            &'a self,
            _ctx: &'a StepContext,
            succeeded: bool,
        ) -> BoxFuture<'a, Result<()>> {
            self.0.lock().unwrap().push(format!("finished {succeeded}"));
            Box::pin(async { Ok(()) })
        }
    }

    fn log() -> &'static Mutex<Vec<String>> {
        Box::leak(Box::new(Mutex::new(Vec::new())))
    }

    #[tokio::test]
    async fn runs_the_dag_in_order_and_observes_each_step_before_its_gate() {
        let log = log();
        let (a, b, c) = (
            Demo {
                name: "a",
                passes: true,
                skip: false,
                log,
            },
            Demo {
                name: "b",
                passes: true,
                skip: true,
                log,
            },
            Demo {
                name: "c",
                passes: false,
                skip: false,
                log,
            },
        );
        let recorder = Recorder(log);
        let control = Control {
            device: Device::Cpu,
            ..Control::default()
        };
        let driver = Driver::new(control).observe(&recorder);
        let ctx = context("memory://driver-order/run");
        let err = driver
            .run_pipeline(&[&a, &b, &c], &ctx)
            .await
            .expect_err("c's gate fails");
        assert_eq!(err.class().code(), 3);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "started a",
                "check a",
                "plan a",
                "execute a on Cpu",
                "observed a",
                "gate a",
                "ended a completed (cached false)",
                "started c",
                "check c",
                "plan c",
                "execute c on Cpu",
                "observed c",
                "gate c",
                "ended c failed with exit 3",
                "finished false",
            ]
        );
        // The failed gate's outputs are committed all the same; the skipped step wrote nothing.
        assert!(ctx.run.exists("c/manifest.json").await.unwrap());
        assert!(ctx.run.list("b").await.unwrap().is_empty());

        log.lock().unwrap().clear();
        let reports = driver.run_pipeline(&[&a, &b], &ctx).await.unwrap();
        let statuses: Vec<_> = reports.iter().map(|r| (r.step, r.status.label())).collect();
        assert_eq!(statuses, [("a", "cached"), ("b", "not asked for")]);
        assert_eq!(log.lock().unwrap().last().unwrap(), "finished true");
    }

    #[test]
    fn finds_steps_by_name() {
        let log = log();
        let a = Demo {
            name: "a",
            passes: true,
            skip: false,
            log,
        };
        let dag: [&dyn PipelineStep; 1] = [&a];
        assert_eq!(find(&dag, "a").unwrap().name(), "a");
        let err = find(&dag, "z").err().unwrap();
        assert_eq!(err.to_string(), "unknown step `z` (steps: a)");
        assert_eq!(err.class().code(), 2);
        assert_eq!("gpu".parse::<Device>(), Ok(Device::Cuda));
        assert!("tpu".parse::<Device>().is_err());
    }
}
