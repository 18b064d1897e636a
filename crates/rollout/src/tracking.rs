//! The rollout as an MLflow run (when `MLFLOW_TRACKING_URI` is set): the versions and
//! settings as params, each check's numbers as metrics stepped by check, the decision
//! as tags, `rollout.json` as an artifact, and the outcome tagged on the model version.

use bytes::Bytes;
use kiln_mlflow::{Metric, MlflowClient};

use crate::report::Report;

/// The experiment rollouts are logged in.
pub const EXPERIMENT: &str = "kiln-rollouts";

/// Logs a finished rollout; returns the run id.
pub async fn log(client: &MlflowClient, report: &Report) -> kiln_core::Result<String> {
    let experiment = client.get_or_create_experiment(EXPERIMENT).await?;
    let name = format!(
        "{} {} → {}",
        report.model, report.stable_version, report.canary_version
    );
    let outcome = serde_json::to_value(report.decision.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let run = client
        .create_run(
            &experiment,
            &name,
            &[("kiln.rollout.model".into(), report.model.clone())],
        )
        .await?;
    let s = &report.settings;
    let params: Vec<(String, String)> = [
        ("model", report.model.clone()),
        ("alias", report.alias.clone()),
        ("canary_version", report.canary_version.clone()),
        ("stable_version", report.stable_version.clone()),
        ("router", report.router.clone()),
        ("interval", s.interval.to_string()),
        ("window", s.window().to_string()),
        ("canary_percent", s.canary_percent.to_string()),
        ("promote_after", s.promote_after.to_string()),
        ("max_failures", s.max_failures.to_string()),
        ("max_inconclusive", s.max_inconclusive.to_string()),
        ("min_requests", s.thresholds.min_requests.to_string()),
        ("max_error_ratio", opt(s.thresholds.max_error_ratio)),
        (
            "max_error_ratio_increase",
            opt(s.thresholds.max_error_ratio_increase),
        ),
        ("max_p99_seconds", opt(s.thresholds.max_p99_seconds)),
        ("max_p99_ratio", opt(s.thresholds.max_p99_ratio)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let timestamp = chrono::Utc::now().timestamp_millis();
    let mut metrics = Vec::new();
    for check in &report.checks {
        for (role, m) in [("canary", &check.canary), ("stable", &check.stable)] {
            for (name, value) in [
                ("requests", m.requests),
                ("error_ratio", m.error_ratio),
                ("p99_seconds", m.p99_seconds),
            ] {
                if let Some(value) = value {
                    metrics.push(Metric {
                        key: format!("{role}_{name}"),
                        value,
                        timestamp,
                        step: i64::from(check.n),
                    });
                }
            }
        }
    }
    metrics.push(Metric {
        key: "decision_seconds".into(),
        value: report.decision.elapsed_s,
        timestamp,
        step: 0,
    });
    let tags = vec![
        ("kiln.rollout.outcome".to_string(), outcome.clone()),
        (
            "kiln.rollout.reason".to_string(),
            report.decision.reason.clone(),
        ),
    ];
    client
        .log_batch(&run.run_id, &metrics, &params, &tags)
        .await?;
    client
        .upload_artifact(&run, "rollout.json", Bytes::from(report.to_json()))
        .await?;
    client
        .update_run(
            &run.run_id,
            if outcome == "promoted" {
                "FINISHED"
            } else {
                "FAILED"
            },
        )
        .await?;
    client
        .set_model_version_tag(
            &report.model,
            &report.canary_version,
            "kiln.rollout",
            &outcome,
        )
        .await?;
    Ok(run.run_id)
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(|| "off".into(), |v| v.to_string())
}
