//! OpenLineage from every step: `kiln run` sends START and COMPLETE for each step to
//! an OpenLineage receiver (a test double of Marquez's endpoint, `lineage/receiver.py`);
//! every event validates against the OpenLineage 2-0-2 schemas; what one step wrote is
//! what the next read, by dataset name and version. With a file transport the events go
//! to the file; with the receiver down the run still succeeds, and the undelivered events
//! are counted, logged and kept in the run folder.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kiln_testkit::{adult_command, bin, free_port, python, run, stderr, stdout, workspace_root};
use serde_json::Value;

/// The receiver, killed when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn receiver(port: u16, events: &Path) -> Receiver {
    let mut child = Command::new(python())
        .arg(workspace_root().join("tests/lineage/receiver.py"))
        .arg(port.to_string())
        .arg(events)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    Receiver(child)
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn validate(path: &Path) {
    let schemas = kiln_testkit::manifests::schemas().join("openlineage");
    let out = run(Command::new(python())
        .arg(workspace_root().join("tests/lineage/validate_events.py"))
        .arg(schemas)
        .arg(path));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// `(namespace, name) → version` of a list of datasets.
fn versions(datasets: &Value) -> BTreeMap<(String, String), String> {
    datasets
        .as_array()
        .expect("datasets")
        .iter()
        .map(|d| {
            (
                (
                    d["namespace"].as_str().expect("namespace").to_string(),
                    d["name"].as_str().expect("name").to_string(),
                ),
                d["facets"]["version"]["datasetVersion"]
                    .as_str()
                    .expect("version")
                    .to_string(),
            )
        })
        .collect()
}

const STEPS: &[&str] = &[
    "prepare", "validate", "train", "evaluate", "fairness", "register",
];

#[test]
fn every_step_sends_start_and_complete_and_the_datasets_chain_from_step_to_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("runs/adult");
    let port = free_port();
    let received = dir.path().join("received.jsonl");
    let server = receiver(port, &received);
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2", "-q"])
        .env("OPENLINEAGE_URL", format!("http://127.0.0.1:{port}")));
    assert!(out.status.success(), "kiln run: {}", stderr(&out));
    drop(server);
    let all = events(&received);
    validate(&received);

    let mut by_job: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &all {
        by_job
            .entry(e["job"]["name"].as_str().expect("job").to_string())
            .or_default()
            .push(e);
    }
    let parent = all[1]["run"]["facets"]["parent"]["run"]["runId"].clone();
    let mut completed: BTreeMap<&str, &Value> = BTreeMap::new();
    for step in STEPS {
        let job = format!("adult.{step}");
        let list = by_job
            .get(&job)
            .unwrap_or_else(|| panic!("no events for {job}: {:?}", by_job.keys()));
        let types: Vec<&str> = list
            .iter()
            .map(|e| e["eventType"].as_str().expect("type"))
            .collect();
        assert_eq!(types, ["START", "COMPLETE"], "{job}");
        assert_eq!(list[0]["run"]["runId"], list[1]["run"]["runId"], "{job}");
        for e in list {
            assert_eq!(e["run"]["facets"]["parent"]["run"]["runId"], parent);
            assert_eq!(e["job"]["namespace"], "kiln");
        }
        completed.insert(step, list[1]);
    }
    assert!(!by_job.contains_key("adult.tune"), "tune is skipped");
    // The pipeline run itself: START first, COMPLETE last, the parent of every step.
    let pipeline = &by_job["adult"];
    assert_eq!(pipeline.len(), 2);
    assert_eq!(
        all.first().map(|e| &e["job"]["name"]),
        Some(&Value::from("adult"))
    );
    assert_eq!(
        all.last().map(|e| &e["eventType"]),
        Some(&Value::from("COMPLETE"))
    );
    assert_eq!(pipeline[0]["run"]["runId"], parent);

    // What prepare wrote, train and validate read: same names, same versions.
    let prepare_out = versions(&completed["prepare"]["outputs"]);
    for reader in ["validate", "train", "evaluate"] {
        let read = versions(&completed[reader]["inputs"]);
        let shared: Vec<_> = read
            .iter()
            .filter(|(k, _)| prepare_out.contains_key(*k))
            .collect();
        assert!(!shared.is_empty(), "{reader} reads prepare's tables");
        for (key, version) in shared {
            assert_eq!(&prepare_out[key], version, "{reader}: {key:?}");
        }
    }
    let train_out = versions(&completed["train"]["outputs"]);
    let evaluate_in = versions(&completed["evaluate"]["inputs"]);
    assert!(
        evaluate_in
            .iter()
            .any(|(k, v)| k.1.ends_with("/train/model/model.bin") && train_out.get(k) == Some(v)),
        "evaluate reads the model train wrote"
    );
    let evaluate_out = versions(&completed["evaluate"]["outputs"]);
    for (key, version) in versions(&completed["fairness"]["inputs"]) {
        assert_eq!(
            evaluate_out.get(&key),
            Some(&version),
            "fairness reads {key:?}"
        );
    }
    // The raw files, with their schema from the spec; validate's checks as assertions.
    let raw = completed["prepare"]["inputs"].as_array().expect("inputs");
    assert!(
        raw.iter()
            .any(|d| d["name"].as_str().expect("name").ends_with("/adult.data"))
    );
    assert!(
        raw.iter()
            .all(|d| d["facets"]["schema"]["fields"].is_array())
    );
    let validated = completed["validate"]["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|d| {
            d["name"]
                .as_str()
                .expect("name")
                .ends_with("/prepare/train.parquet")
        })
        .expect("validate reads train.parquet");
    let assertions = validated["inputFacets"]["dataQualityAssertions"]["assertions"]
        .as_array()
        .expect("assertions");
    assert!(assertions.len() > 5, "{assertions:?}");
    assert!(
        validated["facets"]["schema"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "age")
    );

    // `kiln lineage` traces the registered version back to the raw files.
    let registry = dir.path().join("runs/registry");
    let lineage = |json: bool| {
        let mut cmd = Command::new(bin("kiln"));
        cmd.args(["lineage", "adult-income@staging", "--registry"])
            .arg(&registry);
        if json {
            cmd.arg("--json");
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "kiln lineage: {}", stderr(&out));
        stdout(&out)
    };
    let text = lineage(false);
    let traced: Value = serde_json::from_str(&lineage(true)).expect("JSON");
    assert_eq!(traced["run_matches"], true);
    let adult = kiln_testkit::adult_dir();
    let sources = traced["chain"]["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 2, "{sources:?}");
    for file in ["adult.data", "adult.test"] {
        let out = run(Command::new("sha256sum").arg(adult.join(file)));
        let sha = stdout(&out)
            .split_whitespace()
            .next()
            .expect("sha256")
            .to_string();
        let source = sources
            .iter()
            .find(|s| {
                s["uri"]
                    .as_str()
                    .expect("uri")
                    .ends_with(&format!("/{file}"))
            })
            .unwrap_or_else(|| panic!("{file} is a raw input: {sources:?}"));
        assert_eq!(source["sha256"], sha.as_str());
        assert!(
            text.contains(&sha),
            "the text names {file}'s sha256:\n{text}"
        );
    }
    let steps: Vec<&str> = traced["chain"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(
        steps,
        [
            "register", "fairness", "evaluate", "train", "validate", "prepare"
        ]
    );

    // The same run again through the file transport: every step, cached, completes.
    let file = dir.path().join("events.jsonl");
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2", "-q"])
        .env("OPENLINEAGE__TRANSPORT__TYPE", "file")
        .env("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", &file));
    assert!(out.status.success(), "{}", stderr(&out));
    let cached = events(&file);
    assert_eq!(cached.len(), 2 * STEPS.len() + 2, "{cached:?}");
    validate(&file);

    // The receiver down: the run succeeds; each undelivered event is logged and kept.
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2"])
        .env("OPENLINEAGE_URL", format!("http://127.0.0.1:{port}")));
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let expected = 2 * STEPS.len() + 2;
    let failures = log.matches("not delivered to").count();
    assert_eq!(failures, expected, "{log}");
    assert!(log.contains(&format!(
        "{expected} event(s) of this run were not delivered"
    )));
    let kept = std::fs::read_dir(run_dir.join("lineage/undelivered"))
        .expect("kept events")
        .count();
    assert_eq!(kept, expected);
}
