//! `data.tables` + `data.query`: a generated customers/transactions dataset (a
//! hive-partitioned folder of Parquet files for the events), a query with joins, a
//! point-in-time aggregate and window functions, checked against DuckDB running the
//! same SQL on the same files; point-in-time correctness; errors that name the table,
//! the column or the SQL position.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use kiln_core::parquet_io::ParquetSink;
use kiln_core::store::ObjectRef;
use kiln_testkit::{python, run, stderr, stdout};

/// Customers, each with the time its label was observed (`as_of`).
const CUSTOMERS: i64 = 600;
/// 2024-07-01T00:00:00Z in µs: the customers' `as_of` times spread over the 60 days after.
const T0: i64 = 1_719_792_000_000_000;
const DAY: i64 = 86_400_000_000;

/// The query: the customers' 90-day transaction history *before* each row's time (the
/// point-in-time pattern), a rank and a difference from a window average.
const QUERY: &str = r#"
WITH history AS (
  SELECT c.customer_id,
         COUNT(t.amount) AS tx_count_90d,
         COALESCE(SUM(t.amount), 0.0) AS tx_sum_90d
  FROM customers c
  LEFT JOIN transactions t
    ON t.customer_id = c.customer_id
   AND t.ts < c.as_of
   AND t.ts >= c.as_of - INTERVAL '90 days'
  GROUP BY c.customer_id
)
SELECT c.customer_id, c.segment, c.region, c.income, c.as_of, c.churned,
       h.tx_count_90d, h.tx_sum_90d,
       RANK() OVER (PARTITION BY c.region ORDER BY c.income DESC, c.customer_id) AS income_rank,
       c.income - AVG(c.income) OVER (PARTITION BY c.segment) AS income_vs_segment
FROM customers c
JOIN history h ON h.customer_id = c.customer_id
"#;

/// Every column of the query's result, with its type in the spec.
const COLUMNS: &[(&str, &str)] = &[
    ("customer_id", "int"),
    ("segment", "string"),
    ("region", "string"),
    ("income", "float"),
    ("as_of", "timestamp"),
    ("churned", "string"),
    ("tx_count_90d", "int"),
    ("tx_sum_90d", "float"),
    ("income_rank", "int"),
    ("income_vs_segment", "float"),
];

fn spec(query: &str) -> String {
    let schema: String = COLUMNS
        .iter()
        .map(|(name, dtype)| format!("  - {{name: {name}, type: {dtype}}}\n"))
        .collect();
    let query: String = query.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"name: churn
data:
  tables:
    customers: {{uri: customers.parquet}}
    transactions: {{uri: transactions/, partitions: [month]}}
  format: parquet
  query: |
{query}schema:
{schema}label: {{column: churned, positive: "yes", negative: "no"}}
split: {{method: hash, key: customer_id, test_fraction: 0.25, seed: 3}}
event_time: {{column: as_of}}
transform:
  numeric:
    - {{column: income, standardize: true}}
    - {{column: tx_count_90d, standardize: true}}
    - {{column: tx_sum_90d, standardize: true}}
    - {{column: income_rank}}
    - {{column: income_vs_segment}}
  categorical: [{{column: segment}}, {{column: region}}]
"#
    )
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One transaction: customer, time (µs), amount.
type Event = (i64, i64, f64);

struct Dataset {
    dir: tempfile::TempDir,
    /// Each customer's `as_of`, by id.
    as_of: Vec<i64>,
}

