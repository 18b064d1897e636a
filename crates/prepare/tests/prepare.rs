//! kiln-prepare as a user runs it: small generated inputs, bad inputs with their exit
//! codes and messages, a kill mid-write, and a real S3-protocol server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kiln_testkit::{S3Server, pyarrow_describe, run, stderr};

const SPEC: &str = r#"
name: small
data:
  format: csv
  csv: {null_values: ["?"]}
  sources:
    - {uri: DATA, split: train}
    - {uri: TEST, split: test, skip_lines: 1}
schema:
  - {name: age, type: int}
  - {name: job, type: string}
  - {name: income, type: string}
label: {column: income, positive: ">50K", negative: "<=50K", strip_suffix: "."}
split: {method: files}
event_time: {fixed: "2020-01-01T00:00:00Z"}
transform:
  numeric: [{column: age, standardize: true}]
  categorical: [{column: job}]
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A folder with a spec, a train CSV and a test CSV.
    fn new(train: &str, test: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.csv"), train).unwrap();
        std::fs::write(dir.path().join("test.csv"), test).unwrap();
        let spec = SPEC
            .replace("DATA", "train.csv")
            .replace("TEST", "test.csv");
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run_dir(&self) -> PathBuf {
        self.path("run")
    }

    fn prepare(&self, extra: &[&str]) -> Output {
        run(Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
            .arg("--spec")
            .arg(self.path("spec.yaml"))
            .arg("--run")
            .arg(self.run_dir())
            .args(extra))
    }

    /// Every file under the run folder, relative.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.run_dir(), &self.run_dir(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// The failure is one `error:` line with the expected text, the expected exit code,
/// and no artifact left in the run folder.
fn assert_clean_failure(fixture: &Fixture, out: &Output, code: i32, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[0].contains(expected),
        "expected {expected:?} in {err}"
    );
    assert_eq!(
        fixture.files(),
        Vec::<String>::new(),
        "artifacts left behind"
    );
}

const GOOD_TRAIN: &str = "39, Sales, <=50K\n50, ?, >50K\n23, Tech, <=50K\n";
const GOOD_TEST: &str = "banner\n41, Sales, >50K.\n30, Farming, <=50K.\n";

