//! `data.tables` + `data.query`: the modelling table built by one SQL query over
//! several tables (files, folders of files, hive-partitioned folders; local, S3 or
//! memory through Kiln's one object store), run by DataFusion under a memory pool that
//! spills sorts, aggregations and windows to disk.
//!
//! The result streams out as typed batches of the spec's schema, so row filters, the
//! split and the transform apply to it exactly as they do to a file.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext, ident,
};
use futures::{StreamExt, stream::BoxStream};
use kiln_core::context::StepContext;
use kiln_core::csv_source::TypedBatch;
use kiln_core::error::Context;
use kiln_core::manifest::InputRecord;
use kiln_core::spec::{DataFormat, LoadedSpec, TableSpec};
use kiln_core::store::{ArtifactStore, ObjectRef};
use kiln_core::table::{conform_batch, raw_schema};
use kiln_core::{Error, Result};

use crate::delta;

/// What the query's rows are called in messages (`data.query:12: ...`).
pub const QUERY_SOURCE: &str = "data.query";

/// Where a table's files are, as DataFusion addresses them.
struct TableLocation {
    /// `file:///abs/path`, `s3://bucket/key`, `memory://name/key`; ends with `/` for a folder.
    url: String,
    /// The URL of the store's root, under which the store is registered.
    root: String,
    object: ObjectRef,
    folder: bool,
    format: DataFormat,
}

fn locate(loaded: &LoadedSpec, table: &TableSpec) -> Result<TableLocation> {
    let uri = loaded.resolve(&table.uri);
    let object = ObjectRef::parse(&uri)?;
    let (mut url, root) = object.urls();
    let format = table.format_or(loaded.spec.data.format);
    let folder = format == DataFormat::Delta
        || uri.ends_with('/')
        || (root == "file://" && std::path::Path::new(url.trim_start_matches("file://")).is_dir());
    if folder && !url.ends_with('/') {
        url.push('/');
    }
    Ok(TableLocation {
        url,
        root,
        object,
        folder,
        format,
    })
}

/// The files each table reads, hashed, for the manifest and the cache key: a file's
/// own hash, or every file of a folder that the query reads (the format's extension).
pub async fn table_inputs(ctx: &StepContext) -> Result<Vec<InputRecord>> {
    let loaded = &ctx.spec;
    let mut inputs = Vec::new();
    for (name, table) in &loaded.spec.data.tables {
        let location = locate(loaded, table)?;
        if location.format == DataFormat::Delta {
            inputs.extend(delta_inputs(ctx, name, table, &location).await?);
            continue;
        }
        if !location.folder {
            inputs.push(
                ctx.input(format!("tables.{name}"), &location.object)
                    .await?,
            );
            continue;
        }
        let folder = ArtifactStore::open(location.object.uri())?;
        let files: Vec<String> = folder
            .list("")
            .await?
            .into_iter()
            .filter(|f| f.ends_with(location.format.extension()))
            .collect();
        if files.is_empty() {
            return Err(Error::usage(format!(
                "data.tables.{name}: no {} files under {}",
                location.format.extension(),
                location.object.uri()
            )));
        }
        for file in files {
            let object = folder.object(&file);
            inputs.push(ctx.input(format!("tables.{name}/{file}"), &object).await?);
        }
    }
    Ok(inputs)
}

/// A Delta table's inputs: the commit of the version read, named `tables.<name>@<version>`
/// (which pins the version; [`delta_versions`] reads it back), then every data file of
/// that version, hashed as files are.
async fn delta_inputs(
    ctx: &StepContext,
    name: &str,
    table: &TableSpec,
    location: &TableLocation,
) -> Result<Vec<InputRecord>> {
    let store = ArtifactStore::open(location.object.uri())?;
    let snapshot = delta::snapshot(&store, table.version)
        .await
        .context(format!("data.tables.{name}"))?;
    let mut inputs = vec![
        ctx.input(
            format!("tables.{name}@{}", snapshot.version),
            &store.object(&delta::log::commit_file(snapshot.version)),
        )
        .await?,
    ];
    for file in &snapshot.files {
        let object = store.object(&file.path);
        inputs.push(
            ctx.input(format!("tables.{name}/{}", file.path), &object)
                .await?,
        );
    }
    Ok(inputs)
}

/// The Delta versions a plan pinned (`tables.<name>@<version>` inputs), by table name.
pub fn delta_versions(inputs: &[InputRecord]) -> BTreeMap<String, u64> {
    inputs
        .iter()
        .filter_map(|input| {
            let (table, version) = input.name.strip_prefix("tables.")?.rsplit_once('@')?;
            Some((table.to_string(), version.parse().ok()?))
        })
        .collect()
}

