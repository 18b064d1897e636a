//! kiln-tune on UCI Adult as a user runs it: the search at the CI budget, the tuned
//! model on adult.test, determinism, and a search killed midway that, run again,
//! repeats only the trials that had not finished.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_testkit::{adult_dir, bin, run, stderr, workspace_root};

fn spec() -> PathBuf {
    workspace_root().join("examples/adult/spec.yaml")
}

/// The example's `tune:` section, as `make tune` passes it.
fn tune_section() -> String {
    let text = std::fs::read_to_string(workspace_root().join("examples/adult/tune.yaml")).unwrap();
    format!("tune={text}")
}

fn command(binary: &Path, run_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--spec")
        .arg(spec())
        .arg("--run")
        .arg(run_dir)
        .arg("--set")
        .arg(tune_section())
        .args(extra)
        .env("KILN_ADULT_DIR", adult_dir());
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

    // The same seed chooses the same configuration and trains the same bundle.
    let again = tmp.path().join("again");
    for (binary, what) in [(bin("kiln-prepare"), "prepare"), (tune_bin(), "tune")] {
        let out = step(&binary, &again, &["-q"]);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
    }
    assert_eq!(
        std::fs::read(again.join("tune/best.json")).unwrap(),
        std::fs::read(dir.join("tune/best.json")).unwrap(),
        "two searches with one seed chose differently"
    );
    let out = step(&bin("kiln-train"), &again, &["-q"]);
    assert!(out.status.success(), "train: {}", stderr(&out));
    let model = |d: &Path| std::fs::read(d.join("train/model/model.bin")).unwrap();
    assert!(model(&again) == model(&dir), "the tuned bundles differ");
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
