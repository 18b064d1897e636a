//! kiln-validate as a user runs it: standalone on CSV and Parquet, profiling, bad
//! input, drift, and the step inside a run on Adult.

use std::path::Path;
use std::process::{Command, Output};

use kiln_testkit::{adult_dir, bin, run, stderr, stdout, workspace_root};
use serde_json::{Value, json};

fn validate(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_kiln-validate"))
        .args(args)
        .env("KILN_ADULT_DIR", adult_dir()))
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const CSV: &str =
    "id,age,city,score\n1,34,Paris,0.5\n2,51,Oslo,\n3,29,Paris,0.25\n4,,Lima,NaN\n5,62,Oslo,1.0\n";

#[test]
fn standalone_csv_passes_and_fails_with_ge_results() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(&tmp.path().join("people.csv"), CSV);
    let suite = write(
        &tmp.path().join("suite.json"),
        &json!({"name": "people", "expectations": [
            {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "age", "type_": "int64"}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age", "mostly": 0.8}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city", "value_set": ["Paris", "Oslo", "Lima"]}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "score", "min_value": 0.5, "max_value": 0.6}},
        ]})
        .to_string(),
    );
    let result_path = tmp.path().join("result.json");
    let out = validate(&[
        "--suite",
        &suite,
        "--data",
        &data,
        "--result",
        result_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4/4 expectations passed (5 rows)"),
        "{}",
        stderr(&out)
    );
    let result = read_json(&result_path);
    assert_eq!(result["success"], true);
    assert_eq!(result["statistics"]["evaluated_expectations"], 4);
    assert_eq!(result["statistics"]["success_percent"], 100.0);
    assert_eq!(
        result["results"][3]["result"]["observed_value"],
        json!((0.5 + 0.25 + 1.0) / 3.0)
    );
    assert_eq!(result["results"][1]["result"]["unexpected_count"], 1);

    // A failing suite: exit 3, one line per failed expectation, the result on stdout.
    let failing = write(
        &tmp.path().join("failing.json"),
        &json!({"name": "people", "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "max_value": 60}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "city"}, "meta": {"severity": "warning"}},
        ]})
        .to_string(),
    );
    let out = validate(&["--suite", &failing, "--data", &data]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["success"], false);
    let err = stderr(&out);
    assert!(
        err.contains("error: 2 data quality check(s) failed"),
        "{err}"
    );
    assert!(err.contains("`age` expect_column_values_to_be_between: 1 unexpected (25.00 %), e.g. 62; expected max_value=60"), "{err}");
    assert!(
        err.contains(
            "`nope` expect_column_values_to_not_be_null: error: column `nope` does not exist"
        ),
        "{err}"
    );
    assert!(
        err.contains("warn `city` expect_column_values_to_be_unique"),
        "{err}"
    );
}

