//! The whole pipeline as a user runs it: `kiln run` on the UCI Adult example.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_testkit::{adult_dir, bin, pyarrow_describe, run, stderr, stdout, workspace_root};

fn spec() -> PathBuf {
    workspace_root().join("examples/adult/spec.yaml")
}

fn kiln(args: &[&str], adult: &Path) -> Output {
    run(Command::new(bin("kiln"))
        .args(args)
        .env("KILN_ADULT_DIR", adult))
}

fn kiln_run(run_dir: &Path, adult: &Path, extra: &[&str]) -> Output {
    let spec = spec();
    let mut args = vec![
        "run",
        "--spec",
        spec.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = kiln(&args, adult);
    assert!(out.status.success(), "kiln run failed: {}", stderr(&out));
    out
}

fn step_status(out: &Output, step: &str) -> String {
    stdout(out)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn adult_is_prepared_with_the_published_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let out = kiln_run(&run_dir, &adult_dir(), &[]);
    assert_eq!(step_status(&out, "prepare"), "ran");
    assert_eq!(step_status(&out, "validate"), "ran");
    assert_eq!(step_status(&out, "train"), "ran");
    assert_eq!(step_status(&out, "evaluate"), "ran");
    assert_eq!(step_status(&out, "fairness"), "ran");
    assert_eq!(step_status(&out, "register"), "ran");
    let decision: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("register/decision.json")).unwrap())
            .unwrap();
    assert_eq!(decision["registered"]["backend"], "local");
    assert!(run_dir.join("evaluate/metrics.json").exists());
    // One self-contained HTML report, path printed at the end.
    let report_line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("report: "))
        .map(str::to_string);
    let report = run_dir.join("report.html");
    assert_eq!(report_line, Some(format!("report: {}", report.display())));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for section in [
        "Data quality",
        "Model quality",
        "Fairness",
        "Registration",
        "demographic_parity_ratio",
    ] {
        assert!(html.contains(section), "{section} missing from the report");
    }
    assert!(html.matches("<svg").count() >= 8, "plots inline");
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );
    assert!(html.len() < 600_000, "small: {} bytes", html.len());
    let validation: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("validate/report.json")).unwrap())
            .unwrap();
    assert_eq!(
        validation["passed"], true,
        "the example suite passes on Adult"
    );
    assert!(run_dir.join("fairness/report.json").exists());
    assert!(run_dir.join("train/model/metadata.json").exists());
    // Every cross-step artifact of the run fits its committed JSON Schema, as an
    // independent validator reads it (the MLflow link needs MLflow: register's test).
    for (path, _) in kiln_core::contracts::schemas() {
        let schema = workspace_root()
            .join("docs/contracts")
            .join(kiln_core::contracts::schema_file(&path));
        let artifact = run_dir.join(&path);
        if path == "mlflow.json" {
            assert!(!artifact.exists(), "no MLflow, no link");
            continue;
        }
        if path == "tune/best.json" {
            assert!(!artifact.exists(), "the example has no tune: section");
            continue;
        }
        assert!(artifact.exists(), "{path} missing");
        if let Err(e) = kiln_testkit::check_json_schema(&schema, &artifact) {
            panic!("{path} does not fit {}: {e}", schema.display());
        }
    }

    // An independent reader sees the counts of ../shared/data/adult/README.md.
    let train = pyarrow_describe(&run_dir.join("prepare/train.parquet"));
    let test = pyarrow_describe(&run_dir.join("prepare/test.parquet"));
    assert_eq!(train["rows"], 32_561);
    assert_eq!(test["rows"], 16_281);
    assert_eq!(train["sums"]["income"], 7_841, "train >50K rows");
    assert_eq!(
        test["sums"]["income"], 3_846,
        "test >50K rows (after stripping the dot)"
    );
    let share =
        |t: &serde_json::Value| t["sums"]["income"].as_f64().unwrap() / t["rows"].as_f64().unwrap();
    assert_eq!(format!("{:.2}", 100.0 * share(&train)), "24.08");
    assert_eq!(format!("{:.2}", 100.0 * share(&test)), "23.62");
    // `?` is a null exactly where the README says it occurs.
    for (column, in_train, in_test) in [
        ("workclass", 1_836, 963),
        ("occupation", 1_843, 966),
        ("native-country", 583, 274),
    ] {
        assert_eq!(train["nulls"][column], in_train, "train nulls in {column}");
        assert_eq!(test["nulls"][column], in_test, "test nulls in {column}");
    }
    for column in ["age", "education", "race", "sex", "hours-per-week"] {
        assert_eq!(train["nulls"][column], 0, "{column}");
    }
    let schema = &train["schema"];
    assert_eq!(schema["age"], "int64");
    assert_eq!(schema["workclass"], "string");
    assert_eq!(schema["income"], "int32");
    assert_eq!(schema["row_id"], "int64");
    assert_eq!(schema["event_timestamp"], "timestamp[us, tz=UTC]");
    assert_eq!(schema.as_object().unwrap().len(), 17);

    // The transform and profile are there and readable.
    let transform: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("prepare/transform.json")).unwrap())
            .unwrap();
    assert!(
        transform["output_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "sex=Female")
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("prepare/profile.json")).unwrap())
            .unwrap();
    assert_eq!(profile["train"]["rows"], 32_561);
}

