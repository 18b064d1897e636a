//! Tracking a pipeline run in MLflow, from the steps' own outputs.
//!
//! When `MLFLOW_TRACKING_URI` is set, every step, after it completes, is logged to one
//! MLflow run per pipeline run, whose id is kept in `<run>/mlflow.json` so that steps
//! in different containers find it. Without the variable nothing is sent: the run's own
//! files are the record. What is logged comes from the step's manifest and from what
//! the step says it tracks ([`Tracked`]); the tracker knows no step by name.
//!
//! | step | logged |
//! | --- | --- |
//! | every step | numeric facts of its manifest summary as metrics `<step>.<name>`; each input's sha256 as tag `kiln.<step>.input.<name>`; its spec fingerprint; its plots as artifacts under `<step>/` |
//! | prepare | its tables and raw inputs as MLflow dataset inputs, with digests ([`crate::datasets`]) |
//! | train | the `train` spec section as params; per-epoch `train.train_loss`, `train.val_loss`, `train.val_auc`, `train.learning_rate` with the epoch as step; `history.json` |
//! | evaluate | its metrics at the threshold; `metrics.json` |
//! | validate, fairness, register | their JSON reports as artifacts under `<step>/` |
//! | tune | each trial as a child run: params, per-epoch metric history |

use serde_json::Value;

use kiln_core::Result;
use kiln_core::tracked::{Tracked, TrackedChild};

use kiln_core::context::StepContext;
use kiln_core::manifest::StepManifest;

use crate::client::{Metric, MlflowClient};
use crate::run::{RUN_FILE, RunLink};

use crate::run::TrackedRun;

/// Logs a completed step to the pipeline's MLflow run: its manifest's summary numbers,
/// input hashes and spec fingerprint, and what the step said it tracks ([`Tracked`]),
/// in one `log-batch` (the client splits it only at MLflow's limits), then its
/// artifacts concurrently. A step already logged with this manifest is skipped.
/// Updates `tracked` (and `mlflow.json`).
pub async fn log_step(
    client: &MlflowClient,
    tracked: &mut TrackedRun,
    ctx: &StepContext,
    step: &str,
    manifest: &StepManifest,
    facts: &Tracked,
) -> Result<()> {
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
    let named: Vec<String> = facts
        .metrics
        .iter()
        .map(|m| sanitize(&format!("{step}.{}", m.name)))
        .collect();
    // A step's own metric replaces the summary's value of the same name (a history
    // supersedes its best point); a summary's `format_version` describes the file.
    metrics.retain(|m| !named.contains(&m.key) && !m.key.ends_with(".format_version"));
    metrics.extend(facts.metrics.iter().zip(named).map(|(m, key)| Metric {
        key,
        value: m.value,
        timestamp: now,
        step: m.step,
    }));
    metrics.retain(|m| m.value.is_finite());
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
    let params: Vec<(String, String)> = facts
        .params
        .iter()
        .map(|(k, v)| (sanitize(k), v.clone()))
        .collect();
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
    let dir = ctx.run.child(step);
    if facts.datasets {
        let datasets = crate::datasets::prepare_datasets(&dir, manifest).await?;
        client.log_inputs(&tracked.run_id, &datasets).await?;
    }
    let plots = manifest
        .outputs
        .iter()
        .filter(|o| o.path.starts_with("plots/"))
        .map(|o| o.path.clone());
    let artifacts: Vec<String> = facts.artifacts.iter().cloned().chain(plots).collect();
    let info = tracked.info();
    let uploads = artifacts.iter().map(|path| {
        let (dir, info) = (&dir, &info);
        async move {
            let bytes = dir.get(path).await?;
            client
                .upload_artifact(info, &format!("{step}/{path}"), bytes)
                .await
                .map_err(kiln_core::Error::from)
        }
    });
    futures::future::try_join_all(uploads).await?;
    for child in &facts.children {
        log_child(client, tracked, ctx, child).await?;
    }
    tracked.logged.insert(step.to_string(), stamp);
    ctx.run.put_json(RUN_FILE, &*tracked).await?;
    tracing::info!(
        step,
        run_id = tracked.run_id,
        metrics = metrics.len(),
        artifacts = artifacts.len(),
        children = facts.children.len(),
        "logged to MLflow"
    );
    Ok(())
}

/// Logs one child run of the pipeline's MLflow run (a tune trial), nested under it
/// through the `mlflow.parentRunId` tag, unless a child with its key was logged
/// already. Its id is kept in `tracked` as soon as it exists.
async fn log_child(
    client: &MlflowClient,
    tracked: &mut TrackedRun,
    ctx: &StepContext,
    child: &TrackedChild,
) -> Result<()> {
    if tracked.children.contains_key(&child.key) {
        return Ok(());
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
        .map(|m| Metric {
            key: sanitize(&m.name),
            value: m.value,
            timestamp: child.at,
            step: m.step,
        })
        .collect();
    client
        .log_batch(&info.run_id, &metrics, &child.params, &[])
        .await?;
    client.update_run(&info.run_id, "FINISHED").await?;
    tracked.children.insert(child.key.clone(), info.run_id);
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
