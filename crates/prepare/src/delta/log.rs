//! Reading a Delta table's log: the commits `_delta_log/<version, 20 digits>.json`
//! (one JSON action per line) replayed up to a version give that version's data files
//! and metadata. What this reader does not support it refuses by name: deletion vectors
//! and other reader features, column mapping, partitioned tables, and a log whose early
//! commits were cleaned up behind a checkpoint.

use std::collections::BTreeMap;

use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The log folder.
pub const LOG: &str = "_delta_log";

/// A commit file's name.
pub fn commit_file(version: u64) -> String {
    format!("{LOG}/{version:020}.json")
}

/// One line of a commit.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_info: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Add>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Remove>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: u32,
    pub min_writer_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Format {
    pub provider: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub format: Format,
    pub schema_string: String,
    #[serde(default)]
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub configuration: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    pub path: String,
    #[serde(default)]
    pub partition_values: BTreeMap<String, Option<String>>,
    pub size: u64,
    pub modification_time: i64,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_vector: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
}

/// One data file of a version.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative to the table's folder, decoded.
    pub path: String,
    pub size: u64,
}

/// A version of a table: its data files (sorted by path) and its metadata.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub files: Vec<DataFile>,
    pub metadata: Metadata,
    pub protocol: Protocol,
}

/// The versions whose commits are in the log, ascending.
pub async fn versions(table: &ArtifactStore) -> Result<Vec<u64>> {
    let mut versions: Vec<u64> = table
        .list(LOG)
        .await?
        .iter()
        .filter_map(|name| {
            let file = name.rsplit('/').next()?;
            let digits = file.strip_suffix(".json")?;
            (digits.len() == 20).then(|| digits.parse().ok())?
        })
        .collect();
    versions.sort_unstable();
    Ok(versions)
}

/// Reader features this reader handles (they change nothing in how files are read).
const KNOWN_READER_FEATURES: &[&str] = &["timestampNtz", "vacuumProtocolCheck", "v2Checkpoint"];

/// The table as of `version` (default: the latest).
pub async fn snapshot(table: &ArtifactStore, version: Option<u64>) -> Result<Snapshot> {
    let uri = table.uri();
    let versions = versions(table).await?;
    let Some(&latest) = versions.last() else {
        return Err(Error::usage(format!(
            "{uri}: not a Delta table (no commits under {LOG}/)"
        )));
    };
    let target = version.unwrap_or(latest);
    if target > latest {
        return Err(Error::usage(format!(
            "{uri}: the Delta table has no version {target} (its latest is {latest})"
        )));
    }
    if !versions
        .iter()
        .take(target as usize + 1)
        .copied()
        .eq(0..=target)
    {
        return Err(Error::usage(format!(
            "{uri}: the Delta log does not start at version 0 (older commits were cleaned up behind a checkpoint); reading checkpoints is not supported"
        )));
    }
    let mut files: BTreeMap<String, DataFile> = BTreeMap::new();
    let mut metadata = None;
    let mut protocol = None;
    for v in 0..=target {
        let name = commit_file(v);
        let bytes = table.get(&name).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8 text", table.uri_of(&name))))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let action: Action = serde_json::from_str(line).map_err(|e| Error::Data {
                file: table.uri_of(&name),
                line: i as u64 + 1,
                message: format!("not a Delta action: {e}"),
            })?;
            if let Some(p) = action.protocol {
                protocol = Some(p);
            }
            if let Some(m) = action.meta_data {
                metadata = Some(m);
            }
            if let Some(add) = action.add {
                if add.deletion_vector.is_some() {
                    return Err(Error::usage(format!(
                        "{uri}: version {v} has deletion vectors, which this reader does not support"
                    )));
                }
                let path = decode_path(&add.path)
                    .ok_or_else(|| Error::usage(format!("{uri}: bad file path {:?}", add.path)))?;
                files.insert(
                    path.clone(),
                    DataFile {
                        path,
                        size: add.size,
                    },
                );
            }
            if let Some(remove) = action.remove
                && let Some(path) = decode_path(&remove.path)
            {
                files.remove(&path);
            }
        }
    }
    let protocol = protocol.ok_or_else(|| Error::usage(format!("{uri}: no protocol action")))?;
    let metadata = metadata.ok_or_else(|| Error::usage(format!("{uri}: no metaData action")))?;
    check_readable(uri, &protocol, &metadata)?;
    Ok(Snapshot {
        version: target,
        files: files.into_values().collect(),
        metadata,
        protocol,
    })
}

fn check_readable(uri: &str, protocol: &Protocol, metadata: &Metadata) -> Result<()> {
    let refuse = |what: String| Err(Error::usage(format!("{uri}: {what}")));
    if protocol.min_reader_version > 3 {
        return refuse(format!(
            "reader version {} is newer than this reader (3)",
            protocol.min_reader_version
        ));
    }
    if let Some(feature) = protocol
        .reader_features
        .iter()
        .flatten()
        .find(|f| !KNOWN_READER_FEATURES.contains(&f.as_str()))
    {
        return refuse(format!(
            "the table needs the reader feature `{feature}`, which this reader does not support"
        ));
    }
    let mapping = metadata
        .configuration
        .get("delta.columnMapping.mode")
        .cloned()
        .flatten();
    if mapping.as_deref().is_some_and(|m| m != "none") {
        return refuse("column mapping is not supported".into());
    }
    if metadata.format.provider != "parquet" {
        return refuse(format!(
            "data files in `{}`, not Parquet",
            metadata.format.provider
        ));
    }
    if !metadata.partition_columns.is_empty() {
        return refuse(format!(
            "partitioned Delta tables (by {}) are not supported yet",
            metadata.partition_columns.join(", ")
        ));
    }
    Ok(())
}

/// A relative path from an action (percent-encoded); `None` for an absolute URI or a
/// path that leaves the table's folder.
fn decode_path(encoded: &str) -> Option<String> {
    if encoded.contains("://") || encoded.starts_with('/') {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    (!path.split('/').any(|part| part == "..")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded_and_kept_inside_the_table() {
        assert_eq!(
            decode_path("part-0.parquet").as_deref(),
            Some("part-0.parquet")
        );
        assert_eq!(
            decode_path("day=2024-01-01%2000%3A00/p.parquet").as_deref(),
            Some("day=2024-01-01 00:00/p.parquet")
        );
        assert_eq!(decode_path("s3://other/p.parquet"), None);
        assert_eq!(decode_path("../p.parquet"), None);
        assert_eq!(decode_path("bad%zz"), None);
    }
}