#[test]
fn prepares_small_csv_and_reruns_from_cache() {
    let f = Fixture::new(GOOD_TRAIN, GOOD_TEST);
    let out = f.prepare(&["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        f.files(),
        [
            "prepare/manifest.json",
            "prepare/profile.json",
            "prepare/test.parquet",
            "prepare/train.parquet",
            "prepare/transform.json"
        ]
    );
    let train = pyarrow_describe(&f.run_dir().join("prepare/train.parquet"));
    assert_eq!(train["rows"], 3);
    assert_eq!(train["nulls"]["job"], 1);
    assert_eq!(train["sums"]["income"], 1);
    let test = pyarrow_describe(&f.run_dir().join("prepare/test.parquet"));
    assert_eq!(test["rows"], 2);
    assert_eq!(test["sums"]["income"], 1, "`>50K.` is positive");
    assert_eq!(test["schema"]["event_timestamp"], "timestamp[us, tz=UTC]");

    let again = f.prepare(&[]);
    assert!(stderr(&again).contains("cache hit"), "{}", stderr(&again));
    let forced = f.prepare(&["--force"]);
    assert!(stderr(&forced).contains("running"), "{}", stderr(&forced));
}

#[test]
fn missing_input_file_is_exit_2_naming_the_file() {
    let f = Fixture::new(GOOD_TRAIN, GOOD_TEST);
    std::fs::remove_file(f.path("test.csv")).unwrap();
    let out = f.prepare(&["-q"]);
    let expected = format!("input not found: {}", f.path("test.csv").display());
    assert_clean_failure(&f, &out, 2, &expected);
}

#[test]
fn wrong_field_count_names_file_and_line() {
    let f = Fixture::new("39, Sales, <=50K\n\n40, Sales\n", GOOD_TEST);
    let out = f.prepare(&["-q"]);
    let expected = format!(
        "{}:3: expected 3 fields, found 2",
        f.path("train.csv").display()
    );
    assert_clean_failure(&f, &out, 2, &expected);
}

#[test]
fn non_numeric_value_names_column_line_and_value() {
    let f = Fixture::new("39, Sales, <=50K\nforty, Sales, >50K\n", GOOD_TEST);
    let out = f.prepare(&["-q"]);
    let expected = format!(
        "{}:2: column `age`: value \"forty\" is not an int",
        f.path("train.csv").display()
    );
    assert_clean_failure(&f, &out, 2, &expected);
}

#[test]
fn a_bad_row_in_the_second_file_leaves_nothing_half_written() {
    // The train file is fine and fully written to staging before the test file fails.
    let f = Fixture::new(
        GOOD_TRAIN,
        "banner\n41, Sales, >50K.\n30, Farming, unknown\n",
    );
    let out = f.prepare(&["-q"]);
    let expected = "label `income`: value \"unknown\" is neither \">50K\" nor \"<=50K\"";
    assert_clean_failure(&f, &out, 2, expected);
}

#[test]
fn unknown_spec_field_is_exit_2_naming_field_and_file() {
    let f = Fixture::new(GOOD_TRAIN, GOOD_TEST);
    let spec = std::fs::read_to_string(f.path("spec.yaml")).unwrap();
    std::fs::write(
        f.path("spec.yaml"),
        spec.replace("standardize: true", "standardise: true"),
    )
    .unwrap();
    let out = f.prepare(&["-q"]);
    let expected = format!(
        "spec {}: transform.numeric[0]: unknown field `standardise`",
        f.path("spec.yaml").display()
    );
    assert_clean_failure(&f, &out, 2, &expected);
}

#[test]
fn unreachable_s3_endpoint_is_exit_75() {
    let f = Fixture::new(GOOD_TRAIN, GOOD_TEST);
    let spec = std::fs::read_to_string(f.path("spec.yaml")).unwrap();
    std::fs::write(
        f.path("spec.yaml"),
        spec.replace("{uri: train.csv", "{uri: s3://nowhere/train.csv"),
    )
    .unwrap();
    let port = kiln_testkit::free_port();
    let started = Instant::now();
    let out = run(Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
        .arg("--spec")
        .arg(f.path("spec.yaml"))
        .arg("--run")
        .arg(f.run_dir())
        .arg("-q")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .env("KILN_S3_RETRY_TIMEOUT_SECS", "2"));
    assert_clean_failure(&f, &out, 75, "s3://nowhere/train.csv unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn killed_mid_write_leaves_no_manifest_and_no_readable_half_file() {
    // Enough rows that a debug build spends seconds writing.
    let mut big = String::with_capacity(40 << 20);
    for i in 0..600_000u32 {
        big.push_str(&format!(
            "{}, job{}, {}\n",
            17 + i % 70,
            i % 13,
            if i % 4 == 0 { ">50K" } else { "<=50K" }
        ));
    }
    let f = Fixture::new(&big, GOOD_TEST);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
        .arg("--spec")
        .arg(f.path("spec.yaml"))
        .arg("--run")
        .arg(f.run_dir())
        .arg("-q")
        .spawn()
        .unwrap();
    // Wait until the step is writing (its staging folder has a file), then kill it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f.files().iter().any(|p| p.contains(".staging")) {
        assert!(Instant::now() < deadline, "prepare never started writing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "prepare finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let files = f.files();
    assert!(
        !files.iter().any(|p| p == "prepare/manifest.json"),
        "{files:?}"
    );
    for name in [
        "train.parquet",
        "test.parquet",
        "transform.json",
        "profile.json",
    ] {
        assert!(
            !files.contains(&format!("prepare/{name}")),
            "{name} at its final path: {files:?}"
        );
    }
    // A rerun clears the leftovers and completes.
    let out = f.prepare(&["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !f.files().iter().any(|p| p.contains(".staging")),
        "{:?}",
        f.files()
    );
    assert_eq!(
        pyarrow_describe(&f.run_dir().join("prepare/train.parquet"))["rows"],
        600_000
    );
}

#[test]
fn reads_raw_data_from_s3_and_writes_artifacts_to_s3() {
    let server = S3Server::start(&["kiln"]);
    // Raw data and the spec go in through the server's folder; everything after that
    // is S3 protocol: reads, multipart uploads, renames, lists and deletes.
    let specs = server.root.path().join("kiln/specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("train.csv"), GOOD_TRAIN).unwrap();
    std::fs::write(specs.join("test.csv"), GOOD_TEST).unwrap();
    std::fs::write(
        specs.join("spec.yaml"),
        SPEC.replace("DATA", "train.csv")
            .replace("TEST", "test.csv"),
    )
    .unwrap();

    let prepare = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln-prepare"));
        cmd.args([
            "--spec",
            "s3://kiln/specs/spec.yaml",
            "--run",
            "s3://kiln/runs/r1",
        ]);
        for (k, v) in server.env() {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let out = prepare();
    assert!(out.status.success(), "{}", stderr(&out));
    // Read back what the server stored, with an independent reader.
    let stored = server.root.path().join("kiln/runs/r1/prepare");
    let train = pyarrow_describe(&stored.join("train.parquet"));
    assert_eq!(train["rows"], 3);
    assert_eq!(pyarrow_describe(&stored.join("test.parquet"))["rows"], 2);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stored.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["inputs"][0]["uri"], "s3://kiln/specs/train.csv");
    // No staged object is left (s3s-fs may keep the emptied folder on its disk).
    let mut staged = Vec::new();
    walk(
        &stored.join(".staging"),
        &stored.join(".staging"),
        &mut staged,
    );
    assert_eq!(staged, Vec::<String>::new(), "staged objects left on S3");
    // The cache works over S3.
    let again = prepare();
    assert!(stderr(&again).contains("cache hit"), "{}", stderr(&again));
}
