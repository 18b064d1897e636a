//! kiln-serve end to end: the model `kiln run` registers on Adult, served by the real
//! binary on loopback ports, called by clients no one here wrote (tritonclient, the
//! kserve package, schemathesis), scraped by a real Prometheus, logging to a folder and
//! to a real S3-protocol server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_testkit::{
    MlflowServer, Prometheus, S3Server, adult_dir, bin, free_port, http_request, run, serve_python,
    stderr, stdout, workspace_root,
};
use serde_json::{Value, json};

const MODEL: &str = "adult-income";

/// One pipeline run shared by every test of this binary.
struct Pipeline {
    run: PathBuf,
    registry: PathBuf,
    /// The prepared test rows' inputs, as V1 records.
    rows: Vec<Value>,
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let run_dir = dir.join("runs/adult");
        kiln_run(&run_dir, 4, None);
        let script = "import json, sys, pyarrow.parquet as pq\nrows = pq.read_table(sys.argv[1]).to_pylist()\nprint(json.dumps(rows, default=str))";
        let out = run(Command::new(serve_python())
            .args(["-c", script])
            .arg(run_dir.join("prepare/test.parquet")));
        assert!(out.status.success(), "{}", stderr(&out));
        let mut rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("rows");
        let metadata: Value = serde_json::from_slice(
            &std::fs::read(run_dir.join("train/model/metadata.json")).expect("metadata"),
        )
        .expect("metadata JSON");
        let inputs: Vec<String> = metadata["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_string())
            .collect();
        for row in &mut rows {
            let record = row.as_object_mut().expect("record");
            record.retain(|k, _| inputs.contains(k));
        }
        Pipeline {
            registry: dir.join("runs/registry"),
            run: run_dir,
            rows,
        }
    })
}

/// `kiln run` of the Adult example (registering in MLflow when a tracking URI is given).
fn kiln_run(run_dir: &Path, epochs: u32, mlflow: Option<&str>) {
    let out = run(Command::new(bin("kiln"))
        .args(["run", "--spec"])
        .arg(workspace_root().join("examples/adult/spec.yaml"))
        .arg("--run")
        .arg(run_dir)
        .args(["--set", &format!("train.epochs={epochs}"), "-q"])
        .env("KILN_ADULT_DIR", adult_dir())
        .env("MLFLOW_TRACKING_URI", mlflow.unwrap_or("")));
    assert!(out.status.success(), "kiln run failed: {}", stderr(&out));
}

/// A kiln-serve process on free loopback ports. Killed when dropped.
struct Server {
    child: Option<Child>,
    http: String,
    grpc_port: u16,
    log: PathBuf,
}

