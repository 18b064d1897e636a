//! A generated multi-table dataset: customers (each with the time its label was
//! observed, `as_of`) and their transactions in a hive-partitioned folder of Parquet
//! files, and the query that builds the modelling table from them (joins, a
//! point-in-time 90-day aggregate, window functions). prepare's query tests check it
//! against DuckDB; the serving tests train on it and serve its history aggregates
//! from the feature table by customer key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// Customers, each with the time its label was observed (`as_of`).
pub const CUSTOMERS: i64 = 600;
/// 2024-07-01T00:00:00Z in µs: the customers' `as_of` times spread over the 60 days after.
pub const T0: i64 = 1_719_792_000_000_000;
pub const DAY: i64 = 86_400_000_000;

/// The query: the customers' 90-day transaction history *before* each row's time (the
/// point-in-time pattern), a rank and a difference from a window average.
pub const QUERY: &str = r#"
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
pub const COLUMNS: &[(&str, &str)] = &[
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

/// The spec over the two tables with `query`; `extra` is appended (more spec sections).
pub fn spec(query: &str, extra: &str) -> String {
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
    - {{column: income_rank, standardize: true}}
    - {{column: income_vs_segment, standardize: true}}
  categorical: [{{column: segment}}, {{column: region}}]
{extra}"#
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
pub type Event = (i64, i64, f64);

/// The dataset's folder: `customers.parquet` and `transactions/month=N/part-0.parquet`.
pub struct ChurnData {
    pub dir: tempfile::TempDir,
    /// Each customer's `as_of`, by id.
    pub as_of: Vec<i64>,
    /// The transactions as written.
    pub events: Vec<Event>,
}

impl ChurnData {
    pub fn generate() -> ChurnData {
        let dir = tempfile::tempdir().expect("temp dir");
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
        .expect("customers batch");
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
        let mut data = ChurnData {
            dir,
            as_of,
            events: Vec::new(),
        };
        data.write_events(events);
        data
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rewrites the transactions folder: one Parquet file per 30-day "month" partition.
    pub fn write_events(&mut self, events: Vec<Event>) {
        let folder = self.path("transactions");
        let _ = std::fs::remove_dir_all(&folder);
        let mut months: std::collections::BTreeMap<i64, Vec<Event>> = Default::default();
        for event in &events {
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
            .expect("events batch");
            let part = folder.join(format!("month={month}"));
            std::fs::create_dir_all(&part).expect("partition folder");
            write_parquet(&part.join("part-0.parquet"), &batch);
        }
        // A file the query must not read: not Parquet by its name.
        std::fs::write(folder.join("_SUCCESS"), b"").expect("marker");
        self.events = events;
    }

    /// Runs kiln-prepare on the dataset's `spec.yaml` into `<dataset>/<run_dir>`.
    pub fn prepare(&self, run_dir: &str, extra: &[&str]) -> std::process::Output {
        crate::run(
            std::process::Command::new(crate::bin("kiln-prepare"))
                .arg("--spec")
                .arg(self.path("spec.yaml"))
                .arg("--run")
                .arg(self.path(run_dir))
                .args(extra),
        )
    }

    /// The dataset copied into the bucket `kiln` of an S3-protocol server (under
    /// `data/`), and kiln-prepare run there: `--spec s3://kiln/data/spec.yaml --run
    /// s3://kiln/runs/r1`. Returns the output and the run's manifest path on the
    /// server's disk.
    pub fn prepare_in_bucket(
        &self,
        server: &crate::S3Server,
    ) -> (std::process::Output, std::path::PathBuf) {
        crate::copy_tree(self.dir.path(), &server.root.path().join("kiln/data"));
        let out = crate::run(
            std::process::Command::new(crate::bin("kiln-prepare"))
                .args(["--spec", "s3://kiln/data/spec.yaml"])
                .args(["--run", "s3://kiln/runs/r1"])
                .envs(server.env()),
        );
        (
            out,
            server
                .root
                .path()
                .join("kiln/runs/r1/prepare/manifest.json"),
        )
    }

    /// Runs a Python script in the test venv with the dataset's folder as argv[1].
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let out = crate::run(
            std::process::Command::new(crate::python())
                .arg("-c")
                .arg(script)
                .arg(self.dir.path())
                .args(args),
        );
        assert!(
            out.status.success(),
            "python failed: {}",
            crate::stderr(&out)
        );
        crate::stdout(&out)
    }

    /// Writes `spec.yaml` (see [`spec`]).
    pub fn write_spec(&self, query: &str, extra: &str) {
        std::fs::write(self.path("spec.yaml"), spec(query, extra)).expect("spec");
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One batch as a Parquet file (arrow's own writer, not Kiln's).
pub fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).expect("create Parquet file");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("Parquet writer");
    writer.write(batch).expect("write Parquet");
    writer.close().expect("close Parquet");
}
