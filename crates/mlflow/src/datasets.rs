//! MLflow dataset inputs: which data version trained which model.
//!
//! After prepare completes, its MLflow run records (REST `runs/log-inputs`, what
//! `mlflow.log_input` sends) the tables it wrote and the raw data it read, so that
//! MLflow's UI and client show each run's data with its digest:
//!
//! | dataset | context | digest | schema, profile |
//! | --- | --- | --- | --- |
//! | `train`, `test` (`prepare/*.parquet`) | `training`, `evaluation` | the file's sha256 | columns from the file's footer; row count |
//! | each source file (`source[0]`) or table (`tables.transactions`) | `source` | a file's sha256; a folder's: the sha256 of its files' names and hashes | — |
//!
//! MLflow caps a digest at 36 characters: it holds the first 32 hex digits of the
//! sha256, and the full one is in the dataset's `source`.

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use serde_json::{Value, json};

use kiln_core::Result;
use kiln_core::manifest::StepManifest;
use kiln_core::parquet_io::read_parquet;
use kiln_core::store::{ArtifactStore, sha256_hex};

/// A digest as MLflow stores it (at most 36 characters).
fn digest(sha256: &str) -> String {
    sha256.chars().take(32).collect()
}

fn source_type(uri: &str) -> &'static str {
    if uri.starts_with("s3://") {
        "s3"
    } else {
        "local"
    }
}

/// MLflow's column type names (`mlflow.types.DataType`).
fn mlflow_type(dtype: &DataType) -> &'static str {
    match dtype {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "integer",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "long",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => "datetime",
        DataType::Binary | DataType::LargeBinary => "binary",
        _ => "string",
    }
}

/// One `DatasetInput` of the REST API.
fn input(name: &str, context: &str, dataset: serde_json::Map<String, Value>) -> Value {
    let mut dataset = dataset;
    dataset.insert("name".into(), json!(name));
    json!({
        "tags": [{"key": "mlflow.data.context", "value": context}],
        "dataset": dataset,
    })
}

/// The dataset inputs of a completed prepare step: its two tables and its raw inputs.
pub async fn prepare_datasets(dir: &ArtifactStore, manifest: &StepManifest) -> Result<Vec<Value>> {
    let mut inputs = Vec::new();
    let rows = |key: &str| manifest.summary.get(key).and_then(Value::as_u64);
    for (table, context, rows) in [
        ("train", "training", rows("train_rows")),
        ("test", "evaluation", rows("test_rows")),
    ] {
        let file = format!("{table}.parquet");
        let Some(output) = manifest.output(&file) else {
            continue;
        };
        let (schema, _) = read_parquet(&dir.object(&file), 1).await?;
        let columns: Vec<Value> = schema
            .fields()
            .iter()
            .map(|f| json!({"type": mlflow_type(f.data_type()), "name": f.name(), "required": !f.is_nullable()}))
            .collect();
        let uri = dir.uri_of(&file);
        let mut dataset = serde_json::Map::new();
        dataset.insert("digest".into(), json!(digest(&output.hash.sha256)));
        dataset.insert("source_type".into(), json!(source_type(&uri)));
        dataset.insert(
            "source".into(),
            json!(json!({"uri": uri, "sha256": output.hash.sha256}).to_string()),
        );
        dataset.insert(
            "schema".into(),
            json!(json!({"mlflow_colspec": columns}).to_string()),
        );
        if let Some(rows) = rows {
            dataset.insert(
                "profile".into(),
                json!(json!({"num_rows": rows}).to_string()),
            );
        }
        inputs.push(input(table, context, dataset));
    }
    // Raw inputs: a file on its own; a table's files (`tables.NAME/FILE`) as one dataset.
    let mut groups: BTreeMap<&str, Vec<&kiln_core::manifest::InputRecord>> = BTreeMap::new();
    for record in &manifest.inputs {
        let name = record.name.split('/').next().unwrap_or(&record.name);
        groups.entry(name).or_default().push(record);
    }
    for (name, records) in groups {
        let (uri, sha256) = match records.as_slice() {
            [one] if one.name == name => (one.uri.clone(), one.hash.sha256.clone()),
            _ => {
                let listing: String = records
                    .iter()
                    .map(|r| format!("{} {}\n", r.name, r.hash.sha256))
                    .collect();
                let first = &records[0];
                let rel = first.name.strip_prefix(name).unwrap_or("");
                let folder = first
                    .uri
                    .strip_suffix(rel.trim_start_matches('/'))
                    .unwrap_or(&first.uri);
                (folder.to_string(), sha256_hex(listing.as_bytes()))
            }
        };
        let mut dataset = serde_json::Map::new();
        dataset.insert("digest".into(), json!(digest(&sha256)));
        dataset.insert("source_type".into(), json!(source_type(&uri)));
        dataset.insert(
            "source".into(),
            json!(json!({"uri": uri, "sha256": sha256, "files": records.len()}).to_string()),
        );
        inputs.push(input(name, "source", dataset));
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, uri: &str, sha: char) -> Value {
        json!({"name": name, "uri": uri, "sha256": sha.to_string().repeat(64), "size": 10})
    }

    #[tokio::test]
    async fn a_folder_table_is_one_dataset_whose_digest_covers_its_files() {
        let manifest = |second_file_sha: char| -> StepManifest {
            serde_json::from_value(json!({
                "step": "prepare", "status": "succeeded", "tool_version": "0",
                "spec_fingerprint": "f",
                "started_at": "2026-12-07T00:00:00Z", "finished_at": "2026-12-07T00:00:01Z",
                "inputs": [
                    record("tables.customers", "s3://b/c.parquet", 'a'),
                    record("tables.events/month=1/part-0.parquet", "s3://b/ev/month=1/part-0.parquet", 'b'),
                    record("tables.events/month=2/part-0.parquet", "s3://b/ev/month=2/part-0.parquet", second_file_sha),
                    record("source[0]", "data/adult.data", 'd'),
                ],
                "outputs": [],
            }))
            .unwrap()
        };
        let dir = ArtifactStore::open("memory://datasets-test/run/prepare").unwrap();
        let datasets = prepare_datasets(&dir, &manifest('c')).await.unwrap();
        let by_name = |name: &str| {
            datasets
                .iter()
                .find(|d| d["dataset"]["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {datasets:?}"))
                .clone()
        };
        assert_eq!(datasets.len(), 3, "{datasets:?}");
        let customers = by_name("tables.customers");
        assert_eq!(customers["dataset"]["digest"], "a".repeat(32));
        assert_eq!(customers["dataset"]["source_type"], "s3");
        assert_eq!(customers["tags"][0]["value"], "source");
        let events = by_name("tables.events");
        let source: Value =
            serde_json::from_str(events["dataset"]["source"].as_str().unwrap()).unwrap();
        assert_eq!(source["uri"], "s3://b/ev/");
        assert_eq!(source["files"], 2);
        assert_eq!(by_name("source[0]")["dataset"]["source_type"], "local");
        // One changed file changes the table's digest, and nothing else's.
        let changed = prepare_datasets(&dir, &manifest('e')).await.unwrap();
        let digest = |all: &[Value], name: &str| {
            all.iter().find(|d| d["dataset"]["name"] == name).unwrap()["dataset"]["digest"].clone()
        };
        assert_ne!(
            digest(&datasets, "tables.events"),
            digest(&changed, "tables.events")
        );
        assert_eq!(
            digest(&datasets, "tables.customers"),
            digest(&changed, "tables.customers")
        );
        assert_eq!(
            digest(&changed, "tables.events").as_str().unwrap().len(),
            32
        );
    }
}
