//! Delta tables in and out, checked with delta-rs's own Python package (`deltalake`):
//! prepare reads a Delta table at its latest or a pinned version and pins the version
//! in its manifest; it writes its tables as new versions of Delta tables that
//! `deltalake` reads with their history; and `--reproduce` gives an earlier run's
//! outputs byte for byte after the source table moved on.

use std::path::Path;

use kiln_testkit::stderr;
use kiln_testkit::tables::{ChurnData, QUERY};

fn manifest(data: &ChurnData, run_dir: &str) -> serde_json::Value {
    let path = data.path(&format!("{run_dir}/prepare/manifest.json"));
    serde_json::from_slice(&std::fs::read(path).expect("manifest")).expect("JSON")
}

/// A run's prepare outputs: path → sha256.
fn outputs(manifest: &serde_json::Value) -> Vec<(String, String)> {
    manifest["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| {
            let text = |v: &serde_json::Value| v.as_str().expect("text").to_string();
            (text(&o["path"]), text(&o["sha256"]))
        })
        .collect()
}

/// The transactions of the generated dataset as a Delta table (version 0), written by
/// deltalake; `append` adds a later batch of events as version 1.
const WRITE_EVENTS: &str = r#"
import sys, pyarrow.dataset as ds, pyarrow as pa, deltalake
folder, mode = sys.argv[1], sys.argv[2]
events = ds.dataset(f"{folder}/transactions", format="parquet", partitioning="hive").to_table(columns=["customer_id", "ts", "amount"])
if mode == "append":
    # The same customers' events, 20 days later: some move into rows' 90-day windows.
    events = events.set_column(1, "ts", pa.compute.add(events.column("ts"), pa.scalar(20 * 86400 * 10**6, pa.duration("us"))))
deltalake.write_deltalake(f"{folder}/lake/transactions", events, mode="append" if mode == "append" else "error")
print(deltalake.DeltaTable(f"{folder}/lake/transactions").version())
"#;

/// What deltalake reads of prepare's Delta output: each table's versions and history,
/// and the rows of a version against a run's train.parquet.
const READ_OUTPUT: &str = r#"
import json, sys, deltalake, pyarrow.parquet as pq
folder, version, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {}
for name in ("train", "test"):
    table = deltalake.DeltaTable(f"{folder}/lake/out/{name}")
    at = deltalake.DeltaTable(f"{folder}/lake/out/{name}", version=version).to_pyarrow_table()
    mine = pq.read_table(f"{folder}/{run}/prepare/{name}.parquet")
    out[name] = {
        "latest": table.version(),
        "history": sorted(h["version"] for h in table.history()),
        "operations": [h.get("operation") for h in table.history()],
        "rows": at.num_rows,
        "equal": at.sort_by("row_id").equals(mine.sort_by("row_id")),
    }
print(json.dumps(out))
"#;

fn write_spec(data: &ChurnData, extra: &str) {
    let spec = kiln_testkit::tables::spec(QUERY, "").replace(
        "    transactions: {uri: transactions/, partitions: [month]}\n",
        &format!("    transactions: {{uri: lake/transactions, format: delta{extra}}}\n"),
    );
    let spec = spec.replace(
        "  format: parquet\n",
        "  format: parquet\n  delta_output: lake/out\n",
    );
    std::fs::write(data.path("spec.yaml"), spec).expect("spec");
}

