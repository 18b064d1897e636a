//! MLflow tracking as an observer of the step driver: every step the driver finishes is
//! logged to the pipeline's MLflow run ([`track_step`]), and the run ends FINISHED or
//! FAILED with the pipeline ([`finish_run`]). Nothing is sent unless
//! `MLFLOW_TRACKING_URI` is set.

use futures::future::BoxFuture;
use kiln_core::Result;
use kiln_core::context::StepContext;
use kiln_core::driver::{Observer, PipelineStep};

use crate::tracking::{finish_run, track_step};

/// The MLflow observer.
pub struct Tracking;

impl Observer for Tracking {
    fn step_finished<'a>(
        &'a self,
        ctx: &'a StepContext,
        step: &'a dyn PipelineStep,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(track_step(ctx, step.name()))
    }

    fn pipeline_finished<'a>(
        &'a self,
        ctx: &'a StepContext,
        succeeded: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(finish_run(ctx, succeeded))
    }
}