#[test]
fn second_run_is_a_cache_hit_and_changes_rerun() {
    // Work on a copy of the data so that one byte can be changed.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("adult");
    std::fs::create_dir(&data).unwrap();
    for name in ["adult.data", "adult.test"] {
        std::fs::copy(adult_dir().join(name), data.join(name)).unwrap();
    }
    let run_dir = tmp.path().join("run");
    assert_eq!(
        step_status(&kiln_run(&run_dir, &data, &[]), "prepare"),
        "ran"
    );

    let started = Instant::now();
    let cached = kiln_run(&run_dir, &data, &[]);
    let elapsed = started.elapsed();
    assert_eq!(step_status(&cached, "prepare"), "cached");
    assert_eq!(step_status(&cached, "train"), "cached");
    assert!(stderr(&cached).contains("cache hit"), "{}", stderr(&cached));
    assert!(
        elapsed < Duration::from_secs(1),
        "cache hit took {elapsed:?}"
    );

    // A spec change that prepare reads reruns it, and explain-cache says why first.
    let spec = spec();
    let args = [
        "explain-cache",
        "prepare",
        "--spec",
        spec.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
    ];
    let explain = || {
        let mut changed = args.to_vec();
        changed.extend(["--set", "transform.numeric.0.log1p=true"]);
        stdout(&kiln(&changed, &data))
    };
    let why = explain();
    assert!(why.starts_with("prepare: miss: spec changed"), "{why}");
    let out = kiln_run(
        &run_dir,
        &data,
        &["--set", "transform.numeric.0.log1p=true"],
    );
    assert_eq!(step_status(&out, "prepare"), "ran");
    assert_eq!(
        step_status(
            &kiln_run(
                &run_dir,
                &data,
                &["--set", "transform.numeric.0.log1p=true"]
            ),
            "prepare"
        ),
        "cached"
    );

    // A spec change prepare does not read (the registry name) keeps the cache.
    let out = kiln_run(
        &run_dir,
        &data,
        &[
            "--set",
            "transform.numeric.0.log1p=true",
            "--set",
            "registry.model_name=other",
        ],
    );
    assert_eq!(step_status(&out, "prepare"), "cached");

    // One changed byte of input reruns it.
    let mut bytes = std::fs::read(data.join("adult.data")).unwrap();
    assert_eq!(&bytes[..2], b"39");
    bytes[1] = b'8';
    std::fs::write(data.join("adult.data"), bytes).unwrap();
    let why = explain();
    assert!(why.contains("input source[0] changed"), "{why}");
    let out = kiln_run(
        &run_dir,
        &data,
        &["--set", "transform.numeric.0.log1p=true"],
    );
    assert_eq!(step_status(&out, "prepare"), "ran");
}

#[test]
fn kiln_prepare_and_the_step_binary_write_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let out = kiln(
        &[
            "prepare",
            "--spec",
            spec.to_str().unwrap(),
            "--run",
            a.to_str().unwrap(),
        ],
        &adult_dir(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(Command::new(bin("kiln-prepare"))
        .args([
            "--spec",
            spec.to_str().unwrap(),
            "--run",
            b.to_str().unwrap(),
        ])
        .env("KILN_ADULT_DIR", adult_dir()));
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "train.parquet",
        "test.parquet",
        "transform.json",
        "profile.json",
    ] {
        let left = std::fs::read(a.join("prepare").join(name)).unwrap();
        let right = std::fs::read(b.join("prepare").join(name)).unwrap();
        assert!(
            left == right,
            "{name} differs between `kiln prepare` and `kiln-prepare`"
        );
    }
}

