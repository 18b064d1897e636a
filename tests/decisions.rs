//! One decision rule everywhere: a row whose value of the mitigation attribute is
//! missing is decided with the policy's default threshold, by fairness (the decisions
//! that ship) and by kiln-serve (the decisions that are served) alike.

use std::path::Path;
use std::process::Command;

use kiln_testkit::{
    MODEL, Server, adult_dir, bin, predict_path, run, serve_python, stderr, stdout, v1_body,
    v1_rows, workspace_root,
};
use serde_json::Value;

/// Adult with the `sex` field blanked ('?', the spec's null value) on every 25th line.
fn adult_with_missing_sex(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for file in ["adult.data", "adult.test"] {
        let text = std::fs::read_to_string(adult_dir().join(file)).expect("adult");
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(n, line)| {
                let mut fields: Vec<&str> = line.split(", ").collect();
                if n % 25 == 3 && fields.len() == 15 {
                    fields[9] = "?";
                }
                fields.join(", ")
            })
            .collect();
        std::fs::write(to.join(file), lines.join("\n") + "\n").expect("write");
    }
}

/// The Adult example with `sex` nullable (schema and the not-null expectation), and its
/// parity gate loosened: this test is about how rows decide, not about the gate (the
/// blanked rows and two epochs land near 0.75).
fn example_with_nullable_sex(to: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).expect("mkdir");
    let example = workspace_root().join("examples/adult");
    let spec = std::fs::read_to_string(example.join("spec.yaml")).expect("spec");
    let from = "{name: sex, type: string, nullable: false}";
    assert!(spec.contains(from), "the example's sex column");
    let gate = "{metric: demographic_parity_ratio, attribute: sex, min: 0.8}";
    assert!(spec.contains(gate), "the example's parity gate");
    std::fs::write(
        to.join("spec.yaml"),
        spec.replace(from, "{name: sex, type: string, nullable: true}")
            .replace(
                gate,
                "{metric: demographic_parity_ratio, attribute: sex, min: 0.5}",
            ),
    )
    .expect("spec");
    let mut suite: Value =
        serde_json::from_slice(&std::fs::read(example.join("expectations.json")).expect("suite"))
            .expect("suite JSON");
    suite["expectations"]
        .as_array_mut()
        .expect("expectations")
        .retain(|e| {
            !(e["type"] == "expect_column_values_to_not_be_null" && e["kwargs"]["column"] == "sex")
        });
    std::fs::write(to.join("expectations.json"), suite.to_string()).expect("suite");
    to.join("spec.yaml")
}

/// A Parquet column as JSON values, through pyarrow.
fn column(path: &Path, name: &str) -> Vec<Value> {
    let script = "import json, sys, pyarrow.parquet as pq\nprint(json.dumps(pq.read_table(sys.argv[1]).column(sys.argv[2]).to_pylist()))";
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(path)
        .arg(name));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).expect("column JSON")
}

#[test]
fn rows_with_a_missing_group_value_decide_alike_in_fairness_and_in_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    adult_with_missing_sex(&data);
    let spec = example_with_nullable_sex(&dir.path().join("example"));
    let run_dir = dir.path().join("runs/adult");
    let out = run(Command::new(bin("kiln"))
        .arg("run")
        .arg("--spec")
        .arg(&spec)
        .arg("--run")
        .arg(&run_dir)
        .args(["--set", "train.epochs=2", "-q"])
        .env("KILN_ADULT_DIR", &data)
        .env("MLFLOW_TRACKING_URI", "")
        .env_remove("KILN_SIGNING_KEY"));
    assert!(out.status.success(), "kiln run: {}", stderr(&out));

    let policy: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!(
            "runs/registry/{MODEL}/versions/1/model/decision_policy.json"
        )))
        .expect("the registered policy"),
    )
    .expect("policy JSON");
    assert_eq!(
        policy["groups"]["attribute"], "sex",
        "mitigation chose group thresholds"
    );
    let default = policy["groups"]["default_threshold"]
        .as_f64()
        .expect("default");

    let rows = v1_rows(&run_dir);
    let missing: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i]["sex"].is_null())
        .collect();
    assert!(
        missing.len() > 500,
        "{} test rows without sex",
        missing.len()
    );
    let shipped: Vec<i64> = column(&run_dir.join("fairness/decisions.parquet"), "decision")
        .iter()
        .map(|v| v.as_i64().expect("0/1"))
        .collect();
    let scores: Vec<f64> = column(&run_dir.join("evaluate/predictions.parquet"), "score")
        .iter()
        .map(|v| v.as_f64().expect("score"))
        .collect();
    assert_eq!(shipped.len(), rows.len());
    for &i in &missing {
        assert_eq!(
            shipped[i],
            i64::from(scores[i] >= default),
            "row {i}: fairness decided a missing sex with the default threshold"
        );
    }

    // The registered version served: every test row, the same decisions.
    let registry = dir.path().join("runs/registry");
    let server = Server::launch(
        &[
            "--model",
            &format!("{MODEL}@staging"),
            "--registry",
            registry.to_str().expect("path"),
        ],
        &[],
    );
    let mut served = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(2_000) {
        let (code, body) = server
            .post(&predict_path(), &v1_body(chunk))
            .expect("answer");
        assert_eq!(code, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("V1 JSON");
        served.extend(
            answer["predictions"]
                .as_array()
                .expect("predictions")
                .iter()
                .map(|p| p["label"].as_i64().expect("label")),
        );
    }
    assert_eq!(served.len(), shipped.len());
    let differing: Vec<usize> = (0..served.len())
        .filter(|&i| served[i] != shipped[i])
        .collect();
    assert!(
        differing.is_empty(),
        "rows decided differently: {differing:?}"
    );
    // Not vacuous: among the rows without sex, the default threshold decided both ways.
    let positives = missing.iter().filter(|&&i| shipped[i] == 1).count();
    assert!(
        positives > 0 && positives < missing.len(),
        "{positives} of {}",
        missing.len()
    );
}