impl Server {
    /// The model `kiln run` registered locally, by alias.
    fn start(extra: &[&str], env: &[(&'static str, String)]) -> Server {
        let p = pipeline();
        let registry = p.registry.to_str().expect("path").to_string();
        let model = format!("{MODEL}@staging");
        let mut args = vec!["--model", &model, "--registry", &registry];
        args.extend_from_slice(extra);
        Server::launch(&args, env)
    }

    fn launch(args: &[&str], env: &[(&'static str, String)]) -> Server {
        let (http_port, grpc_port) = (free_port(), free_port());
        let log = tempfile::NamedTempFile::new()
            .expect("log file")
            .into_temp_path()
            .keep()
            .expect("keep");
        let child = Command::new(bin("kiln-serve"))
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .args(["--grpc", &format!("127.0.0.1:{grpc_port}")])
            .args(args)
            .env_remove("MLFLOW_TRACKING_URI")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start kiln-serve");
        let server = Server {
            child: Some(child),
            http: format!("127.0.0.1:{http_port}"),
            grpc_port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/v2/health/ready").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "kiln-serve did not become ready: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_request(&self.http, "GET", path, b"", Duration::from_secs(10))
    }

    fn post(&self, path: &str, body: &[u8]) -> Option<(u16, String)> {
        http_request(&self.http, "POST", path, body, Duration::from_secs(30))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "kiln-serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn v1_body(rows: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "instances": rows })).expect("JSON")
}

fn predict_path() -> String {
    format!("/v1/models/{MODEL}:predict")
}

#[test]
fn every_test_row_scores_as_evaluate_through_every_protocol_and_client() {
    let p = pipeline();
    let server = Server::start(&[], &[]);
    let clients = |family: &str| -> Value {
        let out = run(Command::new(serve_python())
            .arg(workspace_root().join("crates/serve/tests/py/clients.py"))
            .arg(server.http.rsplit(':').next().expect("port"))
            .arg(server.grpc_port.to_string())
            .arg(MODEL)
            .arg(&p.run)
            .arg(family));
        assert!(
            out.status.success(),
            "{family} clients failed: {}\n{}",
            stderr(&out),
            server.stderr()
        );
        serde_json::from_str(stdout(&out).trim()).expect("summary JSON")
    };
    let mut summary = clients("triton");
    let kserve = clients("kserve");
    summary["protocols"]["v2_rest_kserve"] = kserve["protocols"]["v2_rest_kserve"].clone();
    summary["kserve_v1_first_chunk_max_abs_diff"] =
        kserve["kserve_v1_first_chunk_max_abs_diff"].clone();
    assert_eq!(summary["rows"], 16_281, "every row of adult.test");
    assert_eq!(summary["outputs"], json!(["probability", "label"]));
    assert_eq!(
        summary["inputs"], summary["grpc_inputs"],
        "REST and gRPC metadata agree"
    );
    let inputs = summary["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 12, "one input per raw feature column");
    assert!(inputs.contains(&json!(["age", "INT64"])));
    assert!(inputs.contains(&json!(["sex", "BYTES"])));
    for protocol in [
        "v1",
        "v2_rest_tritonclient",
        "v2_grpc_tritonclient",
        "v2_rest_kserve",
    ] {
        let result = &summary["protocols"][protocol];
        assert_eq!(result["rows"], 16_281, "{protocol}: {result}");
        let diff = result["max_abs_diff"].as_f64().expect("compared");
        assert!(
            diff <= 1e-6,
            "{protocol}: scores differ from evaluate's by {diff}"
        );
        assert_eq!(
            result["decision_mismatches"], 0,
            "{protocol}: decisions differ from fairness's mitigated ones"
        );
    }
    assert!(
        summary["kserve_v1_first_chunk_max_abs_diff"]
            .as_f64()
            .expect("v1")
            <= 1e-6
    );
    // The mitigated policy really is in force: some rows decide differently than a
    // global 0.5 threshold would.
    let policy: Value = serde_json::from_slice(
        &std::fs::read(
            p.registry
                .join(format!("{MODEL}/versions/1/model/decision_policy.json")),
        )
        .expect("policy"),
    )
    .expect("policy JSON");
    assert_eq!(policy["groups"]["attribute"], "sex");
}

/// Bad requests: each one a 4xx with a JSON error naming what was wrong.
#[test]
fn malformed_requests_are_4xx_naming_the_problem() {
    let p = pipeline();
    let server = Server::start(
        &["--max-request-rows", "100", "--max-body-bytes", "200000"],
        &[],
    );
    let row = p.rows[0].clone();
    let mut without_sex = row.clone();
    without_sex.as_object_mut().expect("record").remove("sex");
    let mut null_sex = row.clone();
    null_sex["sex"] = Value::Null;
    let mut text_age = row.clone();
    text_age["age"] = json!("thirty");
    let mut extra = row.clone();
    extra["salary"] = json!(1);
    let v2 = |inputs: Value| serde_json::to_vec(&json!({ "inputs": inputs })).expect("JSON");
    let age = |datatype: &str, shape: Value, data: Value| json!({"name": "age", "datatype": datatype, "shape": shape, "data": data});
    let infer = format!("/v2/models/{MODEL}/infer");
    let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        (
            predict_path(),
            b"{\"instances\": [".to_vec(),
            400,
            "invalid JSON body",
        ),
        (
            predict_path(),
            b"{\"rows\": []}".to_vec(),
            400,
            "missing field `instances`",
        ),
        (
            predict_path(),
            v1_body(&[without_sex]),
            400,
            "missing column `sex`",
        ),
        (predict_path(), v1_body(&[null_sex]), 400, "attribute `sex`"),
        (
            predict_path(),
            v1_body(&[text_age]),
            400,
            "instances[0].age: expected a number",
        ),
        (
            predict_path(),
            v1_body(&[extra]),
            400,
            "unknown column `salary`",
        ),
        (
            predict_path(),
            v1_body(&vec![row.clone(); 101]),
            400,
            "the limit is 100",
        ),
        (
            predict_path(),
            v1_body(&vec![row.clone(); 99]).repeat(20),
            413,
            "over the limit",
        ),
        (predict_path(), vec![0xff, 0xfe, 0x00], 400, "not UTF-8"),
        (
            "/v1/models/nope:predict".into(),
            v1_body(std::slice::from_ref(&row)),
            404,
            "model `nope` not found",
        ),
        (
            infer.clone(),
            v2(json!([age("BYTES", json!([1]), json!(["x"]))])),
            400,
            "datatype BYTES does not fit column `age`",
        ),
        (
            infer.clone(),
            v2(json!([age("INT64", json!([2]), json!([30]))])),
            400,
            "says 2 elements but the data has 1",
        ),
        (
            infer.clone(),
            v2(json!([age("INT64", json!([1]), json!([30]))])),
            400,
            "missing input",
        ),
        (
            infer.clone(),
            v2(json!([{"name": "zip", "datatype": "INT64", "shape": [1], "data": [1]}])),
            400,
            "unknown input `zip`",
        ),
        (
            infer.clone(),
            v2(json!([age("INT64", json!([1, 2]), json!([[1, 2]]))])),
            400,
            "shape [1, 2] is not supported",
        ),
        (
            infer.clone(),
            v2(json!([age("INT64", json!([1]), json!(7))])),
            400,
            "data must be an array",
        ),
        (
            infer.clone(),
            v2(json!([age("INT64", json!([1]), json!([1.5]))])),
            400,
            "element 0",
        ),
        (
            format!("/v2/models/{MODEL}/versions/99/infer"),
            v2(json!([])),
            404,
            "no version `99`",
        ),
        (
            infer.clone(),
            b"{\"inputs\": [], \"outputs\": [{\"name\": \"logit\"}]}".to_vec(),
            400,
            "unknown output `logit`",
        ),
    ];
    for (path, body, status, needle) in cases {
        let (got, text) = server.post(&path, &body).expect("an answer");
        assert_eq!(got, status, "{path}: {text}");
        let error: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON error body: {text}"));
        let message = error["error"].as_str().expect("an error field");
        assert!(
            message.contains(needle),
            "{path}: `{message}` should say `{needle}`"
        );
    }
    for path in ["/v2/models/nope", "/v3/anything"] {
        let (status, text) = server.get(path).expect("an answer");
        assert_eq!(status, 404, "{path}: {text}");
    }
    assert_eq!(server.get("/v2/health/live").map(|r| r.0), Some(200));
    assert_eq!(server.terminate().code(), Some(0));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[ -~]{0,12}".prop_map(Value::String),
            prop_oneof![Just("Male"), Just("Female"), Just("Private"), Just("")]
                .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("instances".to_string()),
            Just("inputs".to_string()),
            Just("name".to_string()),
            Just("datatype".to_string()),
            Just("shape".to_string()),
            Just("data".to_string()),
            Just("age".to_string()),
            Just("sex".to_string()),
            "[a-z]{1,6}",
        ]
    }

    fn tensor() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("age"), Just("sex"), Just("workclass"), Just("hours-per-week"), Just("x")],
            prop_oneof![Just("INT64"), Just("FP64"), Just("BYTES"), Just("BOOL"), Just("FP16"), Just("INT8")],
            prop::collection::vec(-2i64..4, 0..3),
            value(),
        )
            .prop_map(|(name, datatype, shape, data)| {
                json!({"name": name, "datatype": datatype, "shape": shape, "data": data})
            })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            value().prop_map(|v| serde_json::to_vec(&v).expect("JSON")),
            prop::collection::vec(value(), 0..4)
                .prop_map(|rows| serde_json::to_vec(&json!({ "instances": rows })).expect("JSON")),
            prop::collection::vec(tensor(), 0..5)
                .prop_map(|inputs| serde_json::to_vec(&json!({ "inputs": inputs })).expect("JSON")),
        ]
    }