#[test]
fn delta_in_at_a_version_delta_out_with_history_and_a_byte_identical_reproduction() {
    let data = ChurnData::generate();
    assert_eq!(data.python(WRITE_EVENTS, &["create"]).trim(), "0");
    write_spec(&data, "");

    // Run 1 reads version 0, pins it in the manifest, and writes version 0 of the output.
    let out = data.prepare("r1", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = manifest(&data, "r1");
    let inputs = first["inputs"].to_string();
    assert!(
        inputs.contains("\"tables.transactions@0\"")
            && inputs.contains("_delta_log/00000000000000000000.json"),
        "{inputs}"
    );
    assert_eq!(first["summary"]["delta"]["train"]["version"], 0, "{first}");
    let read: serde_json::Value =
        serde_json::from_str(&data.python(READ_OUTPUT, &["0", "r1"])).expect("JSON");
    assert_eq!(read["train"]["latest"], 0, "{read}");
    assert_eq!(read["train"]["equal"], true, "{read}");
    assert_eq!(read["test"]["equal"], true, "{read}");

    // The source moves on (version 1); run 2 reads it and writes version 1.
    assert_eq!(data.python(WRITE_EVENTS, &["append"]).trim(), "1");
    let out = data.prepare("r2", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = manifest(&data, "r2");
    assert!(
        second["inputs"]
            .to_string()
            .contains("\"tables.transactions@1\""),
        "{second}"
    );
    assert_ne!(
        outputs(&first),
        outputs(&second),
        "new events change the tables"
    );
    let read: serde_json::Value =
        serde_json::from_str(&data.python(READ_OUTPUT, &["0", "r1"])).expect("JSON");
    assert_eq!(read["train"]["latest"], 1, "{read}");
    assert_eq!(
        read["train"]["history"],
        serde_json::json!([0, 1]),
        "{read}"
    );
    assert_eq!(
        read["train"]["equal"], true,
        "version 0 is still run 1's: {read}"
    );
    let read: serde_json::Value =
        serde_json::from_str(&data.python(READ_OUTPUT, &["1", "r2"])).expect("JSON");
    assert_eq!(read["train"]["equal"], true, "version 1 is run 2's: {read}");

    // Reproducing run 1 now: the source at the version run 1 read, the same bytes.
    let out = data.prepare("r3", &["--reproduce", data.path("r1").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let third = manifest(&data, "r3");
    let tables = |m: &serde_json::Value| -> Vec<(String, String)> {
        outputs(m)
            .into_iter()
            .filter(|(path, _)| path != "features.parquet")
            .collect()
    };
    assert_eq!(tables(&third), tables(&first), "byte-identical to run 1");
    assert!(
        third["inputs"]
            .to_string()
            .contains("\"tables.transactions@0\"")
    );
    assert_eq!(third["summary"]["delta"]["train"]["version"], 2, "{third}");
    // The output's data file is the train table, byte for byte.
    assert_eq!(
        third["summary"]["delta"]["train"]["sha256"],
        serde_json::json!(
            tables(&third)
                .iter()
                .find(|(p, _)| p == "train.parquet")
                .unwrap()
                .1
        )
    );

    // The same spec and tables in a bucket of a real S3-protocol server: the source
    // read at its latest version gives run 2's tables, and the output gets a version.
    let server = kiln_testkit::S3Server::start(&["kiln"]);
    let (out, stored) = data.prepare_in_bucket(&server);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stored).expect("manifest")).expect("JSON");
    assert_eq!(tables(&stored), tables(&second), "S3 and disk agree");
    assert_eq!(
        stored["summary"]["delta"]["train"]["version"], 3,
        "{stored}"
    );
    assert!(
        server
            .root
            .path()
            .join("kiln/data/lake/out/train/_delta_log/00000000000000000003.json")
            .exists()
    );

    // A pinned version that does not exist, and a reproduction whose plain file changed.
    write_spec(&data, ", version: 9");
    let out = data.prepare("bad", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no version 9 (its latest is 1)"),
        "{}",
        stderr(&out)
    );
    write_spec(&data, "");
    rewrite_customers(&data);
    let out = data.prepare("r4", &["--reproduce", data.path("r1").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("customers.parquet changed since that run"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&data.path("r4/prepare/manifest.json")).exists());
}

/// Rewrites customers.parquet with one income changed.
fn rewrite_customers(data: &ChurnData) {
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
path = f"{sys.argv[1]}/customers.parquet"
t = pq.read_table(path)
income = t.column("income").to_pylist()
income[0] += 1.0
pq.write_table(t.set_column(t.schema.get_field_index("income"), "income", pa.array(income, pa.float64())), path)
"#;
    data.python(script, &[]);
}
