//! OpenLineage 2-0-2 run events: what a step is (a job), one execution of it (a run,
//! with its parent: the pipeline run, or the Argo workflow), and the datasets it read
//! and wrote, each named by OpenLineage's naming convention for its URI and carrying a
//! version (its sha256), a schema when one is known, and, on validated inputs, the
//! data-quality assertions validate checked.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The event schema every event names.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

const FACETS: &str = "https://openlineage.io/spec/facets";

/// Who produced the events (the OpenLineage `producer` URI).
pub fn producer() -> String {
    format!(
        "https://github.com/kiln-mlops/kiln/tree/v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// A run's state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Complete => "COMPLETE",
            EventType::Fail => "FAIL",
        }
    }
}

/// A job and one run of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    pub namespace: String,
    pub job: String,
    pub run_id: String,
}

/// A dataset as OpenLineage names it, with what Kiln knows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    /// The content's sha256 (the dataset version).
    pub version: Option<String>,
    /// Column name and type, in order.
    pub fields: Vec<(String, String)>,
    /// Data-quality assertions checked on it: (assertion, column, success).
    pub assertions: Vec<(String, Option<String>, bool)>,
}

impl Dataset {
    /// The dataset at `uri` (a plain path, `file://`, `s3://bucket/key`, `memory://…`),
    /// named as OpenLineage's naming spec says: `file` + the absolute path for a local
    /// file, `s3://bucket` + the key on S3.
    pub fn at(uri: &str) -> Dataset {
        let (namespace, name) = dataset_name(uri);
        Dataset {
            namespace,
            name,
            version: None,
            fields: Vec::new(),
            assertions: Vec::new(),
        }
    }
}

/// `(namespace, name)` of the dataset at a URI.
pub fn dataset_name(uri: &str) -> (String, String) {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        return (format!("s3://{bucket}"), key.to_string());
    }
    if let Some(rest) = uri.strip_prefix("memory://") {
        let (store, key) = rest.split_once('/').unwrap_or((rest, ""));
        return (format!("memory://{store}"), key.to_string());
    }
    // Another scheme (`mlflow-artifacts:/…`, `https://host/…`): the scheme and host are
    // the namespace, the rest the name.
    if !uri.starts_with("file://")
        && let Some((scheme, rest)) = uri.split_once(':')
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && scheme.len() > 1
    {
        let rest = rest.trim_start_matches('/');
        let (host, path) = if uri[scheme.len() + 1..].starts_with("//") {
            rest.split_once('/').unwrap_or((rest, ""))
        } else {
            ("", rest)
        };
        let namespace = if host.is_empty() {
            scheme.to_string()
        } else {
            format!("{scheme}://{host}")
        };
        return (namespace, path.to_string());
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let absolute = std::path::absolute(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string());
    ("file".to_string(), normalise(&absolute))
}

/// `a/./b/../c` → `a/c` (the same file always gets the same name).
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A new run id: a UUID (version 7 layout: milliseconds, then bits from a hash of the
/// time, the process and a counter).
pub fn new_run_id(now: DateTime<Utc>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default();
    let seed = format!(
        "{}:{}:{n}",
        now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id()
    );
    let random = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random[..10]);
    kiln_core::uuid::format(b, 7)
}

/// A stable UUID for a name: the pipeline run of a run folder keeps its id across
/// steps and processes.
pub fn stable_run_id(name: &str) -> String {
    kiln_core::uuid::from_name(name)
}

fn facet(schema: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_producer".into(), json!(producer()));
    m.insert("_schemaURL".into(), json!(format!("{FACETS}/{schema}")));
    m
}