    #[test]
    fn random_bodies_get_4xx_never_5xx_or_a_crash() {
        let server = Server::start(&[], &[]);
        let paths = [
            predict_path(),
            format!("/v2/models/{MODEL}/infer"),
            format!("/v2/models/{MODEL}/versions/1/infer"),
        ];
        let seen = AtomicUsize::new(0);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 400,
            ..ProptestConfig::default()
        });
        runner
            .run(&(0..paths.len(), body()), |(i, body)| {
                let (status, text) = server
                    .post(&paths[i], &body)
                    .expect("an answer, not a crash");
                seen.fetch_add(1, Ordering::Relaxed);
                prop_assert!(
                    (400..500).contains(&status) || status == 200,
                    "{} -> {status}: {text}",
                    paths[i]
                );
                if status != 200 {
                    let error: Value = serde_json::from_str(&text).expect("a JSON error");
                    prop_assert!(error["error"].is_string());
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(seen.load(Ordering::Relaxed) >= 400);
        assert_eq!(
            server.get("/v2/health/ready").map(|r| r.0),
            Some(200),
            "still up"
        );
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_every_response_conforms() {
    let server = Server::start(&[], &[]);
    let spec = std::env::var_os("KILN_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/schemas"))
        .join("kserve/rest_predict_v2.yaml");
    let out = run(Command::new(serve_python())
        .arg(workspace_root().join("crates/serve/tests/py/schemathesis_run.py"))
        .arg(&spec)
        .arg(format!("http://{}", server.http))
        .arg(MODEL)
        .arg("1"));
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        server.stderr()
    );
    assert!(!text.contains(" 500 "), "{text}");
    let (_, metrics) = server.get("/metrics").expect("metrics");
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("kiln_requests_total") && l.contains("code=\"5")),
        "no 5xx was counted:\n{metrics}"
    );
}

