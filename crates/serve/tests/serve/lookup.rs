//! Features a request cannot carry: a model trained on the generated customers and
//! transactions (`kiln_testkit::tables`) whose history aggregates and window ranks are
//! looked up by `customer_id` in prepare's feature table. A request that gives only
//! the key and the customer's own columns scores as evaluate scored the row; the table
//! is refreshed while serving; a server without one names what a request must send.

use std::process::Command;
use std::time::{Duration, Instant};

use kiln_testkit::tables::{ChurnData, QUERY};
use kiln_testkit::{Server, bin, run, serve_python, stderr, v1_body, v1_rows};
use serde_json::{Value, json};

const LOOKED_UP: [&str; 4] = [
    "tx_count_90d",
    "tx_sum_90d",
    "income_rank",
    "income_vs_segment",
];

/// prepare, train and evaluate on the generated tables, with the lookup.
fn churn_run(data: &ChurnData) -> std::path::PathBuf {
    data.write_spec(
        QUERY,
        &format!(
            "  lookup: {{key: customer_id, columns: [{}]}}\n",
            LOOKED_UP.join(", ")
        ),
    );
    let run_dir = data.path("run");
    for step in ["prepare", "train", "evaluate"] {
        let out = run(Command::new(bin("kiln"))
            .arg(step)
            .arg("--spec")
            .arg(data.path("spec.yaml"))
            .arg("--run")
            .arg(&run_dir)
            .args(["--set", "train.epochs=3", "-q"]));
        assert!(out.status.success(), "kiln {step}: {}", stderr(&out));
    }
    run_dir
}

/// evaluate's scores, in test order.
fn evaluate_scores(run_dir: &std::path::Path) -> Vec<f64> {
    let script = "import json, sys, pyarrow.parquet as pq\nprint(json.dumps(pq.read_table(sys.argv[1]).column('score').to_pylist()))";
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(run_dir.join("evaluate/predictions.parquet")));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("scores")
}

fn probabilities(answer: &str) -> Vec<f64> {
    let answer: Value = serde_json::from_str(answer).expect("JSON");
    answer["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["probability"].as_f64().expect("probability"))
        .collect()
}

const PREDICT: &str = "/v1/models/churn:predict";

#[test]
fn a_key_only_request_scores_from_the_feature_table_as_evaluate_scored_it() {
    let data = ChurnData::generate();
    let run_dir = churn_run(&data);
    let features = run_dir.join("prepare/features.parquet");
    // prepare's manifest lists the feature table; the bundle records the lookup.
    let manifest =
        std::fs::read_to_string(run_dir.join("prepare/manifest.json")).expect("manifest");
    assert!(manifest.contains("features.parquet"), "{manifest}");
    let transform: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("train/model/transform.json")).expect("transform"),
    )
    .expect("JSON");
    assert_eq!(transform["lookup"]["key"], "customer_id", "{transform}");

    // A copy the test can replace while the server runs.
    let table_dir = tempfile::tempdir().expect("dir");
    let table = table_dir.path().join("features.parquet");
    std::fs::copy(&features, &table).expect("copy");
    let bundle = run_dir.join("train/model");
    let server = Server::launch(
        &[
            "--model",
            bundle.to_str().expect("path"),
            "--model-name",
            "churn",
            "--feature-table",
            table.to_str().expect("path"),
            "--feature-refresh",
            "0.2",
        ],
        &[],
    );

    // Every test row, with only the key and the customer's own columns.
    let full = v1_rows(&run_dir);
    let key_only: Vec<Value> = full
        .iter()
        .map(|row| {
            let mut row = row.clone();
            let record = row.as_object_mut().expect("record");
            for column in LOOKED_UP {
                assert!(record.remove(column).is_some(), "{column} is an input");
            }
            row
        })
        .collect();
    assert!(key_only[0].get("customer_id").is_some());
    let want = evaluate_scores(&run_dir);
    assert_eq!(want.len(), key_only.len());
    // Scores that differ from row to row, so that equal scores mean equal features.
    let mut distinct: Vec<u64> = want.iter().map(|s| (s * 1e6) as u64).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > want.len() / 2, "{want:?}");
    let (status, text) = server.post(PREDICT, &v1_body(&key_only)).expect("answer");
    assert_eq!(status, 200, "{text}");
    let got = probabilities(&text);
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        assert!(
            (got - want).abs() <= 1e-6,
            "row {i}: {got} vs evaluate's {want}"
        );
    }
    // The same through V2 REST, with the looked-up tensors left out.
    let column = |name: &str, datatype: &str| {
        json!({
            "name": name,
            "datatype": datatype,
            "shape": [key_only.len()],
            "data": key_only.iter().map(|r| r[name].clone()).collect::<Vec<_>>(),
        })
    };
    let body = json!({"inputs": [
        column("customer_id", "INT64"),
        column("income", "FP64"),
        column("segment", "BYTES"),
        column("region", "BYTES"),
    ]});
    let (status, text) = server
        .post(
            "/v2/models/churn/infer",
            &serde_json::to_vec(&body).expect("JSON"),
        )
        .expect("answer");
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let v2 = answer["outputs"][0]["data"].as_array().expect("data");
    for (i, (got, want)) in v2.iter().zip(&want).enumerate() {
        let got = got.as_f64().expect("number");
        assert!((got - want).abs() <= 1e-6, "V2 row {i}: {got} vs {want}");
    }
    let metrics = server.metrics();
    let hits = format!(
        "kiln_feature_lookups_total{{model_name=\"churn\",result=\"hit\"}} {}",
        2 * key_only.len()
    );
    assert!(metrics.contains(&hits), "{metrics}");

    // A key the table does not have: the looked-up columns are missing (imputed, as in
    // training) and the row counts as a miss. Values a request does give are used.
    let mut unknown = key_only[0].clone();
    unknown["customer_id"] = json!(987_654);
    let mut given = key_only[0].clone();
    for column in LOOKED_UP {
        given[column] = full[0][column].clone();
    }
    let (status, text) = server
        .post(PREDICT, &v1_body(&[unknown.clone(), given]))
        .expect("answer");
    assert_eq!(status, 200, "{text}");
    let scores = probabilities(&text);
    assert!((scores[1] - want[0]).abs() <= 1e-6, "{text}");
    assert!(
        server
            .metrics()
            .contains("kiln_feature_lookups_total{model_name=\"churn\",result=\"miss\"} 1"),
        "{}",
        server.metrics()
    );

    // A new version of the table (the first customer's history changed) serves within
    // the refresh interval; a broken one is refused and the loaded one keeps serving.
    let score_of = |row: &Value| {
        let (status, text) = server
            .post(PREDICT, &v1_body(std::slice::from_ref(row)))
            .expect("answer");
        assert_eq!(status, 200, "{text}");
        probabilities(&text)[0]
    };
    let probe = key_only
        .iter()
        .min_by_key(|r| r["customer_id"].as_i64())
        .expect("rows")
        .clone();
    let before = score_of(&probe);
    let rewrite = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