#[test]
fn spec_commands_and_a_closed_pipe() {
    let out = kiln(&["spec", "schema"], &adult_dir());
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "PipelineSpec");

    let spec = spec();
    let out = kiln(
        &["spec", "check", "--spec", spec.to_str().unwrap()],
        &adult_dir(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let resolved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resolved["label"]["positive"], ">50K");

    // `kiln spec schema | head -c0`: the reader is gone before kiln writes; exit 0, no message.
    let mut child = Command::new(bin("kiln"))
        .args(["spec", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// A fully cached `kiln run` on S3 asks the server for no data object: every step's
/// plan takes its inputs' sha256 from the manifests that recorded them, and its cache
/// check its outputs', while the objects' ETags are unchanged. The run root and the
/// data are on a real S3-protocol server; a recording proxy in front of it counts the
/// requests. `--verify` reads them all again, and a rewritten object is noticed
/// without it.
#[test]
fn a_fully_cached_run_on_s3_gets_no_data_object() {
    use kiln_testkit::{FaultProxy, S3Server};
    let s3 = S3Server::start(&["kiln"]);
    let data = s3.root.path().join("kiln/data");
    std::fs::create_dir_all(&data).unwrap();
    for file in ["adult.data", "adult.test"] {
        std::fs::copy(adult_dir().join(file), data.join(file)).unwrap();
    }
    let spec = spec();
    let kiln_run = |endpoint: &str, extra: &[&str]| {
        let mut cmd = Command::new(bin("kiln"));
        cmd.args(["run", "--spec", spec.to_str().unwrap()])
            .args(["--run", "s3://kiln/runs/cached", "--set", "train.epochs=1"])
            .args(extra);
        for (key, value) in s3.env() {
            cmd.env(key, value);
        }
        let out = run(cmd
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("KILN_ADULT_DIR", "s3://kiln/data")
            .env("MLFLOW_TRACKING_URI", ""));
        assert!(out.status.success(), "kiln run: {}", stderr(&out));
        out
    };
    // GETs of an object's bytes that is neither a JSON document (a manifest, a report)
    // nor a plot (`kiln run`'s HTML report inlines the steps' SVG plots).
    let data_gets = |proxy: &FaultProxy| -> Vec<String> {
        proxy
            .requests()
            .into_iter()
            .filter(|line| {
                let target = line.split_whitespace().nth(1).unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default();
                line.starts_with("GET ")
                    && path.trim_start_matches('/').contains('/')
                    && !path.ends_with(".json")
                    && !path.ends_with(".svg")
            })
            .collect()
    };

    let first = kiln_run(&s3.endpoint, &[]);
    let ran: Vec<String> = [
        "prepare", "validate", "train", "evaluate", "fairness", "register",
    ]
    .iter()
    .map(|step| step_status(&first, step))
    .collect();
    assert!(
        ran.iter().all(|s| s == "ran"),
        "{ran:?}\n{}",
        stdout(&first)
    );

    let proxy = FaultProxy::recording(&s3.endpoint);
    let cached = kiln_run(&proxy.uri, &[]);
    for step in [
        "prepare", "validate", "train", "evaluate", "fairness", "register",
    ] {
        assert_eq!(step_status(&cached, step), "cached", "{}", stdout(&cached));
    }
    let requests = proxy.requests();
    assert!(!requests.is_empty(), "the run went through the proxy");
    assert_eq!(
        data_gets(&proxy),
        Vec::<String>::new(),
        "a fully cached run read data objects (of {} requests)",
        requests.len()
    );

    // The control: `--verify` hashes every input and output again, so it reads them.
    let proxy = FaultProxy::recording(&s3.endpoint);
    let verified = kiln_run(&proxy.uri, &["--verify"]);
    assert_eq!(step_status(&verified, "train"), "cached");
    let gets = data_gets(&proxy);
    for object in [
        "/kiln/data/adult.data",
        "/prepare/train.parquet",
        "/train/model/model.bin",
    ] {
        assert!(
            gets.iter().any(|line| line.contains(object)),
            "--verify did not read {object}: {gets:?}"
        );
    }

    // A data object rewritten behind the run's back (same size, one byte changed) has a
    // new ETag: prepare hashes it again, sees the change and runs.
    let source = data.join("adult.data");
    let mut bytes = std::fs::read(&source).unwrap();
    assert_eq!(&bytes[..2], b"39");
    bytes[1] = b'8';
    std::fs::write(&source, bytes).unwrap();
    let changed = kiln_run(&s3.endpoint, &[]);
    assert_eq!(
        step_status(&changed, "prepare"),
        "ran",
        "{}",
        stdout(&changed)
    );
}
