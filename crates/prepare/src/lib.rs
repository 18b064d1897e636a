//! # kiln-prepare
//!
//! The first step of a Kiln pipeline. It reads raw CSV or Parquet from any store URI
//! (or runs `data.query`, SQL over several named tables, on DataFusion),
//! enforces the spec's typed schema, applies row filters, maps the label to 0/1,
//! splits rows into train and test, and writes under `<run>/prepare/`:
//!
//! | file | what |
//! | --- | --- |
//! | `train.parquet`, `test.parquet` | typed columns under their original names, label 0/1, `row_id`, `event_timestamp` |
//! | `transform.json` | the feature transform fitted on train ([`kiln_features`]) |
//! | `profile.json` | per-column statistics of both splits, the reference for drift |
//! | `features.parquet` | with `transform.lookup`: each entity key's latest looked-up columns, the model server's feature table |
//! | `manifest.json` | inputs and outputs with sha256, spec fingerprint, version; written last |
//!
//! Everything streams: memory depends on the batch size and the number of distinct
//! values, not on the row count. A query's joins, sorts and aggregates hold at most the
//! memory limit (`--memory-limit`) and spill the rest to disk.

pub mod delta;
mod query;
pub mod reproduce;
mod rows;
mod snapshot;

use chrono::Utc;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use kiln_core::context::StepContext;
use kiln_core::csv_source::{CsvRead, TypedBatch, stream_csv};
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::error::Context;
use kiln_core::parquet_io::{ParquetSink, read_parquet};
use kiln_core::progress::Progress;
use kiln_core::spec::{DataFormat, EventTimeSpec, PipelineSpec, SourceSpec, SplitRole};
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::ObjectRef;
use kiln_core::table::{ROW_ID, conform_batch};
use kiln_core::{Error, Result};
use kiln_features::TransformFitter;
use kiln_stats::profile::{TableProfile, TableProfiler};
use serde::{Deserialize, Serialize};

pub use rows::output_schema;

/// The step's name and folder.
pub const STEP: &str = "prepare";
/// The spec sections prepare reads; a change to any of them reruns it.
pub const SPEC_SECTIONS: &[&str] = &[
    "data",
    "schema",
    "label",
    "sensitive",
    "filters",
    "split",
    "transform",
    "event_time",
];
/// Output file names (kiln_core::contracts::prepare, where the other steps read them).
pub use kiln_core::contracts::prepare::{FEATURES, PROFILE, TEST, TRAIN, TRANSFORM};

const BATCH_ROWS: usize = 8192;

pub use kiln_stats::profile::SplitProfiles;

/// Row counts and label balance, kept in the manifest's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareSummary {
    pub train_rows: u64,
    pub test_rows: u64,
    pub train_positive_share: f64,
    pub test_positive_share: f64,
    pub filtered_out: u64,
    pub features: usize,
}

/// The step with its cache key: every source's sha256 and the spec sections above.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let mut inputs = query::table_inputs(ctx).await?;
    for (i, source) in ctx.spec.spec.data.sources.iter().enumerate() {
        let object = ObjectRef::parse(&ctx.spec.resolve(&source.uri))?;
        inputs.push(ctx.input(format!("source[{i}]"), &object).await?);
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The prepare step, for the driver.
pub struct Prepare;

impl PipelineStep for Prepare {
    fn name(&self) -> &'static str {
        STEP
    }

    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(plan(ctx))
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        _control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        // A Delta table is read at the version the plan pinned in the cache key.
        let versions = query::delta_versions(&step.key.inputs);
        Box::pin(step.run(move |writer| prepare(ctx, writer, versions)))
    }

    fn tracked<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        // Prepare's tables and raw inputs are the run's datasets.
        Box::pin(async {
            Ok(kiln_core::tracked::Tracked {
                datasets: true,
                ..Default::default()
            })
        })
    }
}