key = int(sys.argv[3])
ids = t.column("customer_id").to_pylist()
counts = [c * 10 + 50 if k == key else c for k, c in zip(ids, t.column("tx_count_90d").to_pylist())]
t = t.set_column(t.schema.get_field_index("tx_count_90d"), "tx_count_90d", pa.array(counts, pa.int64()))
pq.write_table(t, sys.argv[2] + ".tmp")
"#;
    let out = run(Command::new(serve_python())
        .args(["-c", rewrite])
        .arg(&features)
        .arg(&table)
        .arg(probe["customer_id"].to_string()));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(table.with_extension("parquet.tmp"), &table).expect("swap");
    let deadline = Instant::now() + Duration::from_secs(10);
    while (score_of(&probe) - before).abs() <= 1e-9 {
        assert!(
            Instant::now() < deadline,
            "the new table never served: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.stderr().contains("feature table refreshed"));
    std::fs::write(&table, b"not parquet").expect("break");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .metrics()
        .contains("kiln_feature_table_refresh_errors_total{model_name=\"churn\"} 1")
    {
        assert!(Instant::now() < deadline, "{}", server.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = server
        .post(PREDICT, &v1_body(&key_only[..3]))
        .expect("answer");
    assert_eq!(status, 200, "the loaded table keeps serving");
    assert!(
        server.stderr().contains("not a Parquet file"),
        "{}",
        server.stderr()
    );
    assert!(server.terminate().success());

    // Without a table the server starts (requests may carry the columns) and names
    // what a key-only request lacks; a table without a looked-up column is refused.
    let plain = Server::launch(
        &[
            "--model",
            bundle.to_str().expect("path"),
            "--model-name",
            "churn",
        ],
        &[],
    );
    let (status, text) = plain
        .post(PREDICT, &v1_body(&key_only[..1]))
        .expect("answer");
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("`tx_count_90d`") && text.contains("--feature-table"),
        "{text}"
    );
    let (status, text) = plain.post(PREDICT, &v1_body(&full[..2])).expect("answer");
    assert_eq!(status, 200, "{text}");
    drop(plain);
    let out = run(Command::new(bin("kiln-serve"))
        .args(["--model", bundle.to_str().expect("path")])
        .args([
            "--feature-table",
            run_dir
                .join("evaluate/predictions.parquet")
                .to_str()
                .expect("path"),
        ])
        .args([
            "--http",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--no-grpc",
        ]));
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("predictions.parquet: no column `customer_id`"),
        "{message}"
    );
}
