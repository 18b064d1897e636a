//! # kiln-validate
//!
//! Data quality checks that read Great Expectations suites (1.x or 0.x JSON) and run
//! them in one streaming pass over Parquet or CSV at any store URI, with GE's
//! semantics and result shape; drift and training/serving skew against prepare's
//! profile; and a suite inferred from a table (`--profile`).
//!
//! In a run, validate checks prepare's train and test tables with the spec's suite and
//! the test table's drift against the training profile, and writes
//! `<run>/validate/report.json`. A failed expectation (unless its severity is
//! `warning`) or a drifted column is exit 3, after the report is written.
//!
//! Where Kiln differs from GE's pandas engine (see `docs/validate.md`): column types
//! are the stored Arrow types (pandas turns an integer column with nulls into
//! float64); regexes use Rust's `regex` syntax (no look-around or back-references);
//! `partial_unexpected_list` of the uniqueness expectations lists duplicates by value,
//! not by row order; `row_condition` supports comparisons joined by `and`.

#[cfg(feature = "cli")]
pub mod args;
mod condition;
mod drift;
mod engine;
mod expectations;
mod infer;
mod spill;
mod suite;
mod value;

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::contracts::prepare;
use kiln_core::csv_source::{CsvRead, stream_csv};
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::output::write_stderr;
use kiln_core::parquet_io::{read_parquet, read_parquet_dictionary};
use kiln_core::spec::{ColumnSpec, ColumnType, CsvOptions, DriftSpec};
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::ObjectRef;
use kiln_core::{Error, Result};
use kiln_stats::profile::{TableProfile, TableProfiler};

pub use condition::Condition;
pub use drift::{ColumnDrift, DriftCheck, DriftMeasure, DriftReport, ks};
pub use engine::{ExceptionInfo, ExpectationResult, Statistics, ValidationResult, Validator};
pub use expectations::SUPPORTED;
pub use infer::infer_suite;
pub use suite::{ExpectationConfig, Suite};

/// The step's name and folder.
pub const STEP: &str = "validate";
/// The spec sections validate reads.
pub const SPEC_SECTIONS: &[&str] = &["validation"];
pub const REPORT: &str = "report.json";
/// Rows per batch read.
const BATCH_ROWS: usize = 65_536;
/// Bytes of a CSV file read to infer its column types.
const CSV_SAMPLE_BYTES: usize = 4 << 20;

/// A table's batches.
pub type Batches = BoxStream<'static, Result<RecordBatch>>;

/// Opens a table: Parquet, or CSV with a header (`.csv`, `.csv.gz` is not supported)
/// whose column types are inferred from its first 4 MiB as pandas would (integer,
/// float, boolean, else text; empty, `NA`, `NaN`, `null`, `None` are missing).
/// With `dictionary`, Parquet text columns come as dictionary arrays (the schema
/// still says text), which the validator checks once per distinct value.
pub async fn open_table(uri: &str, dictionary: bool) -> Result<(SchemaRef, Batches)> {
    let object = ObjectRef::parse(uri)?;
    if !uri.to_ascii_lowercase().ends_with(".csv") {
        return if dictionary {
            read_parquet_dictionary(&object, BATCH_ROWS).await
        } else {
            read_parquet(&object, BATCH_ROWS).await
        };
    }
    let columns = infer_csv_columns(&object).await?;
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, kiln_core::table::arrow_type(c.dtype), true))
            .collect::<Vec<_>>(),
    ));
    let read = CsvRead {
        options: csv_options(),
        skip_lines: 0,
        columns,
        batch_rows: BATCH_ROWS,
    };
    let stream = stream_csv(&object, read)
        .await?
        .map_ok(|typed| typed.batch)
        .boxed();
    Ok((schema, stream))
}

fn csv_options() -> CsvOptions {
    CsvOptions {
        header: true,
        trim: false,
        null_values: [
            "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "<NA>", "#N/A",
        ]
        .map(String::from)
        .to_vec(),
        ..CsvOptions::default()
    }
}