/// Shifted rows: every numeric input far outside training, unseen categories.
fn shifted(row: &Value) -> Value {
    let mut row = row.clone();
    for (column, value) in [
        ("age", json!(95)),
        ("hours-per-week", json!(99)),
        ("capital-gain", json!(99_999)),
        ("capital-loss", json!(4_000)),
        ("education-num", json!(1)),
        ("workclass", json!("Space-agency")),
        ("occupation", json!("Astronaut")),
        ("native-country", json!("Atlantis")),
    ] {
        row[column] = value;
    }
    row
}

#[test]
fn prometheus_scrapes_every_metric_under_load_and_drift_rises_with_shifted_rows() {
    let p = pipeline();
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &[
            "--drift-window",
            "400",
            "--drift-min-rows",
            "200",
            "--log-predictions",
            logs.path().to_str().expect("path"),
            "--log-flush-ms",
            "200",
        ],
        &[],
    );
    let prometheus = Prometheus::start(&[("kiln-serve", vec![server.http.clone()])], "1s", &[]);
    // Load: requests of 1 to 16 rows from two threads, bounded in count.
    let send = |rows: &[Value]| {
        std::thread::scope(|s| {
            for part in rows.chunks(rows.len().div_ceil(2)) {
                s.spawn(|| {
                    let mut at = 0;
                    let mut size = 1;
                    while at < part.len() {
                        let end = (at + size).min(part.len());
                        let (status, text) = server
                            .post(&predict_path(), &v1_body(&part[at..end]))
                            .expect("answer");
                        assert_eq!(status, 200, "{text}");
                        at = end;
                        size = size % 16 + 1;
                    }
                });
            }
        });
    };
    send(&p.rows[..600]);
    assert_eq!(server.post(&predict_path(), b"{").map(|r| r.0), Some(400));
    let wait_for = |promql: &str, ok: &dyn Fn(f64) -> bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let result = prometheus.query(promql);
            let value = result
                .first()
                .and_then(|r| r["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(v) = value
                && ok(v)
            {
                return v;
            }
            assert!(Instant::now() < deadline, "{promql}: {result:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let m = format!("model_name=\"{MODEL}\"");
    for (promql, ok) in [
        (
            format!(
                "sum(kiln_requests_total{{{m},protocol=\"v1\",code=\"200\",model_version=\"1\"}})"
            ),
            60.0,
        ),
        (format!("sum(kiln_requests_total{{{m},code=\"400\"}})"), 1.0),
        (
            format!("request_predict_seconds_bucket{{{m},le=\"0.3\"}}"),
            60.0,
        ),
        (format!("request_predict_seconds_count{{{m}}}"), 60.0),
        (format!("request_preprocess_seconds_count{{{m}}}"), 60.0),
        (format!("request_postprocess_seconds_count{{{m}}}"), 60.0),
        (
            format!("sum(kiln_request_duration_seconds_count{{{m}}})"),
            60.0,
        ),
        (format!("kiln_batch_rows_sum{{{m}}}"), 600.0),
        (format!("kiln_request_rows_sum{{{m}}}"), 600.0),
        (
            format!("sum(kiln_decisions_total{{{m},model_version=\"1\"}})"),
            600.0,
        ),
        (
            format!("sum(kiln_group_decisions_total{{{m},attribute=\"sex\"}})"),
            600.0,
        ),
        (format!("kiln_score_count{{{m}}}"), 600.0),
        (format!("kiln_model_info{{{m},model_version=\"1\"}}"), 1.0),
        (format!("kiln_model_ready{{{m}}}"), 1.0),
        (format!("kiln_drift_window_rows{{{m}}}"), 400.0),
        (format!("count(kiln_feature_drift_psi{{{m}}})"), 12.0),
        (
            format!("kiln_prediction_log_rows_total{{{m},outcome=\"written\"}}"),
            600.0,
        ),
        ("process_resident_memory_bytes".to_string(), 1.0),
    ] {
        wait_for(&promql, &|v| v >= ok);
    }
    for present in [
        format!("kiln_inflight_requests{{{m}}}"),
        format!("kiln_shed_requests_total{{{m},reason=\"concurrency\"}}"),
        format!("kiln_prediction_log_rows_total{{{m},outcome=\"dropped\"}}"),
    ] {
        wait_for(&present, &|v| v >= 0.0);
    }
    let sha = prometheus.query(&format!("kiln_model_info{{{m}}}"));
    assert_eq!(
        sha[0]["metric"]["bundle_sha256"].as_str().map(str::len),
        Some(64)
    );
    let before = wait_for(&format!("kiln_drifted_features_ratio{{{m}}}"), &|_| true);
    assert!(
        before <= 0.25,
        "test rows drift little from train: {before}"
    );
    let shifted_rows: Vec<Value> = p.rows[600..1100].iter().map(shifted).collect();
    send(&shifted_rows);
    let after = wait_for(&format!("kiln_drifted_features_ratio{{{m}}}"), &|v| {
        v >= 0.5
    });
    assert!(after > before, "drift share rose: {before} -> {after}");
    let age = wait_for(
        &format!("kiln_feature_drift_psi{{{m},feature=\"age\"}}"),
        &|v| v > 0.2,
    );
    assert!(age > 0.2);
    assert_eq!(server.terminate().code(), Some(0));
}

/// Reads every Parquet file under `dir` with pyarrow: rows, distinct request ids, columns.
fn read_log(dir: &Path) -> Value {
    let script = r#"
import json, sys, pathlib
import pyarrow.parquet as pq, pyarrow as pa
files = sorted(pathlib.Path(sys.argv[1]).rglob("*.parquet"))
t = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
print(json.dumps({
  "files": len(files),
  "rows": 0 if t is None else t.num_rows,
  "request_ids": 0 if t is None else len(set(t.column("request_id").to_pylist())),
  "columns": [] if t is None else t.column_names,
  "versions": [] if t is None else sorted(set(t.column("model_version").to_pylist())),
  "probability_in_range": t is None or all(0 <= p <= 1 for p in t.column("probability").to_pylist()),
}))
"#;
    let out = run(Command::new(serve_python()).args(["-c", script]).arg(dir));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn send_and_log(server: &Server, rows: &[Value]) -> (usize, usize) {
    let (mut requests, mut sent) = (0, 0);
    for (i, chunk) in rows.chunks(7).enumerate() {
        let (status, text) = if i % 2 == 0 {
            server
                .post(&predict_path(), &v1_body(chunk))
                .expect("answer")
        } else {
            let columns: Vec<Value> = ["age", "education-num", "hours-per-week", "capital-gain", "capital-loss"]
                .iter()
                .map(|c| json!({"name": c, "datatype": "INT64", "shape": [chunk.len()], "data": chunk.iter().map(|r| r[c].clone()).collect::<Vec<_>>()}))
                .chain(["workclass", "marital-status", "occupation", "relationship", "race", "sex", "native-country"].iter().map(|c| json!({"name": c, "datatype": "BYTES", "shape": [chunk.len()], "data": chunk.iter().map(|r| r[c].clone()).collect::<Vec<_>>()})))
                .collect();
            let body = serde_json::to_vec(&json!({"id": format!("req-{i}"), "inputs": columns}))
                .expect("JSON");
            server
                .post(&format!("/v2/models/{MODEL}/infer"), &body)
                .expect("answer")
        };
        assert_eq!(status, 200, "{text}");
        requests += 1;
        sent += chunk.len();
    }
    (requests, sent)
}

#[test]
fn the_prediction_log_reads_back_with_every_row_locally_and_over_s3() {
    let p = pipeline();
    let rows = &p.rows[..300];
    // A local folder.
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &[
            "--log-predictions",
            logs.path().to_str().expect("path"),
            "--log-batch-rows",
            "100",
        ],
        &[],
    );
    let (requests, sent) = send_and_log(&server, rows);
    assert_eq!(server.terminate().code(), Some(0));
    let log = read_log(logs.path());
    assert_eq!(log["rows"], sent, "{log}");
    assert_eq!(log["request_ids"], requests, "{log}");
    assert!(
        log["files"].as_u64().expect("files") >= 2,
        "batched into files: {log}"
    );
    assert_eq!(log["versions"], json!(["1"]));
    assert_eq!(log["probability_in_range"], true);
    for column in [
        "request_id",
        "served_at",
        "model_version",
        "age",
        "sex",
        "probability",
        "label",
    ] {
        assert!(
            log["columns"]
                .as_array()
                .expect("columns")
                .contains(&json!(column)),
            "{log}"
        );
    }
    // A real S3-protocol server.
    let s3 = S3Server::start(&["logs"]);
    let server = Server::start(
        &[
            "--log-predictions",
            "s3://logs/predictions",
            "--log-flush-ms",
            "100",
        ],
        &s3.env(),
    );
    let (requests, sent) = send_and_log(&server, rows);
    assert_eq!(server.terminate().code(), Some(0), "flushed and exited");
    let log = read_log(&s3.root.path().join("logs/predictions"));
    assert_eq!(log["rows"], sent, "{log}");
    assert_eq!(log["request_ids"], requests, "{log}");
}

#[test]
fn overload_is_shed_at_once_and_sigterm_loses_no_accepted_request() {
    let p = pipeline();
    // One scoring thread, four requests in flight at most, a short queue.
    let server = Server::start(
        &[
            "--threads",
            "1",
            "--max-concurrency",
            "4",
            "--queue-capacity",
            "2",
        ],
        &[],
    );
    let big = v1_body(&p.rows[..2000]);
    let shed = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    let slowest_shed = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..6 {
                    let started = Instant::now();
                    let (status, text) = server.post(&predict_path(), &big).expect("answer");
                    match status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        503 => {
                            assert!(text.contains("overloaded"), "{text}");
                            let took = started.elapsed();
                            let mut slowest = slowest_shed.lock().expect("lock");
                            *slowest = (*slowest).max(took);
                            shed.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("{other}: {text}"),
                    };
                }
            });
        }
    });
    let (shed, ok) = (shed.into_inner(), ok.into_inner());
    let slowest = slowest_shed.into_inner().expect("lock");
    assert!(shed > 0 && ok > 0, "some shed ({shed}), some served ({ok})");
    assert!(
        slowest < Duration::from_millis(500),
        "a shed request waited {slowest:?}"
    );
    let (_, metrics) = server.get("/metrics").expect("metrics");
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("kiln_shed_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted as usize, shed, "every shed request is counted");
    drop(server);

    // SIGTERM during load: every request the server accepted is answered and logged.
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &["--log-predictions", logs.path().to_str().expect("path")],
        &[],
    );
    let answered_rows = AtomicUsize::new(0);
    let after_term = AtomicUsize::new(0);
    let terminating = std::sync::atomic::AtomicBool::new(false);
    let pid = server.child.as_ref().expect("child").id();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (answered_rows, after_term, terminating, server) =
                (&answered_rows, &after_term, &terminating, &server);
            s.spawn(move || {
                let mut i = t * 997;
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    let rows = &p.rows[i % 16_000..i % 16_000 + 5];
                    match server.post(&predict_path(), &v1_body(rows)) {
                        Some((200, _)) => {
                            answered_rows.fetch_add(5, Ordering::SeqCst);
                            if terminating.load(Ordering::SeqCst) {
                                after_term.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Some((status, text)) => panic!("{status}: {text}"),
                        None => break, // the server stopped accepting
                    }
                    i += 5;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        terminating.store(true, Ordering::SeqCst);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    });
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let log = read_log(logs.path());
    let answered = answered_rows.into_inner();
    assert!(answered > 100, "load was running: {answered} rows");
    assert_eq!(
        log["rows"], answered,
        "every answered row is in the log: {log}"
    );
}

#[test]
fn an_mlflow_reference_is_resolved_and_downloaded_through_the_artifact_proxy() {
    let mlflow = MlflowServer::start(false);
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("runs/adult");
    kiln_run(&run_dir, 2, Some(&mlflow.uri));
    let env = [("MLFLOW_TRACKING_URI", mlflow.uri.clone())];
    let server = Server::launch(&["--model", "models:/adult-income@staging"], &env);
    let (status, metadata) = server
        .get(&format!("/v2/models/{MODEL}"))
        .expect("metadata");
    assert_eq!(status, 200, "{metadata}");
    let metadata: Value = serde_json::from_str(&metadata).expect("JSON");
    assert_eq!(
        metadata["versions"],
        json!(["1"]),
        "the version MLflow's alias names"
    );
    // The served bundle is the one this run trained: same model bytes, same scores
    // and decisions as its evaluate and fairness steps.
    let script = r#"
import hashlib, json, sys, pyarrow.parquet as pq
run = sys.argv[1]
rows = pq.read_table(f"{run}/prepare/test.parquet").slice(0, 50).to_pylist()
meta = json.load(open(f"{run}/train/model/metadata.json"))
names = [c["name"] for c in meta["inputs"]]
print(json.dumps({
  "rows": [{n: r[n] for n in names} for r in rows],
  "scores": pq.read_table(f"{run}/evaluate/predictions.parquet").column("score").to_pylist()[:50],
  "decisions": pq.read_table(f"{run}/fairness/decisions.parquet").column("decision").to_pylist()[:50],
  "sha256": hashlib.sha256(open(f"{run}/train/model/model.bin", "rb").read()).hexdigest(),
}))
"#;
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(&run_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = expected["rows"].as_array().expect("rows");
    let (status, text) = server
        .post(&predict_path(), &v1_body(rows))
        .expect("answer");
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    for (i, prediction) in answer["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .enumerate()
    {
        let want = expected["scores"][i].as_f64().expect("score");
        let got = prediction["probability"].as_f64().expect("probability");
        assert!((got - want).abs() <= 1e-6, "row {i}: {got} vs {want}");
        assert_eq!(
            prediction["label"], expected["decisions"][i],
            "row {i}: the mitigated decision"
        );
    }
    let (_, metrics) = server.get("/metrics").expect("metrics");
    let sha = expected["sha256"].as_str().expect("sha");
    assert!(
        metrics.contains(&format!("bundle_sha256=\"{sha}\"")),
        "model info names the bundle"
    );
    assert_eq!(server.terminate().code(), Some(0));
    // A reference MLflow cannot resolve is a usage error (exit 2) naming it.
    let out = run(Command::new(bin("kiln-serve"))
        .args([
            "--model",
            "models:/adult-income@nowhere",
            "--http",
            "127.0.0.1:0",
            "--no-grpc",
        ])
        .env("MLFLOW_TRACKING_URI", &mlflow.uri));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no alias `nowhere`"),
        "{}",
        stderr(&out)
    );
}