/// The memory pool's size: the limit given, else half of the machine's memory (or of
/// the container's cgroup limit, when lower).
pub fn memory_limit(given: Option<u64>) -> u64 {
    given.unwrap_or_else(|| machine_memory().map_or(2 << 30, |total| total / 2))
}

fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let total = total_kib * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    Some(cgroup.map_or(total, |limit| limit.min(total)))
}

/// A DataFusion session with a fair spilling pool of `memory_limit` bytes and spill
/// files in the OS temporary folder (`TMPDIR`), on one partition: a float `SUM` depends
/// on the order it adds in, and a parallel plan's order on thread timing, so one
/// partition is what makes the output bytes a function of the inputs (the cache's and
/// the manifests' contract). Sorts, aggregates and windows spill;
/// joins stay hash joins, whose build side (the smaller input, e.g. the entities of an
/// entity/events join) must fit the limit. Sort-merge joins would spill too, but
/// DataFusion 55's fail on a filtered outer join over non-nullable columns (the
/// point-in-time pattern), apache/datafusion#21197.
pub(crate) fn session(memory_limit: u64) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit as usize)))
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
        )
        .build_arc()
        .map_err(|e| query_error(QUERY_SOURCE, e))?;
    let config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(1)
        .set_bool("datafusion.optimizer.prefer_hash_join", true)
        // Positions in the query for planning errors (unknown column, table, type).
        .set_bool("datafusion.sql_parser.collect_spans", true);
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Registers every table and runs the query; its rows stream out conformed to the
/// spec's schema (a missing column or one that cannot be cast is an error naming it).
/// A Delta table is read at the version the plan pinned (`versions`), so the rows are
/// those the manifest names even if the table moved on since.
pub async fn open_query(
    loaded: &LoadedSpec,
    memory_limit: u64,
    versions: &BTreeMap<String, u64>,
) -> Result<BoxStream<'static, Result<TypedBatch>>> {
    let spec = &loaded.spec;
    let Some(query) = &spec.data.query else {
        return Err(Error::Invalid("open_query without data.query".into()));
    };
    let ctx = session(memory_limit)?;
    for (name, table) in &spec.data.tables {
        register(&ctx, loaded, name, table, versions.get(name).copied()).await?;
    }
    let frame = ctx
        .sql(query)
        .await
        .map_err(|e| spec_error(loaded, QUERY_SOURCE, e))?;
    let result = frame.schema().clone();
    for column in &spec.schema {
        if result.field_with_unqualified_name(&column.name).is_err() {
            let have: Vec<&str> = result.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::Spec {
                file: loaded.uri.clone(),
                message: format!(
                    "data.query: its result has no column `{}` (a schema column); it has: {}",
                    column.name,
                    have.join(", ")
                ),
            });
        }
    }
    // A total order, so that row ids, the hash split's inputs and the output bytes do
    // not depend on how the engine's threads interleaved (a join's output order does).
    let order = spec
        .schema
        .iter()
        .map(|c| ident(&c.name).sort(true, true))
        .collect();
    let frame = frame
        .sort(order)
        .map_err(|e| spec_error(loaded, QUERY_SOURCE, e))?;
    let stream = frame
        .execute_stream()
        .await
        .map_err(|e| query_error(QUERY_SOURCE, e))?;
    let columns = spec.schema.clone();
    let mut next_row = 0u64;
    Ok(stream
        .map(move |batch| {
            let batch = batch.map_err(|e| query_error(QUERY_SOURCE, e))?;
            let batch = conform_batch(&batch, &columns, QUERY_SOURCE)?;
            let lines = (next_row + 1..=next_row + batch.num_rows() as u64).collect();
            next_row += batch.num_rows() as u64;
            Ok(TypedBatch { batch, lines })
        })
        .boxed())
}

async fn register(
    ctx: &SessionContext,
    loaded: &LoadedSpec,
    name: &str,
    table: &TableSpec,
    version: Option<u64>,
) -> Result<()> {
    let location = locate(loaded, table)?;
    let root = url::Url::parse(&location.root)
        .map_err(|e| Error::usage(format!("data.tables.{name}.uri: {e}")))?;
    ctx.register_object_store(&root, location.object.parts().0);
    if location.format == DataFormat::Delta {
        return register_delta(ctx, name, &location, version.or(table.version)).await;
    }
    // A folder reads the files with the format's extension; a single file whatever its name.
    let extension = if location.folder {
        location.format.extension()
    } else {
        ""
    };
    let partitions: Vec<(String, DataType)> = table
        .partitions
        .iter()
        .map(|p| (p.clone(), DataType::Utf8))
        .collect();
    let field = format!("data.tables.{name}");
    let registered = match location.format {
        DataFormat::Parquet => {
            let options = ParquetReadOptions::default()
                .file_extension(extension)
                .table_partition_cols(partitions);
            ctx.register_parquet(name, &location.url, options).await
        }
        DataFormat::Csv => {
            let csv = &loaded.spec.data.csv;
            let schema = raw_schema(&table.schema);
            let mut options = CsvReadOptions::new()
                .has_header(csv.header)
                .delimiter(csv.delimiter as u8)
                .file_extension(extension)
                .table_partition_cols(partitions);
            options.null_regex = null_regex(&csv.null_values);
            if !table.schema.is_empty() {
                options = options.schema(&schema);
            }
            ctx.register_csv(name, &location.url, options).await
        }
        DataFormat::Delta => unreachable!("registered above"),
    };
    registered.map_err(|e| match e.find_root() {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => {
            query_error(location.object.uri(), e)
        }
        _ => spec_error(loaded, &field, e),
    })
}

