//! OpenLineage as an observer of the step driver: START when a step starts, COMPLETE or
//! FAIL when it ends, with the datasets its manifest records.
//!
//! A delivery that fails is retried, then counted, logged in one line and kept in the
//! run folder (`lineage/undelivered/`, one event per file) so nothing is lost; it never
//! fails the step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::contracts::{self, register::Decision, validate::ValidateReport};
use kiln_core::driver::{Observer, PipelineStep, StepEnd};
use kiln_core::manifest::{InputRecord, StepManifest};
use kiln_core::store::ObjectRef;
use serde_json::Value;

use crate::event::{Dataset, EventType, RunEvent, RunRef, new_run_id, stable_run_id};
use crate::transport::Transport;

/// Where undelivered events are kept, under the run.
pub const UNDELIVERED: &str = "lineage/undelivered";

/// Inputs a step records in its manifest that are settings, not data.
const NOT_DATASETS: &[&str] = &["registry", "signing-key"];

/// Events this process could not deliver.
static UNDELIVERED_EVENTS: AtomicU64 = AtomicU64::new(0);

/// How many events this process could not deliver.
pub fn undelivered() -> u64 {
    UNDELIVERED_EVENTS.load(Ordering::Relaxed)
}

/// The OpenLineage observer (see the module's doc).
pub struct Emitter {
    /// Read from the environment on first use; `None`: lineage is off.
    transport: OnceLock<Option<Transport>>,
    runs: Mutex<HashMap<String, RunRef>>,
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Emitter {
    pub fn new() -> Emitter {
        Emitter {
            transport: OnceLock::new(),
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// The transport, read from the environment once; a bad setting is logged and
    /// turns lineage off rather than failing a step.
    fn transport(&self) -> Option<&Transport> {
        self.transport
            .get_or_init(|| {
                Transport::from_env().unwrap_or_else(|e| {
                    tracing::warn!("OpenLineage is off: {e}");
                    None
                })
            })
            .as_ref()
    }

    async fn emit(&self, ctx: &StepContext, event: &RunEvent<'_>) {
        let Some(transport) = self.transport() else {
            return;
        };
        let json = event.to_json();
        if let Err(why) = transport.send(&json).await {
            let n = UNDELIVERED_EVENTS.fetch_add(1, Ordering::Relaxed) + 1;
            let kept = keep(ctx, event, &json).await;
            tracing::warn!(
                undelivered = n,
                "OpenLineage {} event of {} not delivered to {}: {why}; {kept}",
                event.event_type.as_str(),
                event.run.job,
                transport.describe()
            );
        }
    }
}

/// Keeps an undelivered event in the run folder; says where (or why not).
async fn keep(ctx: &StepContext, event: &RunEvent<'_>, json: &Value) -> String {
    let name = format!(
        "{UNDELIVERED}/{}-{}-{}.json",
        event.time.format("%Y%m%dT%H%M%S%.3fZ"),
        event.run.job,
        event.event_type.as_str()
    );
    let bytes = match serde_json::to_vec_pretty(json) {
        Ok(b) => Bytes::from(b),
        Err(e) => return format!("not kept: {e}"),
    };
    match ctx.run.put(&name, bytes).await {
        Ok(_) => format!("kept at {}", ctx.run.uri_of(&name)),
        Err(e) => format!("not kept: {e}"),
    }
}

/// The job namespace (`OPENLINEAGE_NAMESPACE`, default `kiln`).
fn namespace() -> String {
    std::env::var("OPENLINEAGE_NAMESPACE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "kiln".into())
}

/// Whether `OPENLINEAGE_PARENT_ID` names the parent run (someone else reports it).
fn external_parent() -> bool {
    std::env::var("OPENLINEAGE_PARENT_ID").is_ok_and(|v| !v.is_empty())
}

/// The run this step belongs to: `OPENLINEAGE_PARENT_ID` (`namespace/job/runId`, as
/// the Argo workflow passes it), else the pipeline run of this run folder.
fn parent(ctx: &StepContext) -> RunRef {
    if let Some(id) = std::env::var("OPENLINEAGE_PARENT_ID")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let mut parts = id.rsplitn(3, '/');
        if let (Some(run_id), Some(job), Some(namespace)) =
            (parts.next(), parts.next(), parts.next())
        {
            return RunRef {
                namespace: namespace.into(),
                job: job.into(),
                run_id: run_id.into(),
            };
        }
        tracing::warn!("OPENLINEAGE_PARENT_ID `{id}` is not namespace/job/runId; ignored");
    }
    RunRef {
        namespace: namespace(),
        job: ctx.spec.spec.name.clone(),
        run_id: stable_run_id(ctx.run.uri()),
    }
}

/// The datasets a committed step read and wrote, from its manifest.
async fn datasets(ctx: &StepContext, step: &str) -> (Vec<Dataset>, Vec<Dataset>) {
    let dir = ctx.run.child(step);
    let manifest = match StepManifest::load(&dir).await {
        Ok(Some(m)) => m,
        Ok(None) => return (Vec::new(), Vec::new()),
        Err(e) => {
            tracing::warn!("OpenLineage: {step}'s manifest: {e}");
            return (Vec::new(), Vec::new());
        }
    };
    let validation = if step == "validate" {
        contracts::read_from_run::<ValidateReport>(&ctx.run)
            .await
            .ok()
    } else {
        None
    };
    let mut inputs = Vec::new();
    for record in manifest
        .inputs
        .iter()
        .filter(|r| !NOT_DATASETS.contains(&r.name.as_str()))
    {
        let mut d = input_dataset(ctx, step, record).await;
        if let Some(report) = &validation {
            let result = match record.name.as_str() {
                "prepare/train.parquet" => Some(&report.train),
                "prepare/test.parquet" => Some(&report.test),
                _ => None,
            };
            if let Some(result) = result {
                d.assertions = result
                    .results
                    .iter()
                    .map(|r| {
                        let column = r.expectation_config.kwargs.get("column");
                        (
                            r.expectation_config.kind.clone(),
                            column.and_then(Value::as_str).map(str::to_string),
                            r.success,
                        )
                    })
                    .collect();
            }
        }
        inputs.push(d);
    }
    let mut outputs = Vec::new();
    // register's real output is the model version it created (or reused).
    if step == "register"
        && let Ok(decision) = contracts::read_from_run::<Decision>(&ctx.run).await
        && let Some(registered) = decision.registered
    {
        let mut d = Dataset::at(&registered.source);
        d.version = Some(format!("{}/{}", registered.model, registered.version));
        outputs.push(d);
    }
    for output in &manifest.outputs {
        let uri = dir.uri_of(&output.path);
        let mut d = Dataset::at(&uri);
        d.version = Some(output.hash.sha256.clone());
        d.fields = parquet_fields(&uri).await;
        outputs.push(d);
    }
    (inputs, outputs)
}

async fn input_dataset(ctx: &StepContext, step: &str, record: &InputRecord) -> Dataset {
    let mut d = Dataset::at(&record.uri);
    d.version = Some(record.hash.sha256.clone());
    d.fields = parquet_fields(&record.uri).await;
    // prepare's raw files: the spec's typed columns.
    if d.fields.is_empty() && step == "prepare" && record.name.starts_with("source[") {
        d.fields = ctx
            .spec
            .spec
            .schema
            .iter()
            .map(|c| {
                let dtype = serde_json::to_value(c.dtype)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (c.name.clone(), dtype)
            })
            .collect();
    }
    d
}

/// The columns of a Parquet file (its footer only); none for anything else.
async fn parquet_fields(uri: &str) -> Vec<(String, String)> {
    if !uri.ends_with(".parquet") {
        return Vec::new();
    }
    let Ok(object) = ObjectRef::parse(uri) else {
        return Vec::new();
    };
    match kiln_core::parquet_io::read_parquet(&object, 1).await {
        Ok((schema, _)) => schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Observer for Emitter {
    fn step_started<'a>(
        &'a self,
        ctx: &'a StepContext,
        step: &'a dyn PipelineStep,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.transport().is_none() {
                return;
            }
            let now = Utc::now();
            let run = RunRef {
                namespace: namespace(),
                job: format!("{}.{}", ctx.spec.spec.name, step.name()),
                run_id: new_run_id(now),
            };
            let parent = parent(ctx);
            self.runs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(step.name().to_string(), run.clone());
            let event = RunEvent {
                event_type: EventType::Start,
                time: now,
                run: &run,
                parent: Some(&parent),
                inputs: &[],
                outputs: &[],
                error: None,
            };
            self.emit(ctx, &event).await;
        })
    }

    fn step_ended<'a>(
        &'a self,
        ctx: &'a StepContext,
        step: &'a dyn PipelineStep,
        end: &'a StepEnd<'a>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let run = self
                .runs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(step.name());
            let Some(run) = run else {
                return;
            };
            let (event_type, error) = match end {
                StepEnd::Completed { .. } => (EventType::Complete, None),
                StepEnd::Failed(e) => (EventType::Fail, Some(e.to_string())),
            };
            // A failed gate committed the step's outputs: they are still its datasets.
            let committed = match end {
                StepEnd::Completed { .. } => true,
                StepEnd::Failed(e) => e.class().code() == 3,
            };
            let (inputs, outputs) = if committed {
                datasets(ctx, step.name()).await
            } else {
                (Vec::new(), Vec::new())
            };
            let parent = parent(ctx);
            let event = RunEvent {
                event_type,
                time: Utc::now(),
                run: &run,
                parent: Some(&parent),
                inputs: &inputs,
                outputs: &outputs,
                error: error.as_deref(),
            };
            self.emit(ctx, &event).await;
        })
    }

    fn step_finished<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _step: &'a dyn PipelineStep,
        _outcome: &'a kiln_core::step::StepOutcome,
    ) -> BoxFuture<'a, kiln_core::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn pipeline_started<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // The pipeline run is ours to report unless a parent (Argo) owns it.
            if self.transport().is_none() || external_parent() {
                return;
            }
            let parent = parent(ctx);
            let event = RunEvent {
                event_type: EventType::Start,
                time: Utc::now(),
                run: &parent,
                parent: None,
                inputs: &[],
                outputs: &[],
                error: None,
            };
            self.emit(ctx, &event).await;
        })
    }

    fn pipeline_finished<'a>(
        &'a self,
        ctx: &'a StepContext,
        succeeded: bool,
    ) -> BoxFuture<'a, kiln_core::Result<()>> {
        Box::pin(async move {
            if self.transport().is_some() && !external_parent() {
                let parent = parent(ctx);
                let event = RunEvent {
                    event_type: if succeeded {
                        EventType::Complete
                    } else {
                        EventType::Fail
                    },
                    time: Utc::now(),
                    run: &parent,
                    parent: None,
                    inputs: &[],
                    outputs: &[],
                    error: (!succeeded).then_some("a step of the pipeline failed"),
                };
                self.emit(ctx, &event).await;
            }
            let n = undelivered();
            if n > 0 {
                tracing::warn!(
                    "OpenLineage: {n} event(s) of this run were not delivered; they are kept under {}",
                    ctx.run.uri_of(UNDELIVERED)
                );
            }
            Ok(())
        })
    }
}