#[test]
fn profile_infers_a_suite_that_the_same_data_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(&tmp.path().join("people.csv"), CSV);
    let out = validate(&["--profile", "--data", &data]);
    assert!(out.status.success(), "{}", stderr(&out));
    let suite: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let kinds: Vec<&str> = suite["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "expect_table_columns_to_match_ordered_list",
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let suite_path = write(&tmp.path().join("suite.json"), &stdout(&out));
    let out = validate(&[
        "--suite",
        &suite_path,
        "--data",
        &data,
        "--result",
        tmp.path().join("r.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_input_is_one_clear_line_and_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(&tmp.path().join("people.csv"), CSV);
    let one_error_line = |out: &Output| {
        let err = stderr(out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        errors[0].to_string()
    };
    // Malformed suite JSON: line and column.
    let bad = write(
        &tmp.path().join("bad.json"),
        "{\n  \"name\": \"x\",\n  \"expectations\": [\n    {\"type\": \"expect_column_to_exist\" \"kwargs\": {}}\n  ]\n}\n",
    );
    let out = validate(&["--suite", &bad, "--data", &data]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(
        line.contains("bad.json: malformed JSON at line 4 column 39"),
        "{line}"
    );
    // A wrong kwarg names the expectation and the kwarg.
    let wrong = write(
        &tmp.path().join("wrong.json"),
        &json!({"name": "s", "expectations": [{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city", "values": ["Paris"]}}]}).to_string(),
    );
    let out = validate(&["--suite", &wrong, "--data", &data]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(
        line.contains("expectations[0] expect_column_values_to_be_in_set: unknown kwarg `values`"),
        "{line}"
    );
    // A corrupt Parquet file: an input error (exit 2), naming the file.
    let corrupt = tmp.path().join("corrupt.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not a parquet file at all PAR1").unwrap();
    let ok_suite = write(
        &tmp.path().join("ok.json"),
        r#"{"name": "s", "expectations": []}"#,
    );
    let out = validate(&["--suite", &ok_suite, "--data", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_error_line(&out).contains("corrupt artifact"));
    assert!(one_error_line(&out).contains("corrupt.parquet"));
    // A missing data file: exit 2.
    let out = validate(&[
        "--suite",
        &ok_suite,
        "--data",
        tmp.path().join("nope.parquet").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_error_line(&out).contains("nope.parquet"));
    // An unknown expectation type fails unless --allow-unknown.
    let unknown = write(
        &tmp.path().join("unknown.json"),
        r#"{"name": "s", "expectations": [{"type": "expect_column_values_to_be_purple", "kwargs": {"column": "age"}}]}"#,
    );
    let out = validate(&["--suite", &unknown, "--data", &data]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("unknown expectation type"));
    let out = validate(&["--suite", &unknown, "--data", &data, "--allow-unknown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 unknown expectation types skipped"));
}

fn prepare_adult(run_dir: &Path) {
    let spec = workspace_root().join("examples/adult/spec.yaml");
    let out = run(Command::new(bin("kiln-prepare"))
        .args([
            "--spec",
            spec.to_str().unwrap(),
            "--run",
            run_dir.to_str().unwrap(),
            "-q",
        ])
        .env("KILN_ADULT_DIR", adult_dir()));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn in_a_run_validates_both_splits_and_drift_and_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    prepare_adult(&run_dir);
    let spec = workspace_root().join("examples/adult/spec.yaml");
    let spec = spec.to_str().unwrap();
    let out = validate(&["--spec", spec, "--run", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = read_json(&run_dir.join("validate/report.json"));
    assert_eq!(report["passed"], true);
    assert_eq!(report["train"]["meta"]["rows"], 32561);
    assert_eq!(report["test"]["meta"]["rows"], 16281);
    let evaluated = report["train"]["statistics"]["evaluated_expectations"]
        .as_u64()
        .unwrap();
    assert!(evaluated >= 60, "{evaluated}");
    // The one warning-severity expectation fails on both splits without failing the step.
    assert_eq!(
        report["train"]["statistics"]["unsuccessful_expectations"],
        1
    );
    let drift = &report["drift"];
    let columns = drift["columns"].as_array().unwrap();
    let age = columns.iter().find(|c| c["column"] == "age").unwrap();
    assert_eq!(age["verdict"], "ok");
    assert_eq!(age["reference_rows"], 32561);
    assert_eq!(age["current_rows"], 16281);
    let methods: Vec<&str> = age["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["psi", "ks"]);
    let sex = columns.iter().find(|c| c["column"] == "sex").unwrap();
    assert_eq!(sex["kind"], "categorical");
    assert!(
        sex["measures"][1]["value"].as_f64().unwrap() < 0.01,
        "train and test sex shares agree"
    );
    assert!(!columns.iter().any(|c| c["column"] == "row_id"));
    // Cached the second time.
    let out = validate(&["--spec", spec, "--run", run_dir.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("cache hit") || stderr(&out).contains("cached"),
        "{}",
        stderr(&out)
    );

    // A drift threshold no real split meets: exit 3, one line per drifted column, report written.
    let out = validate(&[
        "--spec",
        spec,
        "--run",
        run_dir.to_str().unwrap(),
        "--set",
        "validation.drift.ks_max=0.0001",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("data quality check(s) failed; see"), "{err}");
    assert!(err.contains("test: `age` drifted from train: ks"), "{err}");
    assert_eq!(
        read_json(&run_dir.join("validate/report.json"))["passed"],
        false
    );
}

#[test]
fn a_new_batch_drifts_from_the_training_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    prepare_adult(&run_dir);
    // Everyone 30 years older and all from one country: age and native-country drift.
    let mut csv = String::from("age,native-country,hours-per-week\n");
    for i in 0..500 {
        csv.push_str(&format!("{},Canada,{}\n", 50 + i % 40, 30 + i % 20));
    }
    let data = write(&tmp.path().join("batch.csv"), &csv);
    let suite = write(
        &tmp.path().join("empty.json"),
        r#"{"name": "s", "expectations": []}"#,
    );
    let reference = run_dir.join("prepare/profile.json");
    let out = validate(&[
        "--suite",
        &suite,
        "--data",
        &data,
        "--reference",
        reference.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let columns = result["drift"]["columns"].as_array().unwrap();
    let verdict = |name: &str| {
        columns.iter().find(|c| c["column"] == name).unwrap()["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("age"), "drift");
    assert_eq!(verdict("native-country"), "drift");
    assert!(stderr(&out).contains("`age` drifted"));
    // Too few rows: no verdict.
    let small = write(&tmp.path().join("small.csv"), "age\n90\n90\n");
    let out = validate(&[
        "--suite",
        &suite,
        "--data",
        &small,
        "--reference",
        reference.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        result["drift"]["columns"][0]["verdict"],
        "insufficient_data"
    );
}
