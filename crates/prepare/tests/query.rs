//! `data.tables` + `data.query`: a generated customers/transactions dataset
//! ([`kiln_testkit::tables`]: a hive-partitioned folder of Parquet files for the
//! events), a query with joins, a point-in-time aggregate and window functions, checked
//! against DuckDB running the same SQL on the same files; point-in-time correctness; errors that name the table,
//! the column or the SQL position.

use std::path::Path;

use kiln_testkit::stderr;
use kiln_testkit::tables::{CUSTOMERS, ChurnData, DAY, Event, QUERY};

/// DuckDB's view of the dataset's files (argv: folder, run folder, query); the checks
/// below follow it.
const DUCKDB_VIEWS: &str = r#"
import json, sys, duckdb
folder, run, query = sys.argv[1], sys.argv[2], sys.argv[3]
db = duckdb.connect()
db.execute("SET TimeZone = 'UTC'")
db.execute(f"CREATE VIEW customers AS SELECT * FROM read_parquet('{folder}/customers.parquet')")
db.execute(f"CREATE VIEW transactions AS SELECT * FROM read_parquet('{folder}/transactions/*/*.parquet', hive_partitioning = true)")
"#;

/// DuckDB runs the spec's query over the same files and compares its result with
/// prepare's train and test tables together: row counts, per-column checksums, and
/// every row (floats rounded to 1e-6, as the two engines sum in different orders).
const DUCKDB_COMPARE: &str = r#"
db.execute(f"CREATE TABLE duck AS {query}")
db.execute(f"""CREATE TABLE kiln AS SELECT * EXCLUDE (row_id, event_timestamp)
               FROM read_parquet(['{run}/prepare/train.parquet', '{run}/prepare/test.parquet'])""")
cols = [r[0] for r in db.execute("DESCRIBE kiln").fetchall()]
types = {r[0]: r[1] for r in db.execute("DESCRIBE duck").fetchall()}
def expr(c, table):
    if c == "churned" and table == "duck":
        return "CASE WHEN churned = 'yes' THEN 1 ELSE 0 END"
    if types[c] in ("DOUBLE", "FLOAT") or types[c].startswith("DECIMAL"):
        return f"round({c}::DOUBLE, 6)"
    return f"{c}"
def rows(table):
    return ", ".join(f"{expr(c, table)} AS {c}" for c in cols)
out = {"rows": {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("duck", "kiln")}}
out["checksums"] = {t: {c: list(map(str, db.execute(f"SELECT count({c}), sum(hash({expr(c, t)})) FROM {t}").fetchone()))
                        for c in cols} for t in ("duck", "kiln")}
out["only_duck"] = db.execute(f"SELECT count(*) FROM (SELECT {rows('duck')} FROM duck EXCEPT ALL SELECT {rows('kiln')} FROM kiln)").fetchone()[0]
out["only_kiln"] = db.execute(f"SELECT count(*) FROM (SELECT {rows('kiln')} FROM kiln EXCEPT ALL SELECT {rows('duck')} FROM duck)").fetchone()[0]
out["history"] = db.execute("SELECT sum(tx_count_90d), count(*) FILTER (WHERE tx_count_90d = 0) FROM duck").fetchone()
print(json.dumps(out))
"#;

