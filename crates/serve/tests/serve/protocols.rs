//! What clients see.

use super::harness::*;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_testkit::{
    MlflowServer, bin, kiln_run_with, run, serve_python, stderr, stdout, workspace_root,
};
use serde_json::{Value, json};

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
    let policy = registered_policy(p);
    assert_eq!(policy["groups"]["attribute"], "sex");
}

/// The decision policy of the shared pipeline's registered version 1.
fn registered_policy(p: &kiln_testkit::Pipeline) -> Value {
    let path = p
        .registry
        .join(format!("{MODEL}/versions/1/model/decision_policy.json"));
    serde_json::from_slice(&std::fs::read(path).expect("policy")).expect("policy JSON")
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
    // A missing value of the policy's attribute is not an error: the policy's default
    // threshold decides it, as fairness decided such rows (kiln_core::decision).
    let (status, text) = server
        .post(&predict_path(), &v1_body(&[null_sex]))
        .expect("an answer");
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let policy = registered_policy(p);
    let default = policy["groups"]["default_threshold"]
        .as_f64()
        .expect("default");
    let prediction = &answer["predictions"][0];
    let probability = prediction["probability"].as_f64().expect("probability");
    assert_eq!(
        prediction["label"].as_i64(),
        Some(i64::from(probability >= default)),
        "{prediction}"
    );
    // gRPC has the same bound as REST bodies: a message over --max-body-bytes is refused
    // from its length prefix, and one under it is served.
    let script = r#"
import sys, numpy as np, tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
client = g.InferenceServerClient(f"127.0.0.1:{sys.argv[1]}")
def sex(size):
    x = g.InferInput("sex", [1], "BYTES")
    x.set_data_from_numpy(np.array([b"x" * size], dtype=object))
    return [x]
for size in (300_000, 1_000):
    try:
        client.infer(sys.argv[2], sex(size))
        print(size, "served")
    except InferenceServerException as e:
        print(size, e.status(), e.message())
"#;
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(server.grpc_port.to_string())
        .arg(MODEL));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out);
    let big = lines.lines().next().unwrap_or_default();
    assert!(
        big.starts_with("300000 StatusCode.OUT_OF_RANGE") && big.contains("200000"),
        "{lines}"
    );
    // The small one reaches the model and fails there, for a reason of its own (the
    // other inputs are missing): the limit did not stop it.
    let small = lines.lines().nth(1).unwrap_or_default();
    assert!(
        small.starts_with("1000 StatusCode.INVALID_ARGUMENT") && small.contains("missing input"),
        "{lines}"
    );
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
    let metrics = server.metrics();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("kiln_requests_total") && l.contains("code=\"5")),
        "no 5xx was counted:\n{metrics}"
    );
}

#[test]
fn an_mlflow_reference_is_resolved_and_downloaded_through_the_artifact_proxy() {
    let mlflow = MlflowServer::start(false);
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("runs/adult");
    // Signed at registration; kiln-serve verifies the download before loading it.
    let key = dir.path().join("key.pem");
    let public = dir.path().join("key.pub.pem");
    for args in [
        vec![
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            path_str(&key),
        ],
        vec![
            "ec",
            "-pubout",
            "-in",
            path_str(&key),
            "-out",
            path_str(&public),
        ],
    ] {
        let out = run(Command::new("openssl").args(&args));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    kiln_run_with(
        &run_dir,
        2,
        Some(&mlflow.uri),
        &[("KILN_SIGNING_KEY", &key)],
    );
    let env = [("MLFLOW_TRACKING_URI", mlflow.uri.clone())];
    let server = Server::launch(
        &[
            "--model",
            "models:/adult-income@staging",
            "--verify-with",
            path_str(&public),
        ],
        &env,
    );
    assert!(
        server.stderr().contains("model signature verified"),
        "{}",
        server.stderr()
    );
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
import hashlib, json, sys, urllib.request, pyarrow.parquet as pq
run, mlflow = sys.argv[1], sys.argv[2]
url = f"{mlflow}/api/2.0/mlflow/model-versions/get?name=adult-income&version=1"
tags = {t["key"]: t["value"] for t in json.load(urllib.request.urlopen(url))["model_version"]["tags"]}
rows = pq.read_table(f"{run}/prepare/test.parquet").slice(0, 50).to_pylist()
meta = json.load(open(f"{run}/train/model/metadata.json"))
names = [c["name"] for c in meta["inputs"]]
print(json.dumps({
  "rows": [{n: r[n] for n in names} for r in rows],
  "scores": pq.read_table(f"{run}/evaluate/predictions.parquet").column("score").to_pylist()[:50],
  "decisions": pq.read_table(f"{run}/fairness/decisions.parquet").column("decision").to_pylist()[:50],
  "sha256": hashlib.sha256(open(f"{run}/train/model/model.bin", "rb").read()).hexdigest(),
  "tags": tags,
}))
"#;
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(&run_dir)
        .arg(&mlflow.uri));
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        expected["tags"]["kiln.model_sha256"], expected["sha256"],
        "MLflow's version holds this run's model bytes"
    );
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
    let metrics = server.metrics();
    // The version carries its signature's digests and its ML-BOM.
    for tag in [
        "kiln.signature.root_sha256",
        "kiln.signature.sha256",
        "kiln.bom.cdx.json",
        "kiln.bom.cdx.json.sha256",
    ] {
        assert!(
            expected["tags"][tag].is_string(),
            "{tag}: {}",
            expected["tags"]
        );
    }
    let digest = expected["tags"]["kiln.bundle_sha256"]
        .as_str()
        .expect("the registered bundle's digest");
    assert!(
        metrics.contains(&format!("bundle_sha256=\"{digest}\"")),
        "model info names the registered bundle's digest:\n{metrics}"
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

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