async fn prepare(
    ctx: &StepContext,
    writer: StepWriter,
    versions: std::collections::BTreeMap<String, u64>,
) -> Result<(StepWriter, serde_json::Value)> {
    let spec = &ctx.spec.spec;
    let fixed_time = match &spec.event_time {
        EventTimeSpec::IngestTime => Some(Utc::now().timestamp_micros()),
        EventTimeSpec::Fixed(text) => {
            kiln_core::table::parse_timestamp(text).map(|t| t.timestamp_micros())
        }
        EventTimeSpec::Column(_) => None,
    };
    let mut processor = rows::RowProcessor::new(spec, fixed_time);
    let schema = processor.schema();
    let profiled: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| *name != ROW_ID)
        .collect();
    let mut train_profile = TableProfiler::new(&schema, &profiled);
    let mut test_profile = TableProfiler::new(&schema, &profiled);
    let mut train_sink = ParquetSink::create(&writer.object(TRAIN), schema.clone())?;
    let mut test_sink = ParquetSink::create(&writer.object(TEST), schema.clone())?;

    let bar = Progress::start(None, "prepare");
    // The rows: the query's result, or each source file in turn.
    let mut inputs = Vec::new();
    if spec.data.query.is_some() {
        inputs.push((query::QUERY_SOURCE.to_string(), None, None));
    }
    for source in &spec.data.sources {
        inputs.push((ctx.spec.resolve(&source.uri), Some(source), source.split));
    }
    let mut result = Ok(());
    for (uri, source, role) in &inputs {
        result = async {
            let mut batches = match source {
                Some(source) => open_source(spec, source, uri).await?,
                None => {
                    query::open_query(&ctx.spec, query::memory_limit(ctx.memory_limit), &versions)
                        .await?
                }
            };
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                bar.inc(batch.batch.num_rows() as u64);
                let split = processor.process(batch, uri, *role)?;
                train_profile.update(&split.train)?;
                test_profile.update(&split.test)?;
                train_sink.write(&split.train).await?;
                test_sink.write(&split.test).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if result.is_err() {
            break;
        }
    }
    bar.finish();
    if let Err(e) = result {
        train_sink.abort().await;
        test_sink.abort().await;
        return Err(e);
    }
    let train = train_sink.finish().await?;
    let test = test_sink.finish().await?;
    writer.record(TRAIN, train.hash);
    writer.record(TEST, test.hash);
    if train.rows == 0 {
        return Err(Error::usage(format!(
            "prepare: the train split is empty ({} rows filtered out); check data.sources, filters and split",
            processor.filtered_out
        )));
    }

    // Second pass over the staged train split: fit the transform.
    let mut fitter = TransformFitter::new(&spec.transform, &spec.table_columns(), &train_profile)?;
    let (_, mut batches) = read_parquet(&writer.object(TRAIN), BATCH_ROWS).await?;
    while let Some(batch) = batches.try_next().await? {
        fitter.update(&batch)?;
    }
    let transform = fitter.finish()?;
    writer.put_json(TRANSFORM, &transform).await?;

    let profiles = SplitProfiles {
        train: train_profile.finish(),
        test: test_profile.finish(),
    };
    writer.put_json(PROFILE, &profiles).await?;
    if let Some(lookup) = &spec.transform.lookup {
        let table =
            snapshot::write_feature_table(&writer, lookup, query::memory_limit(ctx.memory_limit))
                .await?;
        tracing::info!(keys = table.rows, "feature table written");
        writer.record(FEATURES, table.hash);
    }

    // The tables as new versions of Delta tables, after everything else succeeded.
    let mut delta_versions = serde_json::Map::new();
    if let Some(uri) = &spec.data.delta_output {
        let root = ctx.spec.resolve(uri);
        for (name, file) in [("train", TRAIN), ("test", TEST)] {
            let table = format!("{}/{name}", root.trim_end_matches('/'));
            let written = delta::overwrite(&table, &writer.object(file))
                .await
                .context(format!("data.delta_output: {table}"))?;
            tracing::info!(
                table,
                version = written.version,
                rows = written.rows,
                "Delta version written"
            );
            delta_versions.insert(
                name.to_string(),
                serde_json::json!({"uri": table, "version": written.version, "file": written.file, "sha256": written.sha256}),
            );
        }
    }

    let positive_share = |profile: &TableProfile| {
        profile
            .column(&spec.label.column)
            .and_then(|c| match &c.stats {
                kiln_stats::profile::ColumnStats::Numeric { mean, .. } => *mean,
                _ => None,
            })
            .unwrap_or(0.0)
    };
    let summary = PrepareSummary {
        train_rows: train.rows,
        test_rows: test.rows,
        train_positive_share: positive_share(&profiles.train),
        test_positive_share: positive_share(&profiles.test),
        filtered_out: processor.filtered_out,
        features: transform.width(),
    };
    tracing::info!(
        train_rows = summary.train_rows,
        test_rows = summary.test_rows,
        train_positive = format!("{:.2}%", 100.0 * summary.train_positive_share),
        test_positive = format!("{:.2}%", 100.0 * summary.test_positive_share),
        filtered_out = summary.filtered_out,
        features = summary.features,
        "prepared"
    );
    let mut summary = serde_json::to_value(&summary).map_err(|e| Error::Invalid(e.to_string()))?;
    if !delta_versions.is_empty() {
        summary["delta"] = serde_json::Value::Object(delta_versions);
    }
    Ok((writer, summary))
}

/// Streams a source as typed batches, CSV or Parquet.
async fn open_source(
    spec: &PipelineSpec,
    source: &SourceSpec,
    uri: &str,
) -> Result<BoxStream<'static, Result<TypedBatch>>> {
    let object = ObjectRef::parse(uri)?;
    match spec.data.format {
        DataFormat::Csv => {
            let read = CsvRead {
                options: spec.data.csv.clone(),
                skip_lines: source.skip_lines,
                columns: spec.schema.clone(),
                batch_rows: BATCH_ROWS,
            };
            stream_csv(&object, read).await
        }
        DataFormat::Delta => Err(Error::usage(format!(
            "{uri}: a Delta table is read through data.tables and data.query"
        ))),
        DataFormat::Parquet => {
            let (_, batches) = read_parquet(&object, BATCH_ROWS).await?;
            let columns = spec.schema.clone();
            let file = uri.to_string();
            let mut next_row = source.skip_lines;
            Ok(batches
                .map(move |batch| {
                    let batch = conform_batch(&batch?, &columns, &file)?;
                    let lines = (next_row + 1..=next_row + batch.num_rows() as u64).collect();
                    next_row += batch.num_rows() as u64;
                    Ok(TypedBatch { batch, lines })
                })
                .boxed())
        }
    }
}

/// Which split a source feeds, for messages.
pub fn role_name(role: Option<SplitRole>) -> &'static str {
    role.map_or("hash split", SplitRole::as_str)
}