fn dataset_json(d: &Dataset, input: bool) -> Value {
    let mut facets = Map::new();
    if let Some(version) = &d.version {
        let mut f =
            facet("1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet");
        f.insert("datasetVersion".into(), json!(version));
        facets.insert("version".into(), Value::Object(f));
    }
    if !d.fields.is_empty() {
        let mut f = facet("1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet");
        let fields: Vec<Value> = d
            .fields
            .iter()
            .map(|(name, dtype)| json!({"name": name, "type": dtype}))
            .collect();
        f.insert("fields".into(), json!(fields));
        facets.insert("schema".into(), Value::Object(f));
    }
    let mut out = json!({"namespace": d.namespace, "name": d.name, "facets": facets});
    if input && !d.assertions.is_empty() {
        let mut f = facet(
            "1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet",
        );
        let assertions: Vec<Value> = d
            .assertions
            .iter()
            .map(|(assertion, column, success)| {
                let mut a = json!({"assertion": assertion, "success": success});
                if let Some(c) = column {
                    a["column"] = json!(c);
                }
                a
            })
            .collect();
        f.insert("assertions".into(), json!(assertions));
        out["inputFacets"] = json!({"dataQualityAssertions": f});
    }
    out
}

/// What one event says.
pub struct RunEvent<'a> {
    pub event_type: EventType,
    pub time: DateTime<Utc>,
    pub run: &'a RunRef,
    pub parent: Option<&'a RunRef>,
    pub inputs: &'a [Dataset],
    pub outputs: &'a [Dataset],
    /// For FAIL: the error's one line.
    pub error: Option<&'a str>,
}

impl RunEvent<'_> {
    /// The event as OpenLineage's JSON.
    pub fn to_json(&self) -> Value {
        let mut run_facets = Map::new();
        if let Some(parent) = self.parent {
            let mut f = facet("1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet");
            f.insert("run".into(), json!({"runId": parent.run_id}));
            f.insert(
                "job".into(),
                json!({"namespace": parent.namespace, "name": parent.job}),
            );
            f.insert(
                "root".into(),
                json!({
                    "run": {"runId": parent.run_id},
                    "job": {"namespace": parent.namespace, "name": parent.job},
                }),
            );
            run_facets.insert("parent".into(), Value::Object(f));
        }
        if let Some(message) = self.error {
            let mut f = facet("1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
            f.insert("message".into(), json!(message));
            f.insert("programmingLanguage".into(), json!("RUST"));
            run_facets.insert("errorMessage".into(), Value::Object(f));
        }
        let mut job_type = facet("2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet");
        job_type.insert("processingType".into(), json!("BATCH"));
        job_type.insert("integration".into(), json!("KILN"));
        job_type.insert("jobType".into(), json!("TASK"));
        json!({
            "eventType": self.event_type.as_str(),
            "eventTime": self.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "producer": producer(),
            "schemaURL": SCHEMA_URL,
            "run": {"runId": self.run.run_id, "facets": run_facets},
            "job": {
                "namespace": self.run.namespace,
                "name": self.run.job,
                "facets": {"jobType": job_type},
            },
            "inputs": self.inputs.iter().map(|d| dataset_json(d, true)).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|d| dataset_json(d, false)).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_named_by_openlineages_convention() {
        assert_eq!(
            dataset_name("s3://bucket/runs/a/prepare/train.parquet"),
            (
                "s3://bucket".to_string(),
                "runs/a/prepare/train.parquet".to_string()
            )
        );
        assert_eq!(
            dataset_name("file:///data/./adult/../adult/adult.data"),
            ("file".to_string(), "/data/adult/adult.data".to_string())
        );
        assert_eq!(
            dataset_name("mlflow-artifacts:/1/abc/artifacts/model"),
            (
                "mlflow-artifacts".to_string(),
                "1/abc/artifacts/model".to_string()
            )
        );
        let (ns, name) = dataset_name("relative/x.parquet");
        assert_eq!(ns, "file");
        assert!(name.starts_with('/') && name.ends_with("/relative/x.parquet"));
    }

    #[test]
    fn run_ids_are_uuids_new_ones_differ_and_stable_ones_repeat() {
        let now = Utc::now();
        let (a, b) = (new_run_id(now), new_run_id(now));
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "7");
        }
        assert_eq!(stable_run_id("x"), stable_run_id("x"));
        assert_ne!(stable_run_id("x"), stable_run_id("y"));
    }
}
