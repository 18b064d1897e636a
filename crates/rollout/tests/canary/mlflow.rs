//! A rollout with MLflow: the registry's alias moves there, and the rollout is a run.

use std::time::Duration;

use kiln_testkit::{MODEL, MlflowServer, http_request};
use serde_json::Value;

use crate::harness::{Canary, Front, finish};

/// One MLflow REST call on loopback; the JSON answer.
fn mlflow(server: &MlflowServer, method: &str, path: &str, body: Value) -> Value {
    let addr = server.uri.trim_start_matches("http://");
    let (status, text) = http_request(
        addr,
        method,
        &format!("/api/2.0/mlflow/{path}"),
        body.to_string().as_bytes(),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|| panic!("MLflow {path}: no answer"));
    assert_eq!(status, 200, "MLflow {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn a_rollout_with_mlflow_moves_its_alias_and_is_logged_as_a_run() {
    let server = MlflowServer::start(false);
    mlflow(
        &server,
        "POST",
        "registered-models/create",
        serde_json::json!({"name": MODEL}),
    );
    for n in 1..=2 {
        let source = format!("s3://kiln-test/{MODEL}/{n}");
        mlflow(
            &server,
            "POST",
            "model-versions/create",
            serde_json::json!({"name": MODEL, "source": source}),
        );
    }
    mlflow(
        &server,
        "POST",
        "registered-models/alias",
        serde_json::json!({"name": MODEL, "alias": "production", "version": "1"}),
    );
    let c = Canary::start(Front::Direct);
    let load = c.load(100, 30);
    c.warm();
    let (code, log) = finish(c.rollout_tracked(&c.prometheus_url(), &[], Some(&server.uri)));
    drop(load);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("logged to MLflow run"), "{log}");
    let alias = mlflow(
        &server,
        "GET",
        &format!("registered-models/alias?name={MODEL}&alias=production"),
        Value::Null,
    );
    assert_eq!(alias["model_version"]["version"], "2");
    let version = mlflow(
        &server,
        "GET",
        &format!("model-versions/get?name={MODEL}&version=2"),
        Value::Null,
    );
    let tags = version["model_version"]["tags"].to_string();
    assert!(
        tags.contains(r#""key":"kiln.rollout","value":"promoted""#),
        "{tags}"
    );
    let experiment = mlflow(
        &server,
        "GET",
        "experiments/get-by-name?experiment_name=kiln-rollouts",
        Value::Null,
    );
    let id = experiment["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = mlflow(
        &server,
        "POST",
        "runs/search",
        serde_json::json!({"experiment_ids": [id]}),
    );
    let run = &runs["runs"][0];
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    let data = run["data"].to_string();
    assert!(
        data.contains(r#""key":"kiln.rollout.outcome","value":"promoted""#),
        "{data}"
    );
    assert!(
        data.contains(r#""key":"canary_version","value":"2""#),
        "{data}"
    );
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let history = mlflow(
        &server,
        "GET",
        &format!("metrics/get-history?run_id={run_id}&metric_key=canary_requests"),
        Value::Null,
    );
    assert_eq!(
        history["metrics"].as_array().map(Vec::len),
        Some(3),
        "{history}"
    );
    let artifacts = mlflow(
        &server,
        "GET",
        &format!("artifacts/list?run_id={run_id}"),
        Value::Null,
    );
    assert!(
        artifacts.to_string().contains("rollout.json"),
        "{artifacts}"
    );
}
