//! The pipeline run's MLflow run: found through `<run>/mlflow.json`, or created, and
//! ended. What the registry and rollout need of tracking, without the step logging
//! ([`crate::tracking`], behind the `tracking` feature).

use std::collections::BTreeMap;

use kiln_core::Result;
use kiln_core::context::StepContext;

use crate::client::{MlflowClient, RunInfo};

/// `<run>/mlflow.json`.
pub const RUN_FILE: &str = "mlflow.json";

pub use kiln_core::contracts::tracking::TrackedRun;

/// The run a [`TrackedRun`] links to, as the client addresses it.
pub trait RunLink {
    fn info(&self) -> RunInfo;
}

impl RunLink for TrackedRun {
    fn info(&self) -> RunInfo {
        RunInfo {
            run_id: self.run_id.clone(),
            experiment_id: self.experiment_id.clone(),
            status: String::new(),
            artifact_uri: self.artifact_uri.clone(),
        }
    }
}

/// The pipeline run's MLflow run: from `mlflow.json`, or created (experiment from
/// `MLFLOW_EXPERIMENT_NAME`, else the spec's name).
pub async fn ensure_run(client: &MlflowClient, ctx: &StepContext) -> Result<TrackedRun> {
    if ctx.run.exists(RUN_FILE).await? {
        let tracked: TrackedRun = kiln_core::contracts::read_from_run(&ctx.run).await?;
        if tracked.tracking_uri == client.tracking_uri() {
            return Ok(tracked);
        }
    }
    let experiment = std::env::var("MLFLOW_EXPERIMENT_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ctx.spec.spec.name.clone());
    let experiment_id = client.get_or_create_experiment(&experiment).await?;
    let run_name = ctx
        .run
        .uri()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("kiln")
        .to_string();
    let tags = vec![
        ("kiln.run_uri".to_string(), ctx.run.uri().to_string()),
        ("kiln.spec_uri".to_string(), ctx.spec.uri.clone()),
        (
            "kiln.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("mlflow.source.name".to_string(), "kiln".to_string()),
    ];
    let info = client.create_run(&experiment_id, &run_name, &tags).await?;
    let tracked = TrackedRun {
        format_version: <TrackedRun as kiln_core::contracts::Artifact>::FORMAT_VERSION,
        tracking_uri: client.tracking_uri().to_string(),
        experiment_id,
        run_id: info.run_id,
        artifact_uri: info.artifact_uri,
        logged: BTreeMap::new(),
        children: BTreeMap::new(),
    };
    ctx.run.put_json(RUN_FILE, &tracked).await?;
    tracing::info!(run_id = tracked.run_id, "tracking in MLflow");
    Ok(tracked)
}

/// Marks the MLflow run finished or failed (the end of `kiln run`).
pub async fn finish_run(
    client: &MlflowClient,
    tracked: &TrackedRun,
    succeeded: bool,
) -> Result<()> {
    client
        .update_run(
            &tracked.run_id,
            if succeeded { "FINISHED" } else { "FAILED" },
        )
        .await?;
    Ok(())
}
