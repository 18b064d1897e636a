//! The register step on the local registry (no MLflow) and against a real MLflow
//! tracking server: gates, decisions, idempotency, aliases, promote and rollback, and
//! the failure cases (server down, a 500 on one call, refused credentials).

use std::path::Path;
use std::process::{Command, Output};

use kiln_testkit::{
    FaultProxy, MLFLOW_ADMIN, MlflowServer, adult_command, adult_dir, bin, free_port, run, stderr,
    stdout, workspace_root,
};
use serde_json::Value;

fn spec() -> String {
    workspace_root()
        .join("examples/adult/spec.yaml")
        .to_str()
        .unwrap()
        .to_string()
}

/// `kiln` with the Adult data, a short training, and extra environment.
fn kiln(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("kiln"));
    cmd.args(args)
        .env("KILN_ADULT_DIR", adult_dir())
        .env_remove("MLFLOW_TRACKING_URI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// `kiln <command>` on a run of the Adult spec with a short training.
fn on_run(command: &str, run_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = adult_command(&bin("kiln"), Some(command), run_dir);
    cmd.args(["--set", "train.epochs=2"])
        .args(extra)
        .env_remove("MLFLOW_TRACKING_URI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn pipeline(run_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    on_run("run", run_dir, extra, env)
}

fn register(run_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    on_run("register", run_dir, extra, env)
}

fn decision(run_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("register/decision.json")).unwrap()).unwrap()
}