#[test]
fn a_multi_table_query_equals_duckdbs_result_of_the_same_sql() {
    let data = ChurnData::generate();
    data.write_spec(QUERY, "");
    let out = data.prepare("run", &["--memory-limit", "256MiB"]);
    assert!(out.status.success(), "prepare failed: {}", stderr(&out));
    let run_dir = data.path("run");
    let report: serde_json::Value = serde_json::from_str(&data.python(
        &format!("{DUCKDB_VIEWS}{DUCKDB_COMPARE}"),
        &[run_dir.to_str().unwrap(), QUERY],
    ))
    .unwrap();
    assert_eq!(report["rows"]["duck"], CUSTOMERS, "{report}");
    assert_eq!(report["rows"]["kiln"], CUSTOMERS, "{report}");
    assert_eq!(
        report["checksums"]["duck"], report["checksums"]["kiln"],
        "per-column checksums differ: {report}"
    );
    assert_eq!(report["only_duck"], 0, "{report}");
    assert_eq!(report["only_kiln"], 0, "{report}");
    // The data exercises the aggregate: most rows have history, some none.
    let events = report["history"][0].as_i64().unwrap();
    let without = report["history"][1].as_i64().unwrap();
    assert!(events > CUSTOMERS * 3 && without > 0, "{report}");

    // The manifest pins every file the query read (not `_SUCCESS`), by sha256.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("prepare/manifest.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"tables.customers"), "{names:?}");
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("tables.transactions/month="))
            .count()
            >= 10,
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("_SUCCESS")), "{names:?}");

    // The same inputs again: a cache hit; one changed event file: a rerun.
    let again = data.prepare("run", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("cache hit"), "{}", stderr(&again));
    let mut moved = std::fs::read_dir(data.path("transactions"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect::<Vec<_>>();
    moved.sort();
    let file = moved[0].join("part-0.parquet");
    // A second file in one partition (a copy of the first): a new input.
    std::fs::copy(&file, moved[0].join("part-1.parquet")).unwrap();
    let changed = data.prepare("run", &[]);
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert!(
        !stderr(&changed).contains("cache hit"),
        "{}",
        stderr(&changed)
    );
}

/// The features of one row, read by DuckDB from prepare's output.
fn features_of(data: &ChurnData, run_dir: &str, customer: i64) -> (i64, String) {
    let script = r#"
import sys, duckdb
folder, run, customer = sys.argv[1], sys.argv[2], int(sys.argv[3])
row = duckdb.sql(f"""SELECT tx_count_90d, tx_sum_90d FROM read_parquet(['{folder}/{run}/prepare/train.parquet', '{folder}/{run}/prepare/test.parquet'])
                    WHERE customer_id = {customer}""").fetchall()
assert len(row) == 1, row
print(row[0][0], repr(row[0][1]))
"#;
    let text = data.python(script, &[run_dir, &customer.to_string()]);
    let (count, sum) = text.trim().split_once(' ').unwrap();
    (count.parse().unwrap(), sum.to_string())
}

#[test]
fn an_event_counts_only_before_its_rows_time() {
    let mut data = ChurnData::generate();
    data.write_spec(QUERY, "");
    let customer = 17;
    let as_of = data.as_of[customer as usize];
    // The customer's own events, rewritten: one well before the row's time, and the
    // moving event after it.
    let base: Vec<Event> = vec![
        (customer, as_of - 10 * DAY, 100.0),
        (customer, as_of + 5 * DAY, 40.0),
        (customer + 1, as_of - DAY, 7.0),
    ];
    let mut features = |events: &[Event], run_dir: &str| {
        data.write_events(events.to_vec());
        let out = data.prepare(run_dir, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        features_of(&data, run_dir, customer)
    };
    let before = features(&base, "base");
    assert_eq!(before, (1, "100.0".to_string()));
    // Later, and exactly at the row's time: still not "before", so nothing changes.
    for (i, moved_to) in [as_of + 60 * DAY, as_of].into_iter().enumerate() {
        let mut events = base.clone();
        events[1].1 = moved_to;
        assert_eq!(
            features(&events, &format!("later{i}")),
            before,
            "moved to {moved_to}"
        );
    }
    // One microsecond before the row's time: it counts.
    let mut events = base.clone();
    events[1].1 = as_of - 1;
    assert_eq!(features(&events, "earlier"), (2, "140.0".to_string()));
    // Older than the 90-day window: it does not.
    events[1].1 = as_of - 91 * DAY;
    assert_eq!(features(&events, "older"), before);
}

#[test]
fn query_errors_name_the_table_the_column_or_the_position() {
    let data = ChurnData::generate();
    let cases: &[(&str, &str)] = &[
        // Syntax: the parser's position.
        (
            "SELECT customer_id FROM customers WHERE customer_id = = 1",
            "Expected: an expression, found: = at Line: 1, Column: 55",
        ),
        // An unknown table, and where the query names it.
        (
            "SELECT *\nFROM customer",
            "(line 2, column 6): Error during planning: table 'datafusion.public.customer' not found",
        ),
        // An unknown column.
        (
            "SELECT c.nope FROM customers c",
            "(line 1, column 8): Schema error: No field named c.nope",
        ),
        // The result lacks a schema column.
        (
            "SELECT customer_id, segment, region, income, as_of, churned FROM customers",
            "tx_count_90d",
        ),
    ];
    for (i, (query, named)) in cases.iter().enumerate() {
        data.write_spec(query, "");
        let out = data.prepare(&format!("bad{i}"), &[]);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{query}: {message}");
        assert!(message.contains(named), "{query}: {message}");
        assert!(message.contains("data.query"), "{query}: {message}");
        assert!(!message.contains("panicked"), "{query}: {message}");
        assert!(
            !data.path(&format!("bad{i}/prepare/manifest.json")).exists(),
            "{query}: a failed prepare left a manifest"
        );
    }
    // A value the spec's type cannot hold: the column and the types.
    data.write_spec(
        &QUERY.replace("c.income, c.as_of", "c.segment AS income, c.as_of"),
        "",
    );
    let out = data.prepare("bad-type", &[]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("data.query") && message.contains("`income`") && message.contains("Float"),
        "{message}"
    );
    assert!(!data.path("bad-type/prepare/manifest.json").exists());
}

/// Two labelled rows per customer: at `as_of` and 30 days before it, each with its own
/// point-in-time history.
const SNAPSHOTS: &str = r#"
WITH snapshots AS (
  SELECT customer_id, segment, region, income, as_of, churned FROM customers
  UNION ALL
  SELECT customer_id, segment, region, income, as_of - INTERVAL '30 days' AS as_of, churned FROM customers
), history AS (
  SELECT s.customer_id, s.as_of,
         COUNT(t.amount) AS tx_count_90d,
         COALESCE(SUM(t.amount), 0.0) AS tx_sum_90d
  FROM snapshots s
  LEFT JOIN transactions t
    ON t.customer_id = s.customer_id AND t.ts < s.as_of AND t.ts >= s.as_of - INTERVAL '90 days'
  GROUP BY s.customer_id, s.as_of
)
SELECT s.customer_id, s.segment, s.region, s.income, s.as_of, s.churned,
       h.tx_count_90d, h.tx_sum_90d,
       RANK() OVER (PARTITION BY s.region ORDER BY s.income DESC, s.customer_id, s.as_of) AS income_rank,
       s.income - AVG(s.income) OVER (PARTITION BY s.segment) AS income_vs_segment
FROM snapshots s JOIN history h ON h.customer_id = s.customer_id AND h.as_of = s.as_of
"#;

/// DuckDB: prepare's feature table against each customer's latest history, computed
/// from the sources with the single-snapshot query (whose rows are at `as_of`).
const FEATURE_TABLE_CHECK: &str = r#"
db.execute(f"CREATE TABLE latest AS SELECT customer_id, as_of AS event_timestamp, tx_count_90d, round(tx_sum_90d, 6) AS tx_sum_90d FROM ({query})")
db.execute(f"CREATE TABLE kiln AS SELECT customer_id, event_timestamp, tx_count_90d, round(tx_sum_90d, 6) AS tx_sum_90d FROM read_parquet('{run}/prepare/features.parquet')")
rows = lambda q: db.execute(q).fetchone()[0]
print(json.dumps({
  "prepared": rows(f"SELECT count(*) FROM read_parquet(['{run}/prepare/train.parquet', '{run}/prepare/test.parquet'])"),
  "keys": rows("SELECT count(*) FROM kiln"),
  "distinct": rows("SELECT count(DISTINCT customer_id) FROM kiln"),
  "only_latest": rows("SELECT count(*) FROM (SELECT * FROM latest EXCEPT ALL SELECT * FROM kiln)"),
  "only_kiln": rows("SELECT count(*) FROM (SELECT * FROM kiln EXCEPT ALL SELECT * FROM latest)"),
  "sorted": db.execute("SELECT customer_id FROM kiln").fetchall() == sorted(db.execute("SELECT customer_id FROM kiln").fetchall()),
}))
"#;

#[test]
fn the_feature_table_holds_each_keys_latest_row() {
    let data = ChurnData::generate();
    data.write_spec(
        SNAPSHOTS,
        "  lookup: {key: customer_id, columns: [tx_count_90d, tx_sum_90d]}\n",
    );
    let out = data.prepare("run", &[]);
    assert!(out.status.success(), "prepare failed: {}", stderr(&out));
    let run_dir = data.path("run");
    let manifest = std::fs::read_to_string(run_dir.join("prepare/manifest.json")).unwrap();
    assert!(manifest.contains("\"features.parquet\""), "{manifest}");
    let report: serde_json::Value = serde_json::from_str(&data.python(
        &format!("{DUCKDB_VIEWS}{FEATURE_TABLE_CHECK}"),
        &[run_dir.to_str().unwrap(), QUERY],
    ))
    .unwrap();
    // Two rows per customer went in; one per customer, the later one, came out.
    assert_eq!(report["prepared"], 2 * CUSTOMERS, "{report}");
    assert_eq!(report["keys"], CUSTOMERS, "{report}");
    assert_eq!(report["distinct"], CUSTOMERS, "{report}");
    assert_eq!(report["only_latest"], 0, "{report}");
    assert_eq!(report["only_kiln"], 0, "{report}");
    assert_eq!(report["sorted"], true, "{report}");
    // A lookup column that is not in the schema is a spec error (exit 2).
    data.write_spec(QUERY, "  lookup: {key: customer_id, columns: [nope]}\n");
    let out = data.prepare("bad", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("transform.lookup.columns[0]: column `nope` is not in `schema`"),
        "{}",
        stderr(&out)
    );
}

/// The output's sha256 in a manifest.
fn output_sha(manifest: &Path, name: &str) -> String {
    kiln_testkit::manifest_outputs(manifest).expect("manifest")[name].clone()
}

#[test]
fn tables_on_s3_give_the_same_tables_as_on_disk() {
    let data = ChurnData::generate();
    data.write_spec(QUERY, "");
    let local = data.prepare("run", &[]);
    assert!(local.status.success(), "{}", stderr(&local));

    // The same files and spec in a bucket of a real S3-protocol server.
    let server = kiln_testkit::S3Server::start(&["kiln"]);
    let (out, stored) = data.prepare_in_bucket(&server);
    assert!(out.status.success(), "{}", stderr(&out));
    for table in ["train.parquet", "test.parquet"] {
        assert_eq!(
            output_sha(&stored, table),
            output_sha(&data.path("run/prepare/manifest.json"), table),
            "{table} differs between S3 and disk"
        );
    }
    let manifest = std::fs::read_to_string(&stored).unwrap();
    assert!(
        manifest.contains("s3://kiln/data/transactions/month="),
        "{manifest}"
    );
}