async fn infer_csv_columns(object: &ObjectRef) -> Result<Vec<ColumnSpec>> {
    let mut stream = object.stream().await?;
    let mut sample = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        sample.extend_from_slice(&chunk);
        if sample.len() >= CSV_SAMPLE_BYTES {
            break;
        }
    }
    let complete = sample.len() < CSV_SAMPLE_BYTES;
    // Only whole lines: drop a partial last line of a truncated sample.
    if !complete && let Some(end) = sample.iter().rposition(|&b| b == b'\n') {
        sample.truncate(end + 1);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(sample.as_slice());
    let uri = object.uri();
    let headers = reader
        .headers()
        .map_err(|e| Error::usage(format!("{uri}: cannot read the CSV header: {e}")))?
        .clone();
    if headers.is_empty() {
        return Err(Error::usage(format!(
            "{uri}: empty CSV file (a header line is needed)"
        )));
    }
    let nulls = csv_options().null_values;
    let mut kinds = vec![[true; 3]; headers.len()]; // [int, float, bool] still possible
    for record in reader.records() {
        let record = record.map_err(|e| Error::usage(format!("{uri}: {e}")))?;
        for (i, field) in record.iter().enumerate().take(headers.len()) {
            if field.is_empty() || nulls.iter().any(|n| n == field) {
                continue;
            }
            let k = &mut kinds[i];
            k[0] &= field.parse::<i64>().is_ok();
            k[1] &= field.parse::<f64>().is_ok();
            k[2] &= matches!(field, "True" | "False" | "true" | "false");
        }
    }
    Ok(headers
        .iter()
        .zip(kinds)
        .map(|(name, k)| ColumnSpec {
            name: name.to_string(),
            dtype: match k {
                [true, _, _] => ColumnType::Int,
                [_, true, _] => ColumnType::Float,
                [_, _, true] => ColumnType::Bool,
                _ => ColumnType::String,
            },
            nullable: true,
        })
        .collect())
}

/// Reads and parses a suite from any store URI.
pub async fn load_suite(uri: &str) -> Result<Suite> {
    let bytes = ObjectRef::parse(uri)?.get().await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::usage(format!("suite {uri}: not UTF-8 text")))?;
    Suite::parse(text, uri)
}

/// Validates a table with a suite, and optionally its drift against a reference
/// profile, in one pass. The checks are CPU work: they run on the blocking pool, fed
/// through a bounded queue of two batches while this task decodes the next ones.
pub async fn validate_table(
    suite: &Suite,
    suite_uri: &str,
    data_uri: &str,
    allow_unknown: bool,
    reference: Option<(TableProfile, &str, &DriftSpec)>,
) -> Result<(ValidationResult, Option<DriftReport>)> {
    let (schema, mut batches) = open_table(data_uri, true).await?;
    let mut validator = Validator::new(suite, suite_uri, schema.clone(), allow_unknown)?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut drift = match &reference {
        Some((profile, uri, spec)) => Some((
            DriftCheck::new(profile.clone(), &names, spec)?,
            uri.to_string(),
        )),
        None => None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let data = data_uri.to_string();
    let checks = tokio::task::spawn_blocking(move || {
        while let Some(batch) = rx.blocking_recv() {
            validator.update(&batch)?;
            if let Some((d, _)) = &mut drift {
                d.update(&batch)?;
            }
        }
        let result = validator.finish(&data);
        let drift = drift.map(|(d, uri)| d.finish(&uri, &data));
        Ok::<_, Error>((result, drift))
    });
    let read = async {
        while let Some(batch) = batches.try_next().await? {
            if tx.send(batch).await.is_err() {
                break; // the checks stopped on an error, reported below
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    drop(tx);
    let checked = checks
        .await
        .map_err(|e| Error::Invalid(format!("the validation thread failed: {e}")))?;
    read?;
    checked
}

/// Profiles a table and infers a starting suite for it.
pub async fn profile_table(data_uri: &str, name: &str) -> Result<Suite> {
    let (schema, mut batches) = open_table(data_uri, false).await?;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut profiler = TableProfiler::new(&schema, &names);
    while let Some(batch) = batches.try_next().await? {
        profiler.update(&batch)?;
    }
    Ok(infer_suite(name, &schema, &profiler.finish()))
}

/// Reads a reference profile: prepare's `profile.json` (its `train` profile) or a
/// single table profile.
pub async fn load_reference(uri: &str) -> Result<TableProfile> {
    kiln_stats::profile::read_reference(&ObjectRef::parse(uri)?).await
}

pub use kiln_core::contracts::validate::ValidateReport;

/// The step with its cache key: the prepared tables, the profile, the suite file and
/// the `validation` section.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let prepare = ctx.completed_step("prepare", STEP).await?;
    let (_, suite_uri) = validation(ctx)?;
    let mut inputs = Vec::new();
    for file in [prepare::TRAIN, prepare::TEST, prepare::PROFILE] {
        inputs.push(
            ctx.input(format!("prepare/{file}"), &prepare.object(file))
                .await?,
        );
    }
    inputs.push(
        ctx.input(suite_uri.clone(), &ObjectRef::parse(&suite_uri)?)
            .await?,
    );
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The spec's `validation` section and the suite's URI.
fn validation(ctx: &StepContext) -> Result<(&kiln_core::spec::ValidationSpec, String)> {
    let validation = ctx.spec.spec.validation.as_ref().ok_or_else(|| {
        Error::usage(format!(
            "spec {}: no `validation.suite`: validate needs an expectation suite",
            ctx.spec.uri
        ))
    })?;
    Ok((validation, ctx.spec.resolve(&validation.suite)))
}

/// The validate step, for the driver. A spec without `validation.suite` skips it.
pub struct Validate;

impl PipelineStep for Validate {
    fn name(&self) -> &'static str {
        STEP
    }

    fn skipped(&self, spec: &kiln_core::PipelineSpec) -> Option<&'static str> {
        spec.validation.is_none().then_some("no suite")
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
        Box::pin(step.run(move |writer| validate(ctx, writer)))
    }

    fn gate<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(gate(ctx))
    }

    fn tracked<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(async { Ok(kiln_core::tracked::Tracked::report::<ValidateReport>()) })
    }
}