/// A Delta table at a version: exactly that version's data files (not every file in
/// the folder, which holds removed ones too), with the schema its log declares.
async fn register_delta(
    ctx: &SessionContext,
    name: &str,
    location: &TableLocation,
    version: Option<u64>,
) -> Result<()> {
    let field = format!("data.tables.{name}");
    let store = ArtifactStore::open(location.object.uri())?;
    let snapshot = delta::snapshot(&store, version)
        .await
        .context(field.clone())?;
    let schema = delta::schema::to_arrow(&snapshot.metadata.schema_string)
        .map_err(|e| Error::usage(format!("{field} ({}): {e}", location.object.uri())))?;
    let schema = Arc::new(schema);
    let provider: Arc<dyn TableProvider> = if snapshot.files.is_empty() {
        Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(|e| query_error(&field, e))?)
    } else {
        let urls = snapshot
            .files
            .iter()
            .map(|file| ListingTableUrl::parse(format!("{}{}", location.url, file.path)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| query_error(&field, e))?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        Arc::new(ListingTable::try_new(config).map_err(|e| query_error(&field, e))?)
    };
    tracing::info!(
        table = name,
        version = snapshot.version,
        files = snapshot.files.len(),
        "Delta table"
    );
    ctx.register_table(name, provider)
        .map(drop)
        .map_err(|e| query_error(&field, e))
}

/// A regular expression matching exactly the CSV options' null values.
fn null_regex(values: &[String]) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let escaped: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .flat_map(|c| {
                    let special = "\\.+*?()|[]{}^$#&-~".contains(c);
                    special
                        .then_some('\\')
                        .into_iter()
                        .chain(std::iter::once(c))
                })
                .collect()
        })
        .collect();
    Some(format!("^(?:{})$", escaped.join("|")))
}

/// One line of DataFusion's message (its errors can span lines).
fn one_line(e: &DataFusionError) -> String {
    e.find_root()
        .strip_backtrace()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A query or table that cannot be planned (SQL syntax, unknown table or column, type
/// mismatch): a spec error naming the field (exit 2).
fn spec_error(loaded: &LoadedSpec, field: &str, e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => {
            // Where in the query, when DataFusion knows (sqlparser's own syntax errors
            // carry their position in the message).
            let at = e
                .diagnostic()
                .and_then(|d| d.span)
                .map(|span| format!(" (line {}, column {})", span.start.line, span.start.column))
                .unwrap_or_default();
            Error::Spec {
                file: loaded.uri.clone(),
                message: format!("{field}{at}: {}", one_line(&e)),
            }
        }
        _ => query_error(field, e),
    }
}

/// A failure while the query runs: the store's (so that an unreachable S3 is 75 and a
/// missing file 2), the memory limit's, or the data's.
pub(crate) fn query_error(what: &str, e: DataFusionError) -> Error {
    let root = e.find_root();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(root);
    while let Some(err) = source {
        if let Some(DataFusionError::ObjectStore(store)) = err.downcast_ref::<DataFusionError>() {
            return Error::from_store_ref(what, store);
        }
        source = err.source();
    }
    match root {
        DataFusionError::ResourcesExhausted(_) => Error::usage(format!(
            "{what}: the query needs more memory than --memory-limit allows and could not spill: {}",
            one_line(&e)
        )),
        DataFusionError::IoError(io) => Error::io(
            what.to_string(),
            std::io::Error::new(io.kind(), one_line(&e)),
        ),
        _ => Error::Data {
            file: what.to_string(),
            line: 0,
            message: one_line(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_values_become_an_anchored_regex() {
        assert_eq!(null_regex(&[]), None);
        let regex = null_regex(&["?".into(), "NA".into()]).unwrap();
        assert_eq!(regex, r"^(?:\?|NA)$");
    }

    #[test]
    fn the_default_memory_limit_is_half_the_machine() {
        assert_eq!(memory_limit(Some(1 << 20)), 1 << 20);
        let default = memory_limit(None);
        assert!(default >= 1 << 20, "{default}");
    }
}