impl Dataset {
    fn generate() -> Dataset {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(7);
        let segments = ["retail", "smb", "enterprise"];
        let regions = ["eu", "us", "apac", "latam"];
        let mut ids = Vec::new();
        let mut segment = Vec::new();
        let mut region = Vec::new();
        let mut income = Vec::new();
        let mut as_of = Vec::new();
        let mut churned = Vec::new();
        for id in 0..CUSTOMERS {
            ids.push(id);
            segment.push(segments[rng.below(3) as usize]);
            region.push(regions[rng.below(4) as usize]);
            // Some ties in income, so that RANK has ties to order.
            income.push(20_000.0 + 250.0 * rng.below(400) as f64);
            as_of.push(T0 + rng.below(60) as i64 * DAY + rng.below(DAY as u64) as i64);
            churned.push(if rng.below(3) == 0 { "yes" } else { "no" });
        }
        let customers = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("customer_id", DataType::Int64, false),
                Field::new("segment", DataType::Utf8, false),
                Field::new("region", DataType::Utf8, false),
                Field::new("income", DataType::Float64, false),
                Field::new("as_of", timestamp(), false),
                Field::new("churned", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(Int64Array::from(ids)) as ArrayRef,
                Arc::new(StringArray::from(segment)),
                Arc::new(StringArray::from(region)),
                Arc::new(Float64Array::from(income)),
                Arc::new(TimestampMicrosecondArray::from(as_of.clone()).with_timezone("UTC")),
                Arc::new(StringArray::from(churned)),
            ],
        )
        .unwrap();
        write_parquet(&dir.path().join("customers.parquet"), &customers);
        // Events from 200 days before T0 to 100 days after it: some before each row's
        // time (inside and outside the 90 days), some after it.
        let mut events: Vec<Event> = Vec::new();
        for _ in 0..CUSTOMERS * 25 {
            let customer = rng.below(CUSTOMERS as u64) as i64;
            if customer % 10 == 0 {
                // One customer in ten has no transactions at all.
                continue;
            }
            let ts = T0 - 200 * DAY + rng.below(300 * DAY as u64) as i64;
            let amount = (rng.below(100_000) as f64) / 100.0;
            events.push((customer, ts, amount));
        }
        let dataset = Dataset { dir, as_of };
        dataset.write_events(&events);
        dataset
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rewrites the transactions folder: one Parquet file per 30-day "month" partition.
    fn write_events(&self, events: &[Event]) {
        let folder = self.path("transactions");
        let _ = std::fs::remove_dir_all(&folder);
        let mut months: std::collections::BTreeMap<i64, Vec<Event>> = Default::default();
        for event in events {
            months
                .entry(event.1.div_euclid(30 * DAY))
                .or_default()
                .push(*event);
        }
        for (month, rows) in months {
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("customer_id", DataType::Int64, false),
                    Field::new("ts", timestamp(), false),
                    Field::new("amount", DataType::Float64, false),
                ])),
                vec![
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|e| e.0))) as ArrayRef,
                    Arc::new(
                        TimestampMicrosecondArray::from_iter_values(rows.iter().map(|e| e.1))
                            .with_timezone("UTC"),
                    ),
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|e| e.2))),
                ],
            )
            .unwrap();
            let part = folder.join(format!("month={month}"));
            std::fs::create_dir_all(&part).unwrap();
            write_parquet(&part.join("part-0.parquet"), &batch);
        }
        // A file the query must not read: not Parquet by its name.
        std::fs::write(folder.join("_SUCCESS"), b"").unwrap();
    }

    fn write_spec(&self, query: &str) {
        std::fs::write(self.path("spec.yaml"), spec(query)).unwrap();
    }

    fn prepare(&self, run_dir: &str, extra: &[&str]) -> Output {
        run(Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
            .arg("--spec")
            .arg(self.path("spec.yaml"))
            .arg("--run")
            .arg(self.path(run_dir))
            .args(extra))
    }

    /// Runs a Python script in the test venv with the dataset's folder as argv[1].
    fn python(&self, script: &str, args: &[&str]) -> String {
        let out = run(Command::new(python())
            .arg("-c")
            .arg(script)
            .arg(self.dir.path())
            .args(args));
        assert!(out.status.success(), "python failed: {}", stderr(&out));
        stdout(&out)
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let object = ObjectRef::parse(path.to_str().unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut sink = ParquetSink::create(&object, batch.schema()).unwrap();
        sink.write(batch).await.unwrap();
        sink.finish().await.unwrap();
    });
}

/// DuckDB runs the spec's query over the same files and compares its result with
/// prepare's train and test tables together: row counts, per-column checksums, and
/// every row (floats rounded to 1e-6, as the two engines sum in different orders).
const DUCKDB_COMPARE: &str = r#"
import json, sys, duckdb
folder, run, query = sys.argv[1], sys.argv[2], sys.argv[3]
db = duckdb.connect()
db.execute("SET TimeZone = 'UTC'")
db.execute(f"CREATE VIEW customers AS SELECT * FROM read_parquet('{folder}/customers.parquet')")
db.execute(f"CREATE VIEW transactions AS SELECT * FROM read_parquet('{folder}/transactions/*/*.parquet', hive_partitioning = true)")
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
    let data = Dataset::generate();
    data.write_spec(QUERY);
    let out = data.prepare("run", &["--memory-limit", "256MiB"]);
    assert!(out.status.success(), "prepare failed: {}", stderr(&out));
    let run_dir = data.path("run");
    let report: serde_json::Value =
        serde_json::from_str(&data.python(DUCKDB_COMPARE, &[run_dir.to_str().unwrap(), QUERY]))
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
fn features_of(data: &Dataset, run_dir: &str, customer: i64) -> (i64, String) {
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
    let data = Dataset::generate();
    data.write_spec(QUERY);
    let customer = 17;
    let as_of = data.as_of[customer as usize];
    // The customer's own events, rewritten: one well before the row's time, and the
    // moving event after it.
    let base: Vec<Event> = vec![
        (customer, as_of - 10 * DAY, 100.0),
        (customer, as_of + 5 * DAY, 40.0),
        (customer + 1, as_of - DAY, 7.0),
    ];
    let features = |events: &[Event], run_dir: &str| {
        data.write_events(events);
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
    let data = Dataset::generate();
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
        data.write_spec(query);
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
    data.write_spec(&QUERY.replace("c.income, c.as_of", "c.segment AS income, c.as_of"));
    let out = data.prepare("bad-type", &[]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("data.query") && message.contains("`income`") && message.contains("Float"),
        "{message}"
    );
    assert!(!data.path("bad-type/prepare/manifest.json").exists());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The output's sha256 in a manifest.
fn output_sha(manifest: &Path, name: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == name)
        .map(|o| o["sha256"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn tables_on_s3_give_the_same_tables_as_on_disk() {
    let data = Dataset::generate();
    data.write_spec(QUERY);
    let local = data.prepare("run", &[]);
    assert!(local.status.success(), "{}", stderr(&local));

    // The same files and spec in a bucket of a real S3-protocol server.
    let server = kiln_testkit::S3Server::start(&["kiln"]);
    copy_tree(data.dir.path(), &server.root.path().join("kiln/data"));
    let out = run(Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
        .args(["--spec", "s3://kiln/data/spec.yaml"])
        .args(["--run", "s3://kiln/runs/r1"])
        .envs(server.env()));
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = server
        .root
        .path()
        .join("kiln/runs/r1/prepare/manifest.json");
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