/// The gate: the committed report passed (a failure is [`Error::Gate`], the report
/// written either way).
async fn gate(ctx: &StepContext) -> Result<()> {
    kiln_core::driver::verdict_gate::<ValidateReport>(ctx, "data quality check(s) failed").await
}

async fn validate(
    ctx: &StepContext,
    writer: StepWriter,
) -> Result<(StepWriter, serde_json::Value)> {
    let (validation, suite_uri) = validation(ctx)?;
    let suite = load_suite(&suite_uri).await?;
    let prepare = ctx.run.child(prepare::STEP);
    let train_uri = prepare.uri_of(prepare::TRAIN);
    let test_uri = prepare.uri_of(prepare::TEST);
    let profile_uri = prepare.uri_of(prepare::PROFILE);
    let (train, _) = validate_table(
        &suite,
        &suite_uri,
        &train_uri,
        validation.allow_unknown,
        None,
    )
    .await?;
    let reference = load_reference(&profile_uri).await?;
    let (test, drift) = validate_table(
        &suite,
        &suite_uri,
        &test_uri,
        validation.allow_unknown,
        Some((reference, profile_uri.as_str(), &validation.drift)),
    )
    .await?;
    let mut report = ValidateReport {
        format_version: <ValidateReport as kiln_core::contracts::Artifact>::FORMAT_VERSION,
        passed: false,
        suite: suite.name.clone(),
        train,
        test,
        drift,
    };
    report.passed = report.failures().is_empty();
    writer.put_json(REPORT, &report).await?;
    let mut table = report.train.table("train");
    table.push_str(&report.test.table("test"));
    if let Some(d) = &report.drift {
        table.push_str(&d.table());
    }
    write_stderr(&table)?;
    tracing::info!(
        passed = report.passed,
        train_success_percent = report.train.statistics.success_percent,
        test_success_percent = report.test.statistics.success_percent,
        drifted = report.drift.as_ref().map_or(0, |d| d.drifted().len()),
        "validated"
    );
    let summary = serde_json::json!({
        "passed": report.passed,
        "train_success_percent": report.train.statistics.success_percent,
        "test_success_percent": report.test.statistics.success_percent,
        "drifted_columns": report.drift.as_ref().map(|d| d.drifted().iter().map(|c| c.column.clone()).collect::<Vec<_>>()),
    });
    Ok((writer, summary))
}
