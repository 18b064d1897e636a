//! The shared pipeline run, the kiln-serve process and request helpers.

use std::path::Path;
use std::process::Command;

pub use kiln_testkit::{MODEL, Server, pipeline, predict_path, shifted, v1_body};
use kiln_testkit::{run, serve_python, stderr};
use serde_json::{Value, json};

/// Reads every Parquet file under `dir` with pyarrow: rows, distinct request ids, columns.
pub fn read_log(dir: &Path) -> Value {
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
  # Each file sits in the date= partition of its rows' served_at (UTC).
  "partitions_match": all(
    {str(ts.date()) for ts in pq.read_table(f).column("served_at").to_pylist()}
    == {f.parent.name.removeprefix("date=")}
    for f in files
  ),
}))
"#;
    let out = run(Command::new(serve_python()).args(["-c", script]).arg(dir));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

pub fn send_and_log(server: &Server, rows: &[Value]) -> (usize, usize) {
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
