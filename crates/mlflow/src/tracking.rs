//! Tracking a pipeline run in MLflow, from the steps' own outputs.
//!
//! When `MLFLOW_TRACKING_URI` is set, every step, after it completes, logs what its
//! folder holds to one MLflow run per pipeline run, whose id is kept in
//! `<run>/mlflow.json` so that steps in different containers find it. Without the
//! variable nothing is sent: the run's own files are the record.
//!
//! | step | logged |
//! | --- | --- |
//! | prepare | its tables and raw inputs as MLflow dataset inputs, with digests ([`crate::datasets`]) |
//! | every step | numeric facts of its manifest summary as metrics `<step>.<name>`; each input's sha256 as tag `kiln.<step>.input.<name>`; its spec fingerprint |
//! | train | the `train` spec section as params; per-epoch `train.train_loss`, `train.val_loss`, `train.val_auc`, `train.learning_rate` with the epoch as step; `history.json` |
//! | validate, evaluate, fairness, register | their JSON reports and plots as artifacts under `<step>/` |
//! | tune | each trial as a child run ([`track_children`]): params, per-epoch metric history |

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;

use kiln_core::Result;
use kiln_core::contracts::{self, Artifact, evaluate::EvaluationReport, train::TrainHistory};
use kiln_core::spec::ModelMetric;

/// Per-epoch fields of train's `history.json`, logged as metric histories.
const HISTORY_FIELDS: [&str; 4] = ["train_loss", "val_loss", "val_auc", "learning_rate"];
use kiln_core::context::StepContext;
use kiln_core::manifest::StepManifest;

use crate::client::{Metric, MlflowClient, RunInfo};

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
        let tracked: TrackedRun = ctx.run.get_json(RUN_FILE).await?;
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

/// Logs a completed step to MLflow when `MLFLOW_TRACKING_URI` is set.
pub async fn track_step(ctx: &StepContext, step: &str) -> Result<()> {
    let Some(client) = MlflowClient::from_env()? else {
        return Ok(());
    };
    let mut tracked = ensure_run(&client, ctx).await?;
    let dir = ctx.run.child(step);
    let Some(manifest) = StepManifest::load(&dir).await? else {
        return Ok(());
    };
    let stamp = manifest.finished_at.to_rfc3339();
    if tracked.logged.get(step) == Some(&stamp) {
        return Ok(());
    }
    let now = manifest.finished_at.timestamp_millis();
    let mut metrics = Vec::new();
    flatten_numbers(&manifest.summary, step, &mut |key, value| {
        metrics.push(Metric {
            key,
            value,
            timestamp: now,
            step: 0,
        });
    });
    // Train's per-epoch histories below carry these names; the summary's best-epoch
    // values would add a stray point at step 0.
    // A summary's `format_version` describes the file, not the run.
    metrics.retain(|m| {
        !HISTORY_FIELDS.iter().any(|f| m.key == format!("train.{f}"))
            && !m.key.ends_with(".format_version")
    });
    let mut tags: Vec<(String, String)> = manifest
        .inputs
        .iter()
        .map(|i| {
            (
                format!("kiln.{step}.input.{}", sanitize(&i.name)),
                i.hash.sha256.clone(),
            )
        })
        .collect();
    tags.push((
        format!("kiln.{step}.spec_fingerprint"),
        manifest.spec_fingerprint.clone(),
    ));
    let mut params = Vec::new();
    let mut artifacts: Vec<String> = Vec::new();
    match step {
        "train" => {
            let section = serde_json::to_value(&ctx.spec.spec.train).unwrap_or(Value::Null);
            flatten_strings(&section, "train", &mut params);
            let history: TrainHistory = contracts::read(&dir).await?;
            for record in &history.epochs {
                let fields = [
                    ("train_loss", Some(record.train_loss)),
                    ("val_loss", Some(record.val_loss)),
                    ("val_auc", record.val_auc),
                    ("learning_rate", Some(record.learning_rate)),
                ];
                for (field, value) in fields {
                    if let Some(value) = value {
                        metrics.push(Metric {
                            key: format!("train.{field}"),
                            value,
                            timestamp: now,
                            step: record.epoch as i64,
                        });
                    }
                }
            }
            artifacts.push(TrainHistory::FILE.into());
        }
        "validate" | "fairness" => artifacts.push("report.json".into()),
        "evaluate" => {
            let report: EvaluationReport = contracts::read(&dir).await?;
            let counts = [
                ("rows", Some(report.rows as f64)),
                ("positives", Some(report.positives as f64)),
                ("negatives", Some(report.negatives as f64)),
                ("threshold", Some(report.threshold)),
            ];
            let named = ModelMetric::ALL
                .iter()
                .map(|&m| (m.name(), report.metric(m)));
            for (key, value) in counts.into_iter().chain(named) {
                if let Some(value) = value {
                    metrics.push(Metric {
                        key: format!("evaluate.{key}"),
                        value,
                        timestamp: now,
                        step: 0,
                    });
                }
            }
            artifacts.push(EvaluationReport::FILE.into());
        }
        "register" => artifacts.push("decision.json".into()),
        _ => {}
    }
    artifacts.extend(
        manifest
            .outputs
            .iter()
            .filter(|o| o.path.starts_with("plots/"))
            .map(|o| o.path.clone()),
    );
    metrics.retain(|m| m.value.is_finite());
    client
        .log_batch(&tracked.run_id, &metrics, &params, &tags)
        .await
        .or_else(|e| {
            // Params are write-once in MLflow: a rerun with other hyperparameters in the same
            // run root cannot overwrite them. Keep going; the run's files hold the truth.
            if e.code() == Some(&crate::client::ErrorCode::InvalidParameterValue) {
                tracing::warn!(error = %e, "MLflow kept the earlier params of this run");
                Ok(())
            } else {
                Err(e)
            }
        })?;
    if step == "prepare" {
        let datasets = crate::datasets::prepare_datasets(&dir, &manifest).await?;
        client.log_inputs(&tracked.run_id, &datasets).await?;
    }
    let info = tracked.info();
    for path in artifacts {
        if let Ok(bytes) = dir.get(&path).await {
            client
                .upload_artifact(
                    &info,
                    &format!("{step}/{path}"),
                    Bytes::from(bytes.to_vec()),
                )
                .await?;
        }
    }
    tracked.logged.insert(step.to_string(), stamp);
    ctx.run.put_json(RUN_FILE, &tracked).await?;
    tracing::info!(
        step,
        run_id = tracked.run_id,
        metrics = metrics.len(),
        "logged to MLflow"
    );
    Ok(())
}

