//! MLflow tracking as an observer of the step driver. Nothing is sent unless
//! `MLFLOW_TRACKING_URI` is set.
//!
//! The observer builds one client and finds (or creates) the pipeline's MLflow run
//! once: at the start of `kiln run` (while the first step runs), or at the first step
//! it hears of. Each finished step is then logged from the
//! manifest the driver hands over and from what the step says it tracks
//! ([`PipelineStep::tracked`]) ([`log_step`]).
//!
//! Within `kiln run` the logging is off the critical path: a step's calls go to a
//! background task while the next steps run, one step's logging at a time, and the
//! pipeline's end waits for them (a failure there fails the run) before it marks the
//! MLflow run FINISHED or FAILED. A step run alone is logged before its binary exits,
//! and its failure is the step's.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kiln_core::Result;
use kiln_core::context::StepContext;
use kiln_core::driver::{Observer, PipelineStep};
use kiln_core::step::StepOutcome;
use tokio::task::JoinHandle;

use crate::client::MlflowClient;
use crate::run::{TrackedRun, ensure_run, finish_run};
use crate::tracking::log_step;

/// The MLflow observer. One per process ([`Tracking::new`]).
#[derive(Default)]
pub struct Tracking {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The client and the pipeline's run, once the first step found them; the lock
    /// also lets one step's logging run at a time.
    state: tokio::sync::Mutex<Option<(MlflowClient, TrackedRun)>>,
    /// Logging still in flight (`kiln run` only).
    pending: Mutex<Vec<JoinHandle<Result<()>>>>,
    /// Set between `pipeline_started` and `pipeline_finished`.
    in_pipeline: std::sync::atomic::AtomicBool,
    /// Set once `state` holds the run: a finished step need not wait for the lock
    /// (which the previous step's logging may hold) to know it.
    connected: std::sync::atomic::AtomicBool,
}

impl Tracking {
    pub fn new() -> Tracking {
        Tracking::default()
    }
}

impl Inner {
    /// The client and the tracked run, set up at the first call (`None`: tracking off).
    async fn connect(
        &self,
        ctx: &StepContext,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, Option<(MlflowClient, TrackedRun)>>>> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            let Some(client) = MlflowClient::from_env()? else {
                return Ok(None);
            };
            let run = ensure_run(&client, ctx).await?;
            *state = Some((client, run));
            self.connected
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(Some(state))
    }

    /// Waits for every step's logging still in flight; the first failure, if any.
    async fn drain(&self) -> Result<()> {
        let handles: Vec<_> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut result = Ok(());
        for handle in handles {
            let logged = handle.await.unwrap_or_else(|e| {
                Err(kiln_core::Error::Invalid(format!(
                    "MLflow tracking task failed: {e}"
                )))
            });
            if result.is_ok() {
                result = logged;
            }
        }
        result
    }
}

impl Observer for Tracking {
    fn step_finished<'a>(
        &'a self,
        ctx: &'a StepContext,
        step: &'a dyn PipelineStep,
        outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Finding the run is not deferred: every later step (and register's
            // link to it) must see the same `mlflow.json`. Once found, the previous
            // step's logging (which holds the lock) is not waited for.
            let connected = self
                .inner
                .connected
                .load(std::sync::atomic::Ordering::SeqCst);
            if !connected && self.inner.connect(ctx).await?.is_none() {
                return Ok(());
            }
            let facts = step.tracked(ctx, outcome).await?;
            let (ctx, name, manifest) = (ctx.clone(), step.name(), outcome.manifest().clone());
            let inner = Arc::clone(&self.inner);
            let log = async move {
                let mut state = inner.state.lock().await;
                let Some((client, run)) = state.as_mut() else {
                    return Ok(());
                };
                log_step(client, run, &ctx, name, &manifest, &facts).await
            };
            if self
                .inner
                .in_pipeline
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                let handle = tokio::spawn(log);
                self.inner
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(handle);
                Ok(())
            } else {
                log.await
            }
        })
    }

    fn pipeline_started<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ()> {
        self.inner
            .in_pipeline
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Find or create the MLflow run while the first step runs. A failure here is
        // not reported: the first finished step connects again and reports it.
        let (inner, ctx) = (Arc::clone(&self.inner), ctx.clone());
        let connect = tokio::spawn(async move {
            if let Err(e) = inner.connect(&ctx).await {
                tracing::debug!(error = %e, "connecting to MLflow at the pipeline's start");
            }
            Ok(())
        });
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(connect);
        Box::pin(async {})
    }

    fn pipeline_finished<'a>(
        &'a self,
        _ctx: &'a StepContext,
        succeeded: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let logged = self.inner.drain().await;
            self.inner
                .in_pipeline
                .store(false, std::sync::atomic::Ordering::SeqCst);
            // A pipeline that failed before its first step finished has no run to end.
            let state = self.inner.state.lock().await;
            if let Some((client, run)) = state.as_ref() {
                finish_run(client, run, succeeded && logged.is_ok()).await?;
            }
            logged
        })
    }
}
