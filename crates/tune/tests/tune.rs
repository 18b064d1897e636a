//! kiln-tune on UCI Adult as a user runs it: the search at the CI budget, the tuned
//! model on adult.test, determinism, the same search fanned out as Argo runs it, the
//! trials as MLflow child runs on a real server, and a search killed midway that, run
//! again, repeats only the trials that had not finished.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_testkit::{MlflowServer, adult_command, bin, run, stderr, workspace_root};

/// The example's `tune:` section, as `make tune` passes it.
fn tune_section() -> String {
    let text = std::fs::read_to_string(workspace_root().join("examples/adult/tune.yaml")).unwrap();
    format!("tune={text}")
}

fn command(binary: &Path, run_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = adult_command(binary, None, run_dir);
    cmd.arg("--set").arg(tune_section()).args(extra);
    cmd
}

fn step(binary: &Path, run_dir: &Path, extra: &[&str]) -> Output {
    run(&mut command(binary, run_dir, extra))
}

fn tune_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln-tune"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn trial_files(run_dir: &Path) -> Vec<String> {
    let dir = run_dir.join("tune/trials");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_tuned_model_meets_the_bar_on_adult_test_and_repeats_for_a_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = step(&bin("kiln-prepare"), &dir, &["-q"]);
    assert!(out.status.success(), "prepare: {}", stderr(&out));
    let out = step(&tune_bin(), &dir, &["-q"]);
    assert!(out.status.success(), "tune: {}", stderr(&out));

    let trials = json(&dir.join("tune/trials.json"));
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 8);
    let best = json(&dir.join("tune/best.json"));
    let best_value = best["value"].as_f64().unwrap();
    // best.json is a contract: it fits its committed schema.
    kiln_testkit::check_json_schema(
        &workspace_root().join("docs/contracts/tune.best.schema.json"),
        &dir.join("tune/best.json"),
    )
    .unwrap_or_else(|e| panic!("tune/best.json: {e}"));
    // The run's report reads both through their contracts.
    let out = run(Command::new(bin("kiln")).arg("report").arg(&dir));
    assert!(out.status.success(), "kiln report: {}", stderr(&out));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<h2>Hyperparameter search</h2><p>8 trials"),
        "the tune section"
    );
    // The best is the top unpruned trial, and every trial's value is a validation AUC.
    for t in trials {
        let v = t["value"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&v), "trial value {v}");
        if !t["pruned"].as_bool().unwrap() {
            assert!(v <= best_value, "trial {} beats the best", t["index"]);
        }
    }
    let pruned = trials.iter().filter(|t| t["pruned"] == true).count();
    let pruned_epochs: Vec<u64> = trials
        .iter()
        .filter(|t| t["pruned"] == true)
        .map(|t| t["epochs_run"].as_u64().unwrap())
        .collect();
    // Successive halving stops poor trials at a rung (4 or 8 epochs here).
    assert!(
        pruned_epochs.iter().all(|e| [4, 8, 16].contains(e)),
        "{pruned_epochs:?}"
    );
    #[allow(clippy::print_stderr)] // the measurement, for the test log
    {
        eprintln!("{} trials, {pruned} pruned; best {best}", trials.len());
    }

    // train applies best.json: the bundle's training config carries the tuned values.
    let out = step(&bin("kiln-train"), &dir, &["-q"]);
    assert!(out.status.success(), "train: {}", stderr(&out));
    let config = json(&dir.join("train/model/training_config.json"));
    let sigma = best["params"]["train.numeric_embedding.periodic.sigma"]
        .as_f64()
        .unwrap();
    assert_eq!(config["numeric_embedding"]["periodic"]["sigma"], sigma);
    assert_eq!(
        config["learning_rate"],
        best["params"]["train.learning_rate"]
    );

    let out = step(&bin("kiln-evaluate"), &dir, &["-q"]);
    assert!(out.status.success(), "evaluate: {}", stderr(&out));
    let metrics = json(&dir.join("evaluate/metrics.json"));
    let (auc, acc) = (
        metrics["roc_auc"].as_f64().unwrap(),
        metrics["accuracy"].as_f64().unwrap(),
    );
    #[allow(clippy::print_stderr)] // the measurement, for the test log
    {
        eprintln!("tuned model on adult.test: ROC AUC {auc:.4}, accuracy {acc:.4}");
    }
    assert!(auc >= 0.920, "ROC AUC on adult.test {auc:.4} < 0.920");
    assert!(acc >= 0.865, "accuracy on adult.test {acc:.4} < 0.865");

    // The same seed chooses the same configuration and trains the same bundle, here
    // with the second search fanned out as Argo runs it: planner, one process per
    // trial (the pods of a round at once), then the tune step collecting the trials.
    let again = tmp.path().join("again");
    let out = step(&bin("kiln-prepare"), &again, &["-q"]);
    assert!(out.status.success(), "prepare: {}", stderr(&out));
    let rounds = fan_out(&again, &tmp.path().join("plan"));
    assert_eq!(rounds, 4, "8 trials at parallelism 2");
    let out = step(&tune_bin(), &again, &["-q"]);
    assert!(out.status.success(), "tune (select): {}", stderr(&out));
    let summary = &json(&again.join("tune/manifest.json"))["summary"];
    assert_eq!(
        summary["reused_trials"], 8,
        "the select step trained: {summary}"
    );
    assert_eq!(
        std::fs::read(again.join("tune/best.json")).unwrap(),
        std::fs::read(dir.join("tune/best.json")).unwrap(),
        "the fanned-out search and the in-process search with one seed chose differently"
    );
    assert_eq!(
        json(&again.join("tune/trials.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["params"].clone(), t["value"].clone(), t["pruned"].clone()))
            .collect::<Vec<_>>(),
        trials
            .iter()
            .map(|t| (t["params"].clone(), t["value"].clone(), t["pruned"].clone()))
            .collect::<Vec<_>>(),
        "the trials differ between the fan-out and the in-process search"
    );
    let out = step(&bin("kiln-train"), &again, &["-q"]);
    assert!(out.status.success(), "train: {}", stderr(&out));
    let model = |d: &Path| std::fs::read(d.join("train/model/model.bin")).unwrap();
    assert!(model(&again) == model(&dir), "the tuned bundles differ");
}

/// Runs the search as the Argo template does: plan a round, run its trials as separate
/// processes at once, until the planner says `last`. Returns the rounds run. Checks on
/// the way that a pod of a later round and a pod with other parameters are refused.
fn fan_out(dir: &Path, plan_dir: &Path) -> usize {
    let mut rounds = 0;
    loop {
        let plan_arg = plan_dir.to_str().unwrap();
        let out = step(&tune_bin(), dir, &["-q", "--plan-round", plan_arg]);
        assert!(out.status.success(), "plan: {}", stderr(&out));
        let trials = json(&plan_dir.join("trials.json"));
        let trials = trials.as_array().unwrap().clone();
        let last = std::fs::read_to_string(plan_dir.join("last")).unwrap();
        let round = json(&plan_dir.join("round.json"))["round"]
            .as_u64()
            .unwrap();
        assert_eq!(round as usize, rounds, "the planner skipped a round");
        if rounds == 0 {
            let out = step(&tune_bin(), dir, &["-q", "--trial", "7"]);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stderr(&out).contains("run those first"), "{}", stderr(&out));
            let wrong = r#"{"train.learning_rate":0.5}"#;
            let out = step(
                &tune_bin(),
                dir,
                &["-q", "--trial", "0", "--trial-params", wrong],
            );
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stderr(&out).contains("not the planned"), "{}", stderr(&out));
        }
        let pods: Vec<_> = trials
            .iter()
            .map(|t| {
                let index = t["index"].to_string();
                let params = t["params"].as_str().unwrap().to_string();
                command(
                    &tune_bin(),
                    dir,
                    &["-q", "--trial", &index, "--trial-params", &params],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for pod in pods {
            let out = pod.wait_with_output().unwrap();
            assert!(out.status.success(), "trial: {}", stderr(&out));
        }
        if rounds == 0 {
            // A retried pod of a kept trial trains nothing and leaves the trial alone.
            let before = trial_files(dir);
            let kept = std::fs::read(dir.join("tune/trials").join(&before[0])).unwrap();
            let params = trials[0]["params"].as_str().unwrap();
            let index = trials[0]["index"].to_string();
            let started = Instant::now();
            let out = step(
                &tune_bin(),
                dir,
                &["-q", "--trial", &index, "--trial-params", params],
            );
            assert!(out.status.success(), "retried trial: {}", stderr(&out));
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the retry trained"
            );
            assert_eq!(trial_files(dir), before);
            assert_eq!(
                std::fs::read(dir.join("tune/trials").join(&before[0])).unwrap(),
                kept
            );
        }
        rounds += 1;
        if last.trim() == "true" {
            break;
        }
        assert!(rounds < 100, "the planner never said last");
    }
    // Nothing is left: the planner hands Argo an empty list (the step is skipped).
    let out = step(
        &tune_bin(),
        dir,
        &["-q", "--plan-round", plan_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "plan: {}", stderr(&out));
    assert_eq!(json(&plan_dir.join("trials.json")), serde_json::json!([]));
    rounds
}

#[test]
fn trials_are_child_runs_of_the_pipeline_run_in_mlflow() {
    let server = MlflowServer::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let small = ["-q", "--set", "tune.trials=4", "--set", "train.epochs=5"];
    let out = step(&bin("kiln-prepare"), &dir, &["-q"]);
    assert!(out.status.success(), "prepare: {}", stderr(&out));
    let tracked = |d: &Path| {
        let mut cmd = command(&tune_bin(), d, &small);
        cmd.env("MLFLOW_TRACKING_URI", &server.uri);
        run(&mut cmd)
    };
    let out = tracked(&dir);
    assert!(out.status.success(), "tune: {}", stderr(&out));
    // A rerun (the step cached) logs nothing twice.
    let out = tracked(&dir);
    assert!(out.status.success(), "tune again: {}", stderr(&out));

    let parent = json(&dir.join("mlflow.json"))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = server.python(&format!(
        r#"
import json, mlflow
c = mlflow.MlflowClient()
p = c.get_run("{parent}")
runs = c.search_runs([p.info.experiment_id], filter_string="tags.mlflow.parentRunId = '{parent}'")
out = []
for r in runs:
    h = c.get_metric_history(r.info.run_id, "val_auc")
    out.append({{"name": r.info.run_name, "status": r.info.status, "params": r.data.params,
      "tags": r.data.tags, "metrics": r.data.metrics, "history": [[m.step, m.value] for m in h]}})
print(json.dumps(sorted(out, key=lambda r: r["name"])))
"#
    ));
    let children = seen.as_array().unwrap();
    let trials = json(&dir.join("tune/trials.json"));
    let trials = trials.as_array().unwrap();
    let best = json(&dir.join("tune/best.json"));
    assert_eq!(
        children.len(),
        4,
        "one child run per trial, none twice: {seen}"
    );
    for (child, trial) in children.iter().zip(trials) {
        let index = trial["index"].as_u64().unwrap();
        assert_eq!(child["name"], format!("trial-{index:04}"));
        assert_eq!(child["status"], "FINISHED");
        assert_eq!(child["tags"]["kiln.tune.trial"], index.to_string());
        assert_eq!(
            child["tags"]["kiln.tune.best"],
            (best["trial"] == index).to_string()
        );
        // Parameters as the trial tried them; the metric history epoch by epoch.
        for (key, value) in trial["params"].as_object().unwrap() {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            assert_eq!(child["params"][key], text, "{key}");
        }
        let history: Vec<(u64, f64)> = trial["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["epoch"].as_u64().unwrap(), r["val_auc"].as_f64().unwrap()))
            .collect();
        let logged: Vec<(u64, f64)> = child["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(logged, history, "trial {index}'s val_auc history");
        assert_eq!(child["metrics"]["best_val_auc"], trial["value"]);
    }
}

#[test]
fn a_killed_search_run_again_repeats_only_the_unfinished_trials() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = step(&bin("kiln-prepare"), &dir, &["-q"]);
    assert!(out.status.success(), "prepare: {}", stderr(&out));
    let mut child = command(&tune_bin(), &dir, &["-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first round (two trials) to be kept, then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(300);
    while trial_files(&dir).len() < 2 {
        assert!(Instant::now() < deadline, "no trial finished");
        assert!(child.try_wait().unwrap().is_none(), "tune ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        !dir.join("tune/manifest.json").exists(),
        "an interrupted search committed"
    );
    let kept = trial_files(&dir);
    assert!(
        kept.len() < 8,
        "the search finished before the signal: {kept:?}"
    );

    let out = step(&tune_bin(), &dir, &["-q"]);
    assert!(out.status.success(), "tune again: {}", stderr(&out));
    let summary = &json(&dir.join("tune/manifest.json"))["summary"];
    assert_eq!(summary["trials"], 8);
    assert_eq!(
        summary["reused_trials"].as_u64().unwrap() as usize,
        kept.len(),
        "the rerun did not reuse exactly the finished trials"
    );
    assert_eq!(trial_files(&dir).len(), 8);
}