/// A child run of the pipeline run's MLflow run (a tune trial): MLflow shows it nested
/// under its parent through the `mlflow.parentRunId` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRun {
    /// Stable across reruns and unique in the pipeline run, e.g. the trial's index and
    /// a hash of its result: a child already logged under its key is skipped.
    pub key: String,
    pub name: String,
    pub params: Vec<(String, String)>,
    /// Metric histories (`step` = epoch) and final values.
    pub metrics: Vec<Metric>,
    pub tags: Vec<(String, String)>,
}

/// Logs `children` as finished child runs of the pipeline's MLflow run when
/// `MLFLOW_TRACKING_URI` is set; returns how many were created. Each child's id is
/// kept in `mlflow.json` as soon as it is logged, so a rerun creates only the missing.
pub async fn track_children(ctx: &StepContext, children: &[ChildRun]) -> Result<usize> {
    let Some(client) = MlflowClient::from_env()? else {
        return Ok(0);
    };
    let mut tracked = ensure_run(&client, ctx).await?;
    let mut created = 0;
    for child in children {
        if tracked.children.contains_key(&child.key) {
            continue;
        }
        let mut tags = child.tags.clone();
        tags.push(("mlflow.parentRunId".into(), tracked.run_id.clone()));
        tags.push(("kiln.run_uri".into(), ctx.run.uri().to_string()));
        let info = client
            .create_run(&tracked.experiment_id, &child.name, &tags)
            .await?;
        let metrics: Vec<Metric> = child
            .metrics
            .iter()
            .filter(|m| m.value.is_finite())
            .cloned()
            .collect();
        client
            .log_batch(&info.run_id, &metrics, &child.params, &[])
            .await?;
        client.update_run(&info.run_id, "FINISHED").await?;
        tracked.children.insert(child.key.clone(), info.run_id);
        ctx.run.put_json(RUN_FILE, &tracked).await?;
        created += 1;
    }
    if created > 0 {
        tracing::info!(
            run_id = tracked.run_id,
            created,
            "child runs logged to MLflow"
        );
    }
    Ok(created)
}

/// Marks the MLflow run finished or failed (the end of `kiln run`).
pub async fn finish_run(ctx: &StepContext, succeeded: bool) -> Result<()> {
    let Some(client) = MlflowClient::from_env()? else {
        return Ok(());
    };
    if !ctx.run.exists(RUN_FILE).await? {
        return Ok(());
    }
    let tracked: TrackedRun = ctx.run.get_json(RUN_FILE).await?;
    client
        .update_run(
            &tracked.run_id,
            if succeeded { "FINISHED" } else { "FAILED" },
        )
        .await?;
    Ok(())
}

/// MLflow keys allow alphanumerics, `_ - . / space`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-./ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn flatten_numbers(value: &Value, prefix: &str, out: &mut impl FnMut(String, f64)) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out(sanitize(prefix), x);
            }
        }
        Value::Bool(b) => out(sanitize(prefix), f64::from(u8::from(*b))),
        Value::Object(map) => {
            for (k, v) in map {
                flatten_numbers(v, &format!("{prefix}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn flatten_strings(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_strings(v, &format!("{prefix}.{k}"), out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push((sanitize(prefix), s.clone())),
        other => out.push((sanitize(prefix), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_flatten_to_metric_names() {
        let mut seen = Vec::new();
        flatten_numbers(
            &serde_json::json!({"rows": 3, "split": {"train": 2}, "name": "x", "ok": true}),
            "prepare",
            &mut |k, v| seen.push((k, v)),
        );
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [
                ("prepare.ok".into(), 1.0),
                ("prepare.rows".into(), 3.0),
                ("prepare.split.train".into(), 2.0)
            ]
        );
        assert_eq!(sanitize("source[0]"), "source_0_");
    }
}
