//! Creates survive lost replies: a run or model version the server made, whose reply
//! never arrived, is found and returned instead of being created a second time.

use std::sync::atomic::Ordering;
use std::time::Duration;

use kiln_mlflow::{Auth, MlflowClient, MlflowConfig};
use kiln_testkit::{FaultProxy, MlflowServer};

fn client(uri: &str) -> MlflowClient {
    MlflowClient::new(MlflowConfig {
        tracking_uri: uri.to_string(),
        auth: Auth::None,
        timeout: Duration::from_secs(10),
        retry_for: Duration::from_secs(20),
    })
    .unwrap()
}

#[tokio::test]
async fn a_create_whose_reply_was_lost_is_not_made_twice() {
    let server = MlflowServer::start(false);
    let direct = client(&server.uri);
    let experiment = direct
        .get_or_create_experiment("lost-replies")
        .await
        .unwrap();

    // runs/create: the server makes the run, the reply is lost twice.
    let proxy = FaultProxy::lose_replies(&server.uri, "/runs/create", 2);
    let through = client(&proxy.uri);
    let tags = vec![("kiln.step".to_string(), "train".to_string())];
    let run = through
        .create_run(&experiment, "pipeline", &tags)
        .await
        .unwrap();
    assert_eq!(proxy.injected.load(Ordering::SeqCst), 1, "one reply lost");
    let runs = direct.search_runs(&experiment, "").await.unwrap();
    assert_eq!(runs.len(), 1, "exactly one run: {runs:?}");
    assert_eq!(runs[0]["info"]["run_id"], run.run_id.as_str());

    // model-versions/create, the same.
    direct.ensure_registered_model("m", &[]).await.unwrap();
    let proxy = FaultProxy::lose_replies(&server.uri, "/model-versions/create", 1);
    let through = client(&proxy.uri);
    let source = format!("{}/model", run.artifact_uri);
    let version = through
        .create_model_version("m", &source, &run.run_id, &[])
        .await
        .unwrap();
    assert_eq!(proxy.injected.load(Ordering::SeqCst), 1);
    let versions = direct.search_model_versions("name='m'").await.unwrap();
    assert_eq!(versions.len(), 1, "exactly one version: {versions:?}");
    assert_eq!(version.version, versions[0].version);
    assert_eq!(version.version, "1");

    // A second registration is a new version (the token is per call, not per run).
    let again = direct
        .create_model_version("m", &source, &run.run_id, &[])
        .await
        .unwrap();
    assert_eq!(again.version, "2");
}

#[tokio::test]
async fn listing_follows_page_tokens() {
    let server = MlflowServer::start(false);
    // Pages of two: five runs come back over three pages.
    let mlflow = client(&server.uri).with_page_size(2);
    let experiment = mlflow.get_or_create_experiment("pages").await.unwrap();
    let mut made = std::collections::BTreeSet::new();
    for i in 0..5 {
        let run = mlflow
            .create_run(&experiment, &format!("r{i}"), &[])
            .await
            .unwrap();
        mlflow.ensure_registered_model("paged", &[]).await.unwrap();
        let source = format!("{}/model", run.artifact_uri);
        mlflow
            .create_model_version("paged", &source, &run.run_id, &[])
            .await
            .unwrap();
        made.insert(run.run_id);
    }
    let found: std::collections::BTreeSet<String> = mlflow
        .search_runs(&experiment, "")
        .await
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(found, made);
    let versions = mlflow.search_model_versions("name='paged'").await.unwrap();
    assert_eq!(versions.len(), 5, "{versions:?}");
}
