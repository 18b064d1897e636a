//! Offline checks of the deployment manifests: the Argo template and workflow validate
//! against Argo's schema with unknown fields rejected, a broken copy fails, and the
//! template's DAG runs the steps in the order `kiln run` uses.

use std::path::PathBuf;
use std::process::Command;

use kiln_testkit::{python, run, stderr, stdout, workspace_root};

/// The schemas of ../shared/schemas (or `KILN_SCHEMAS_DIR`).
fn schemas() -> PathBuf {
    let dir = std::env::var_os("KILN_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/schemas"));
    assert!(
        dir.join("argo-workflows/schema.json").exists(),
        "no Argo schema under {}",
        dir.display()
    );
    dir
}

fn check_argo(files: &[PathBuf]) -> std::process::Output {
    run(Command::new(python())
        .arg(workspace_root().join("tests/manifests/check_argo.py"))
        .arg(schemas().join("argo-workflows/schema.json"))
        .args(files))
}

#[test]
fn argo_manifests_validate_and_a_typo_fails() {
    let root = workspace_root();
    let files = [
        root.join("argo/kiln-pipeline.yaml"),
        root.join("argo/workflow-adult.yaml"),
    ];
    let out = check_argo(&files);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let tmp = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(&files[0]).unwrap();
    for (what, from, to) in [
        (
            "a typo'd field",
            "activeDeadlineSeconds: 3600",
            "activeDeadLineSeconds: 3600",
        ),
        (
            "a wrong type",
            "runAsNonRoot: true\n    runAsUser: 65532",
            "runAsNonRoot: yes-please\n    runAsUser: 65532",
        ),
        (
            "an unknown template field",
            "      retryStrategy:\n        limit: \"3\"",
            "      retryStrategy:\n        limits: \"3\"",
        ),
    ] {
        assert!(
            template.contains(from),
            "{what}: `{from}` not in the template"
        );
        let broken = tmp.path().join("broken.yaml");
        std::fs::write(&broken, template.replacen(from, to, 1)).unwrap();
        let out = check_argo(&[broken]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what} passed: {}",
            stdout(&out)
        );
        assert!(
            stdout(&out).contains("broken.yaml: WorkflowTemplate"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn the_argo_dag_runs_the_steps_in_kiln_run_order() {
    let text = std::fs::read_to_string(workspace_root().join("argo/kiln-pipeline.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let templates = doc["spec"]["templates"].as_sequence().unwrap();
    let dag = templates.iter().find(|t| t["name"] == "pipeline").unwrap();
    let tasks = dag["dag"]["tasks"].as_sequence().unwrap();
    // (task, its step, what it depends on)
    let mut pending: Vec<(String, String, Vec<String>)> = tasks
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap().to_string();
            let step = t["arguments"]["parameters"]
                .as_sequence()
                .and_then(|p| p.iter().find(|p| p["name"] == "step"))
                .and_then(|p| p["value"].as_str())
                .unwrap_or(t["template"].as_str().unwrap())
                .to_string();
            let depends = t["depends"]
                .as_str()
                .map(|d| d.split("&&").map(|s| s.trim().to_string()).collect())
                .unwrap_or_default();
            (name, step, depends)
        })
        .collect();
    // Kahn's algorithm; the DAG must be a chain for the order to be unique.
    let mut order = Vec::new();
    let mut done: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].2.iter().all(|d| done.contains(d)))
            .collect();
        assert_eq!(ready.len(), 1, "the DAG is not a single chain at {done:?}");
        let (name, step, _) = pending.remove(ready[0]);
        done.push(name);
        order.push(step);
    }
    assert_eq!(
        order,
        kiln_cli::PIPELINE,
        "argo/kiln-pipeline.yaml and `kiln run` disagree"
    );
}