#[test]
fn local_registry_registers_once_gates_and_moves_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("runs/adult");
    let out = pipeline(&run_dir, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = decision(&run_dir);
    assert_eq!(d["passed"], true);
    let gates: Vec<&str> = d["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gate"].as_str().unwrap())
        .collect();
    assert_eq!(
        gates,
        [
            "validation",
            "metric accuracy",
            "metric roc_auc",
            "fairness"
        ]
    );
    assert_eq!(d["registered"]["backend"], "local");
    assert_eq!(d["registered"]["version"], "1");
    assert_eq!(d["registered"]["alias"], "staging");
    let registry = tmp.path().join("runs/registry/adult-income");
    assert!(registry.join("versions/1/model/model.bin").exists());
    assert!(registry.join("versions/1/version.json").exists());

    // Registering the same run again (forced past the cache) reuses version 1.
    let out = register(&run_dir, &["--force"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(decision(&run_dir)["registered"]["reused"], true);
    assert!(!registry.join("versions/2").exists(), "no second version");

    // A gate failing alone: the decision names it, exit 3, nothing registered.
    let out = register(
        &run_dir,
        &["--set", "registry.min_metrics.roc_auc=0.999"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 registration gate(s) failed, nothing registered"),
        "{err}"
    );
    assert!(err.contains("gate `metric roc_auc`: observed 0.9"), "{err}");
    let d = decision(&run_dir);
    assert_eq!(d["passed"], false);
    assert_eq!(d["registered"], Value::Null);
    let failed: Vec<&Value> = d["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["threshold"]["min"], 0.999);

    // A second run registers version 2; promote and rollback move `production`.
    let run2 = tmp.path().join("runs/adult2");
    let out = pipeline(&run2, &["--set", "train.seed=7"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(decision(&run2)["registered"]["version"], "2");
    let reg = tmp.path().join("runs/registry");
    let reg = reg.to_str().unwrap();
    let promote = |v: &str| {
        kiln(
            &["promote", "adult-income", "--version", v, "--registry", reg],
            &[],
        )
    };
    assert_eq!(
        stdout(&promote("1")),
        "adult-income: alias `production` (unset) → 1\n"
    );
    assert_eq!(
        stdout(&promote("2")),
        "adult-income: alias `production` 1 → 2\n"
    );
    let out = kiln(&["rollback", "adult-income", "--registry", reg], &[]);
    assert_eq!(stdout(&out), "adult-income: alias `production` 2 → 1\n");
    let out = kiln(&["rollback", "adult-income", "--registry", reg], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no earlier version to roll back to"),
        "{}",
        stderr(&out)
    );
    let out = promote("9");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no version 9"), "{}", stderr(&out));

    // Champion/challenger: the champion (production = v1) is scored on this test set;
    // an impossible margin fails, a zero margin against itself passes.
    let out = register(&run2, &["--set", "registry.champion_margin=0.5"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let d = decision(&run2);
    let champion = d["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"].as_str().unwrap().starts_with("champion"))
        .unwrap();
    assert_eq!(champion["threshold"]["champion_version"], "1");
    assert!(champion["threshold"]["champion"].as_f64().unwrap() > 0.85);
}

/// MLflow's own Python client reads what Kiln wrote.
fn mlflow_python(server: &MlflowServer, code: &str) -> Value {
    server.python(code)
}

#[test]
fn a_pipeline_run_lands_in_mlflow_with_a_staging_version() {
    let server = MlflowServer::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("runs/adult");
    // A registered model that already exists is reused.
    mlflow_python(
        &server,
        "import mlflow, json; mlflow.MlflowClient().create_registered_model('adult-income'); print(json.dumps(1))",
    );
    let uri = server.uri.as_str();
    let out = pipeline(&run_dir, &[], &[("MLFLOW_TRACKING_URI", uri)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let link = run_dir.join("mlflow.json");
    if let Err(e) = kiln_testkit::check_json_schema(
        &kiln_testkit::workspace_root().join("docs/contracts/mlflow.schema.json"),
        &link,
    ) {
        panic!("mlflow.json does not fit its schema: {e}");
    }
    let tracked: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
    let run_id = tracked["run_id"].as_str().unwrap();
    let seen = mlflow_python(
        &server,
        &format!(
            r#"
import json, mlflow
c = mlflow.MlflowClient()
r = c.get_run("{run_id}")
h = c.get_metric_history("{run_id}", "train.val_loss")
arts = [a.path for a in c.list_artifacts("{run_id}")] + [a.path for a in c.list_artifacts("{run_id}", "evaluate")] + [a.path for a in c.list_artifacts("{run_id}", "model")]
v = c.get_model_version_by_alias("adult-income", "staging")
print(json.dumps({{"status": r.info.status, "params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags,
  "history": [[m.step, m.value] for m in h], "artifacts": arts,
  "version": v.version, "run_id": v.run_id, "source": v.source, "vtags": v.tags, "vstatus": v.status,
  "versions": len(c.search_model_versions("name='adult-income'")),
  "datasets": {{d.dataset.name: {{"digest": d.dataset.digest, "source_type": d.dataset.source_type,
                "source": json.loads(d.dataset.source), "schema": json.loads(d.dataset.schema) if d.dataset.schema else None,
                "profile": json.loads(d.dataset.profile) if d.dataset.profile else None,
                "context": [t.value for t in d.tags if t.key == "mlflow.data.context"]}}
               for d in r.inputs.dataset_inputs}}}}))
"#
        ),
    );
    assert_eq!(seen["status"], "FINISHED");
    assert_eq!(seen["params"]["train.epochs"], "2");
    assert_eq!(seen["params"]["train.hidden"], "[64,32]");
    assert_eq!(
        seen["metrics"]["prepare.train_rows"], 32561.0,
        "{}",
        seen["metrics"]
    );
    assert!(seen["metrics"]["evaluate.roc_auc"].as_f64().unwrap() > 0.85);
    assert!(
        seen["metrics"]
            .get("validate.train_success_percent")
            .is_some(),
        "{}",
        seen["metrics"]
    );
    let history = seen["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "one val_loss per epoch: {history:?}");
    assert_eq!(history[0][0], 1);
    assert_eq!(history[1][0], 2);
    let artifacts: Vec<&str> = seen["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for expected in [
        "evaluate/metrics.json",
        "evaluate/plots",
        "model/model.bin",
        "fairness",
        "validate",
        "register",
    ] {
        assert!(
            artifacts.contains(&expected),
            "{expected} not in {artifacts:?}"
        );
    }
    assert!(
        seen["tags"]["kiln.prepare.input.source_0_"]
            .as_str()
            .unwrap()
            .len()
            == 64,
        "data hash tag"
    );
    // MLflow's own client lists the run's datasets: prepare's tables and its raw data,
    // each with the digest of the bytes that were read or written.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("prepare/manifest.json")).unwrap())
            .unwrap();
    let datasets = &seen["datasets"];
    for (name, context, rows) in [("train", "training", 32561), ("test", "evaluation", 16281)] {
        let file = format!("{name}.parquet");
        let sha = manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["path"] == file.as_str())
            .unwrap()["sha256"]
            .as_str()
            .unwrap();
        let dataset = &datasets[name];
        assert_eq!(dataset["digest"], &sha[..32], "{datasets}");
        assert_eq!(dataset["source"]["sha256"], sha, "{datasets}");
        assert_eq!(dataset["context"][0], context, "{datasets}");
        assert_eq!(dataset["profile"]["num_rows"], rows, "{datasets}");
        let columns = dataset["schema"]["mlflow_colspec"].as_array().unwrap();
        assert!(
            columns
                .iter()
                .any(|c| c["name"] == "age" && c["type"] == "long"),
            "{columns:?}"
        );
        assert!(
            columns
                .iter()
                .any(|c| c["name"] == "event_timestamp" && c["type"] == "datetime"),
            "{columns:?}"
        );
    }
    let source = &datasets["source[0]"];
    let raw_sha = manifest["inputs"][0]["sha256"].as_str().unwrap();
    assert_eq!(source["digest"], &raw_sha[..32], "{datasets}");
    assert_eq!(source["context"][0], "source", "{datasets}");
    assert!(
        source["source"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("adult.data"),
        "{datasets}"
    );
    assert_eq!(seen["version"], "1");
    assert_eq!(seen["vstatus"], "READY");
    assert_eq!(seen["run_id"], run_id);
    assert!(
        seen["source"]
            .as_str()
            .unwrap()
            .ends_with("/artifacts/model")
    );
    assert_eq!(seen["vtags"]["kiln.run_uri"], run_dir.to_str().unwrap());
    assert_eq!(seen["vtags"]["stage"], "staging");
    assert_eq!(seen["versions"], 1);

    // Idempotent: register again for the same run, no second version.
    let out = register(&run_dir, &["--force"], &[("MLFLOW_TRACKING_URI", uri)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(decision(&run_dir)["registered"]["reused"], true);
    let count = mlflow_python(
        &server,
        "import json, mlflow; print(json.dumps(len(mlflow.MlflowClient().search_model_versions(\"name='adult-income'\"))))",
    );
    assert_eq!(count, 1);

    // A 500 on one call is retried, then succeeds.
    let proxy = FaultProxy::start(uri, "model-versions/create", 1);
    let run2 = tmp.path().join("runs/adult2");
    let out = pipeline(
        &run2,
        &["--set", "train.seed=3"],
        &[("MLFLOW_TRACKING_URI", &proxy.uri)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one failure injected, one retry forwarded"
    );
    // A create is retried only after looking for what the failed call made.
    assert!(
        stderr(&out).contains("MLflow create failed and made nothing; retrying"),
        "{}",
        stderr(&out)
    );
    assert_eq!(decision(&run2)["registered"]["version"], "2");

    // Promote and roll back `production` in MLflow.
    let env = [("MLFLOW_TRACKING_URI", uri)];
    let out = kiln(&["promote", "adult-income", "--version", "1"], &env);
    assert_eq!(
        stdout(&out),
        "adult-income: alias `production` (unset) → 1\n",
        "{}",
        stderr(&out)
    );
    let out = kiln(&["promote", "adult-income", "--version", "2"], &env);
    assert_eq!(stdout(&out), "adult-income: alias `production` 1 → 2\n");
    let out = kiln(&["rollback", "adult-income"], &env);
    assert_eq!(
        stdout(&out),
        "adult-income: alias `production` 2 → 1\n",
        "{}",
        stderr(&out)
    );
    let prod = mlflow_python(
        &server,
        "import json, mlflow; print(json.dumps(mlflow.MlflowClient().get_model_version_by_alias('adult-income', 'production').version))",
    );
    assert_eq!(prod, "1");
    // The mirrored `stage` tag follows the alias: only version 1 says `production`.
    let stages = mlflow_python(
        &server,
        "import json, mlflow; c = mlflow.MlflowClient(); print(json.dumps({v: c.get_model_version('adult-income', v).tags.get('stage') for v in ['1', '2']}))",
    );
    assert_eq!(stages["1"], "production", "{stages}");
    assert_ne!(stages["2"], "production", "{stages}");
}

#[test]
fn mlflow_down_or_refusing_credentials_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec();
    // Nothing listens: exit 75 (retryable) after the retry budget.
    let down = format!("http://127.0.0.1:{}", free_port());
    let run_dir = tmp.path().join("run");
    let out = kiln(
        &[
            "prepare",
            "--spec",
            &spec,
            "--run",
            run_dir.to_str().unwrap(),
        ],
        &[
            ("MLFLOW_TRACKING_URI", &down),
            ("KILN_MLFLOW_RETRY_TIMEOUT_SECS", "2"),
        ],
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains(&format!("MLflow at {down} unreachable")),
        "{err}"
    );

    // A server that checks credentials refuses wrong ones: exit 2, says which variables.
    let server = MlflowServer::start(true);
    let out = kiln(
        &[
            "prepare",
            "--spec",
            &spec,
            "--run",
            run_dir.to_str().unwrap(),
        ],
        &[
            ("MLFLOW_TRACKING_URI", &server.uri),
            ("MLFLOW_TRACKING_USERNAME", MLFLOW_ADMIN.0),
            ("MLFLOW_TRACKING_PASSWORD", "wrong"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("credentials refused (HTTP 401)"),
        "{}",
        stderr(&out)
    );
    // The right ones work.
    let out = kiln(
        &[
            "prepare",
            "--spec",
            &spec,
            "--run",
            run_dir.to_str().unwrap(),
            "--force",
        ],
        &[
            ("MLFLOW_TRACKING_URI", &server.uri),
            ("MLFLOW_TRACKING_USERNAME", MLFLOW_ADMIN.0),
            ("MLFLOW_TRACKING_PASSWORD", MLFLOW_ADMIN.1),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run_dir.join("mlflow.json").exists());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn credentials_in_the_tracking_uri_authenticate_and_are_written_nowhere() {
    let server = MlflowServer::start(true);
    let (user, password) = MLFLOW_ADMIN;
    let credentialed = server
        .uri
        .replacen("http://", &format!("http://{user}:{password}@"), 1);
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("runs/adult");
    // The whole pipeline, tracked and registered in MLflow, with debug logs: the
    // credentials come from the URI alone (no MLFLOW_TRACKING_USERNAME/PASSWORD).
    let out = pipeline(
        &run_dir,
        &["-v"],
        &[("MLFLOW_TRACKING_URI", credentialed.as_str())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !decision(&run_dir)["registered"].is_null(),
        "{}",
        stderr(&out)
    );

    let logs = format!("{}{}", stdout(&out), stderr(&out));
    assert!(logs.lines().count() > 20, "debug logs expected:\n{logs}");
    for line in logs.lines() {
        assert!(
            !line.contains(password),
            "a log line holds the password: {line}"
        );
    }
    let files = files_under(tmp.path());
    assert!(files.len() > 20, "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            file.display()
        );
    }
    // What the run records is the server's address without them.
    let tracked: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("mlflow.json")).unwrap()).unwrap();
    assert_eq!(tracked["tracking_uri"], server.uri.as_str());
}
