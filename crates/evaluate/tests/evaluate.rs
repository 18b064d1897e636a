//! kiln-evaluate as a user runs it: inside a run on Adult, and as a standalone audit
//! of predictions files (compared with scikit-learn's numbers for the same files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_testkit::{
    adult_dir, bin, parse_svg, pyarrow_describe, run, stderr, stdout, workspace_root,
};

fn evaluate(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_kiln-evaluate"))
        .args(args)
        .env("KILN_ADULT_DIR", adult_dir()))
}

fn fixture(name: &str) -> PathBuf {
    workspace_root()
        .join("crates/stats/tests/fixtures/metrics")
        .join(name)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn evaluates_the_adult_model_and_writes_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let spec = workspace_root().join("examples/adult/spec.yaml");
    let common = [
        "--spec",
        spec.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "-q",
    ];
    for step in ["kiln-prepare", "kiln-train"] {
        let out = run(Command::new(bin(step))
            .args(common)
            .env("KILN_ADULT_DIR", adult_dir()));
        assert!(out.status.success(), "{step}: {}", stderr(&out));
    }
    let out = evaluate(&common);
    assert!(out.status.success(), "{}", stderr(&out));

    let metrics = json(&run_dir.join("evaluate/metrics.json"));
    assert_eq!(metrics["rows"], 16_281);
    assert_eq!(metrics["positives"], 3_846);
    assert!(
        metrics["roc_auc"].as_f64().unwrap() >= 0.905,
        "{}",
        metrics["roc_auc"]
    );
    assert!(
        metrics["accuracy"].as_f64().unwrap() >= 0.85,
        "{}",
        metrics["accuracy"]
    );
    let ci = &metrics["bootstrap"]["roc_auc"];
    assert!(ci["low"].as_f64().unwrap() < metrics["roc_auc"].as_f64().unwrap());
    assert!(ci["high"].as_f64().unwrap() > metrics["roc_auc"].as_f64().unwrap());
    assert_eq!(metrics["bootstrap"]["resamples"], 1000);

    let predictions = run_dir.join("evaluate/predictions.parquet");
    let table = pyarrow_describe(&predictions);
    assert_eq!(table["rows"], 16_281);
    let columns: Vec<&str> = table["schema"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for column in ["row_id", "income", "score", "predicted", "sex", "race"] {
        assert!(
            columns.contains(&column),
            "{column} missing from {columns:?}"
        );
    }

    // Plots: well-formed SVG for an independent XML parser, with the curves drawn.
    for plot in [
        "roc.svg",
        "precision_recall.svg",
        "calibration.svg",
        "confusion_matrix.svg",
        "score_histogram.svg",
    ] {
        let path = run_dir.join("evaluate/plots").join(plot);
        let (tag, elements) = parse_svg(&path);
        assert_eq!(tag, "{http://www.w3.org/2000/svg}svg", "{plot}");
        assert!(elements > 10, "{plot} has {elements} elements");
        assert!(
            std::fs::metadata(&path).unwrap().len() < 100_000,
            "{plot} is small"
        );
    }
    let roc = std::fs::read_to_string(run_dir.join("evaluate/plots/roc.svg")).unwrap();
    assert!(
        roc.contains("<polyline") && roc.contains("model (AUC 0.9"),
        "ROC curve with its AUC"
    );

    // Auditing the step's own predictions file gives the step's numbers.
    let audit = evaluate(&[
        "--predictions",
        predictions.to_str().unwrap(),
        "--label",
        "income",
        "--score",
        "score",
        "--bootstrap",
        "0",
    ]);
    assert!(audit.status.success(), "{}", stderr(&audit));
    let audited: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    for key in [
        "roc_auc",
        "average_precision",
        "accuracy",
        "f1",
        "log_loss",
        "brier",
    ] {
        assert_eq!(audited[key], metrics[key], "{key}");
    }
    // A second evaluate is a cache hit.
    let again = evaluate(&common[..4]);
    assert!(stderr(&again).contains("cache hit"), "{}", stderr(&again));
}

#[test]
fn standalone_audit_of_a_csv_equals_scikit_learn() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("report.json");
    let out = evaluate(&[
        "--predictions",
        fixture("ties.csv").to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--bootstrap",
        "200",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "the report went to --out");
    assert!(
        stderr(&out).contains("roc auc"),
        "a table on stderr: {}",
        stderr(&out)
    );
    let report = json(&out_file);
    let expected = &json(&fixture("expected.json"))["ties"];
    for (key, tolerance) in [
        ("accuracy", 1e-9),
        ("precision", 1e-9),
        ("recall", 1e-9),
        ("f1", 1e-9),
        ("log_loss", 1e-9),
        ("brier", 1e-9),
        ("roc_auc", 1e-6),
        ("average_precision", 1e-6),
    ] {
        let (a, e) = (
            report[key].as_f64().unwrap(),
            expected[key].as_f64().unwrap(),
        );
        assert!(
            (a - e).abs() <= tolerance,
            "{key}: kiln {a} vs scikit-learn {e}"
        );
    }
    assert_eq!(report["confusion"], expected["confusion"]);
}

#[test]
fn degenerate_predictions_are_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    // One class only: AUC is undefined and written as null.
    let one_class = write("one.csv", "label,score\n1,0.9\n1,0.4\n");
    let out = evaluate(&["--predictions", &one_class, "--bootstrap", "50"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["roc_auc"], serde_json::Value::Null);
    assert!(
        stderr(&out).contains("roc auc         undefined"),
        "{}",
        stderr(&out)
    );

    // Out-of-range score, empty file, missing column, a label that is not 0/1: exit 2.
    for (name, text, expected) in [
        (
            "range.csv",
            "label,score\n0,0.2\n1,1.7\n",
            "score 1.7 in row 2 is not a probability",
        ),
        ("empty.csv", "label,score\n", "no predictions to evaluate"),
        (
            "columns.csv",
            "y,p\n0,0.2\n",
            "header has no column `label`",
        ),
        (
            "labels.csv",
            "label,score\n0,0.2\n2,0.4\n",
            "label `label` is 2 in row 2; expected 0 or 1",
        ),
    ] {
        let path = write(name, text);
        let out = evaluate(&["--predictions", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    // Past the first batch (65,536 rows) a bad label is named by its row in the file.
    let mut long = String::from("label,score\n");
    for i in 0..70_000 {
        long.push_str(if i == 69_999 { "3,0.5\n" } else { "1,0.5\n" });
    }
    let path = write("long.csv", &long);
    let out = evaluate(&["--predictions", &path, "--bootstrap", "0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("label `label` is 3 in row 70000; expected 0 or 1"),
        "{err}"
    );
    // Neither --spec nor --predictions: a usage error from the argument parser.
    let out = evaluate(&[]);
    assert_eq!(out.status.code(), Some(2));
}
