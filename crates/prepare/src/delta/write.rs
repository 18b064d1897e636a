//! Writing a Parquet table as a new version of a Delta table (an overwrite: the new
//! version holds exactly the given rows). The data file is written first; the commit
//! `_delta_log/<version>.json` is then created only if no other writer took that
//! version (put-if-absent: a local link, S3's `If-None-Match`), else the log is read
//! again and the next version tried. Readers see a version whole or not at all.

use futures::TryStreamExt;
use kiln_core::parquet_io::{ParquetSink, read_parquet};
use kiln_core::store::{ArtifactStore, ObjectRef};
use kiln_core::{Error, Result};

use super::log::{self, Action, Add, Format, Metadata, Protocol, Remove};
use super::schema;

/// How many times a commit is retried when other writers take its version.
const COMMIT_ATTEMPTS: usize = 10;

/// What a write made.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub version: u64,
    pub rows: u64,
    /// The data file's path in the table, and its sha256.
    pub file: String,
    pub sha256: String,
}

/// Writes the rows of `source` (a Parquet file) as the next version of the Delta table
/// at `table_uri`, creating the table if there is none.
pub async fn overwrite(table_uri: &str, source: &ObjectRef) -> Result<Written> {
    let table = ArtifactStore::open(table_uri)?;
    let (arrow_schema, mut batches) = read_parquet(source, 65_536).await?;
    let schema_string = schema::to_delta(&arrow_schema)
        .map_err(|e| Error::usage(format!("data.delta_output {table_uri}: {e}")))?;
    let now = chrono::Utc::now().timestamp_millis();
    let unique = kiln_core::uuid::from_name(&format!(
        "{table_uri}/{now}/{}/{}",
        std::process::id(),
        source.uri()
    ));
    let file = format!("part-00000-{unique}-c000.snappy.parquet");
    let mut sink = ParquetSink::create(&table.object(&file), arrow_schema)?;
    let copied = async {
        while let Some(batch) = batches.try_next().await? {
            sink.write(&batch).await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = copied {
        sink.abort().await;
        return Err(e);
    }
    let data = sink.finish().await?;
    let add = Add {
        path: file.clone(),
        partition_values: Default::default(),
        size: data.hash.size,
        modification_time: now,
        data_change: true,
        stats: Some(format!("{{\"numRecords\":{}}}", data.rows)),
        deletion_vector: None,
    };
    for _ in 0..COMMIT_ATTEMPTS {
        let latest = log::versions(&table).await?.last().copied();
        let mut actions = vec![Action {
            commit_info: Some(serde_json::json!({
                "timestamp": now,
                "operation": "WRITE",
                "operationParameters": {"mode": if latest.is_some() { "Overwrite" } else { "ErrorIfExists" }},
                "clientVersion": format!("kiln-{}", kiln_core::manifest::TOOL_VERSION),
            })),
            ..Default::default()
        }];
        let version = match latest {
            None => {
                actions.push(Action {
                    protocol: Some(Protocol {
                        min_reader_version: 1,
                        min_writer_version: 2,
                        reader_features: None,
                        writer_features: None,
                    }),
                    ..Default::default()
                });
                actions.push(Action {
                    meta_data: Some(metadata(&unique, &schema_string, now)),
                    ..Default::default()
                });
                0
            }
            Some(latest) => {
                let current = log::snapshot(&table, Some(latest)).await?;
                if current.metadata.schema_string != schema_string {
                    // An overwrite may change the schema: the new metadata says so.
                    let mut changed = current.metadata.clone();
                    changed.schema_string = schema_string.clone();
                    actions.push(Action {
                        meta_data: Some(changed),
                        ..Default::default()
                    });
                }
                for old in &current.files {
                    actions.push(Action {
                        remove: Some(Remove {
                            path: old.path.clone(),
                            deletion_timestamp: Some(now),
                            data_change: true,
                        }),
                        ..Default::default()
                    });
                }
                latest + 1
            }
        };
        actions.push(Action {
            add: Some(add.clone()),
            ..Default::default()
        });
        let mut text = String::new();
        for action in &actions {
            text.push_str(
                &serde_json::to_string(action).map_err(|e| Error::Invalid(e.to_string()))?,
            );
            text.push('\n');
        }
        if table
            .create(&log::commit_file(version), text.into_bytes().into())
            .await?
        {
            return Ok(Written {
                version,
                rows: data.rows,
                file,
                sha256: data.hash.sha256,
            });
        }
        tracing::info!(
            table = table_uri,
            version,
            "another writer committed this version first; retrying on the next"
        );
    }
    Err(Error::Unreachable {
        uri: table_uri.to_string(),
        message: format!("{COMMIT_ATTEMPTS} commits in a row lost to other writers; try again"),
    })
}

fn metadata(id: &str, schema_string: &str, now: i64) -> Metadata {
    Metadata {
        id: id.to_string(),
        name: None,
        description: None,
        format: Format {
            provider: "parquet".into(),
            options: Default::default(),
        },
        schema_string: schema_string.to_string(),
        partition_columns: Vec::new(),
        configuration: Default::default(),
        created_time: Some(now),
    }
}
