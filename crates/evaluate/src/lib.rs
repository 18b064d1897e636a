//! # kiln-evaluate
//!
//! Scores prepare's test table with train's model bundle, through the bundle's own
//! transform, and writes under `<run>/evaluate/`:
//!
//! | file | what |
//! | --- | --- |
//! | `predictions.parquet` | `row_id`, the label (0/1), `score`, `predicted`, and the spec's sensitive columns |
//! | `plots/*.svg` | ROC, precision–recall, calibration, confusion matrix, score histogram by class |
//! | `metrics.json` | [`EvaluationReport`]: accuracy, precision, recall, F1, ROC AUC, average precision, log loss, Brier, confusion matrix, best-F1 threshold, calibration and ECE, bootstrap 95 % intervals |
//! | `manifest.json` | written last |
//!
//! [`audit`] evaluates any predictions file (Parquet or CSV) outside a run.

#[cfg(feature = "cli")]
pub mod args;
mod plots;
mod report;

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::contracts::prepare;
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::parquet_io::{ParquetSink, read_parquet};
use kiln_core::spec::{ColumnType, EvaluateSpec};
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::{ArtifactStore, ObjectRef};
use kiln_core::table::{ROW_ID, binary_column};
use kiln_core::{Error, Result};
use kiln_model::{CpuBackend, ModelBundle};

pub use report::{BestF1, EvaluationReport, evaluate_scores};

/// The step's name and folder.
pub const STEP: &str = "evaluate";
/// The spec sections evaluate reads.
pub const SPEC_SECTIONS: &[&str] = &["evaluate", "label", "sensitive", "train"];
pub const PREDICTIONS: &str = "predictions.parquet";
pub const METRICS: &str = "metrics.json";
/// Predictions on the rows train held out for validation (for fairness mitigation).
pub const VALIDATION_PREDICTIONS: &str = "validation_predictions.parquet";
const MODEL_FILES: &[&str] = &[
    "model.bin",
    "model_config.json",
    prepare::TRANSFORM,
    "metadata.json",
];

/// The step with its cache key: the model bundle, the test table and the spec sections.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let train = ctx.completed_step("train", STEP).await?;
    let mut inputs = Vec::new();
    for file in MODEL_FILES {
        let object = train.object(&format!("model/{file}"));
        inputs.push(ctx.input(format!("train/model/{file}"), &object).await?);
    }
    for table in [prepare::TEST, prepare::TRAIN] {
        let object = ctx.run.child(prepare::STEP).object(table);
        inputs.push(ctx.input(format!("prepare/{table}"), &object).await?);
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The evaluate step, for the driver.
pub struct Evaluate;

impl PipelineStep for Evaluate {
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
        Box::pin(step.run(move |writer| evaluate(ctx, writer)))
    }

    fn tracked<'a>(
        &'a self,
        ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(async move {
            use kiln_core::contracts::evaluate::EvaluationReport;
            let report: EvaluationReport = kiln_core::contracts::read_from_run(&ctx.run).await?;
            let counts = [
                ("rows", Some(report.rows as f64)),
                ("positives", Some(report.positives as f64)),
                ("negatives", Some(report.negatives as f64)),
                ("threshold", Some(report.threshold)),
            ];
            let named = kiln_core::spec::ModelMetric::ALL
                .iter()
                .map(|&m| (m.name(), report.metric(m)));
            Ok(kiln_core::tracked::Tracked::default()
                .finals(counts.into_iter().chain(named))
                .artifacts([<EvaluationReport as kiln_core::contracts::Artifact>::FILE]))
        })
    }
}

async fn evaluate(
    ctx: &StepContext,
    writer: StepWriter,
) -> Result<(StepWriter, serde_json::Value)> {
    let spec = &ctx.spec.spec;
    let bundle =
        ModelBundle::<CpuBackend>::load(&ctx.run.child("train/model"), &Default::default()).await?;
    let bundle = Arc::new(bundle);
    let label = &spec.label.column;
    let mut fields = vec![
        Field::new(ROW_ID, DataType::Int64, false),
        Field::new(label, DataType::Int32, false),
        Field::new("score", DataType::Float64, false),
        Field::new("predicted", DataType::Int32, false),
    ];
    let test = ctx.run.child(prepare::STEP).object(prepare::TEST);
    let (test_schema, mut batches) = read_parquet(&test, 16_384).await?;
    for name in &spec.sensitive {
        let field = test_schema
            .field_with_name(name)
            .map_err(|_| Error::usage(format!("{}: no sensitive column `{name}`", test.uri())))?;
        fields.push(Field::new(name, field.data_type().clone(), true));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut sink = ParquetSink::create(&writer.object(PREDICTIONS), schema.clone())?;
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let result = async {
        let mut first_row = 0;
        while let Some(batch) = batches.try_next().await? {
            let rows = batch.num_rows() as u64;
            let (predictions, probabilities, y) =
                score_off_runtime(&bundle, batch, &schema, spec, test.uri(), first_row).await?;
            first_row += rows;
            sink.write(&predictions).await?;
            scores.extend(probabilities);
            labels.extend(y);
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        sink.abort().await;
        return Err(e);
    }
    writer.record(PREDICTIONS, sink.finish().await?.hash);
    // The rows train held out for validation, scored the same way: fairness mitigation
    // chooses its thresholds on these, never on the test rows it reports on.
    let train_table = ctx.run.child(prepare::STEP).object(prepare::TRAIN);
    let (_, mut batches) = read_parquet(&train_table, 16_384).await?;
    let mut sink = ParquetSink::create(&writer.object(VALIDATION_PREDICTIONS), schema.clone())?;
    let result = async {
        let mut first_row = 0;
        while let Some(batch) = batches.try_next().await? {
            // Every label is checked, with its row in the file, before the split drops rows.
            binary_column(&batch, "label", label, train_table.uri(), first_row)?;
            first_row += batch.num_rows() as u64;
            let ids = column(&batch, ROW_ID, train_table.uri())?;
            let ids = ids.as_primitive::<arrow::datatypes::Int64Type>();
            let keep: arrow::array::BooleanArray = ids
                .values()
                .iter()
                .map(|&id| {
                    Some(kiln_core::split::is_validation_row(
                        spec.train.seed,
                        spec.train.validation_fraction,
                        id,
                    ))
                })
                .collect();
            let batch = arrow::compute::filter_record_batch(&batch, &keep)?;
            if batch.num_rows() > 0 {
                let (predictions, _, _) =
                    score_off_runtime(&bundle, batch, &schema, spec, train_table.uri(), 0).await?;
                sink.write(&predictions).await?;
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        sink.abort().await;
        return Err(e);
    }
    writer.record(VALIDATION_PREDICTIONS, sink.finish().await?.hash);
    let (report, scores, labels) =
        evaluate_off_runtime(scores, labels, spec.evaluate.clone(), test.uri()).await?;
    writer.put_json(METRICS, &report).await?;
    for (name, svg) in plots::render(&report, &scores, &labels) {
        writer.put(&format!("plots/{name}"), svg.into()).await?;
    }
    tracing::info!(
        rows = report.rows,
        roc_auc = report.roc_auc,
        accuracy = report.accuracy,
        f1 = report.f1,
        "evaluated"
    );
    let summary = serde_json::json!({
        "rows": report.rows,
        "roc_auc": report.roc_auc,
        "accuracy": report.accuracy,
        "f1": report.f1,
        "log_loss": report.log_loss,
    });
    Ok((writer, summary))
}

/// [`score_batch`] on the blocking pool: burn inference is CPU work, kept off the
/// runtime's workers.
async fn score_off_runtime(
    bundle: &Arc<ModelBundle<CpuBackend>>,
    batch: RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
    spec: &kiln_core::PipelineSpec,
    uri: &str,
    first_row: u64,
) -> Result<(RecordBatch, Vec<f64>, Vec<u8>)> {
    let (bundle, schema, spec, uri) = (
        Arc::clone(bundle),
        schema.clone(),
        spec.clone(),
        uri.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        score_batch(&bundle, &batch, &schema, &spec, &uri, first_row)
    })
    .await
    .map_err(|e| Error::Invalid(format!("the scoring thread failed: {e}")))?
}

/// Scores one batch: the predictions batch to write, the scores and the labels.
fn score_batch(
    bundle: &ModelBundle<CpuBackend>,
    batch: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
    spec: &kiln_core::PipelineSpec,
    uri: &str,
    first_row: u64,
) -> Result<(RecordBatch, Vec<f64>, Vec<u8>)> {
    let probabilities: Vec<f64> = bundle
        .predict_proba(batch)?
        .into_iter()
        .map(f64::from)
        .collect();
    let y = binary_column(batch, "label", &spec.label.column, uri, first_row)?;
    // Train's bundle has no group thresholds: the spec's global threshold decides.
    let predicted: Int32Array = kiln_core::DecisionPolicy::global(spec.evaluate.threshold)
        .decide_all(&probabilities, &[])?
        .into_iter()
        .map(i32::from)
        .collect();
    let mut columns: Vec<ArrayRef> = vec![
        column(batch, ROW_ID, uri)?,
        Arc::new(Int32Array::from_iter_values(
            y.iter().map(|&v| i32::from(v)),
        )),
        Arc::new(Float64Array::from(probabilities.clone())),
        Arc::new(predicted),
    ];
    for name in &spec.sensitive {
        columns.push(column(batch, name, uri)?);
    }
    Ok((
        RecordBatch::try_new(schema.clone(), columns)?,
        probabilities,
        y,
    ))
}

fn column(batch: &RecordBatch, name: &str, uri: &str) -> Result<ArrayRef> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| Error::usage(format!("{uri}: no column `{name}`")))
}

/// Evaluates any predictions file — Parquet, or CSV with a header — from its label
/// (0/1) and score (probability) columns.
pub async fn audit(
    predictions: &str,
    label: &str,
    score: &str,
    options: &EvaluateSpec,
) -> Result<EvaluationReport> {
    let object = ObjectRef::parse(predictions)?;
    let columns = vec![
        kiln_core::predictions::wanted(label, ColumnType::Int, false),
        kiln_core::predictions::wanted(score, ColumnType::Float, false),
    ];
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for batch in &kiln_core::predictions::open(&object, columns).await? {
        let first_row = labels.len() as u64;
        labels.extend(binary_column(
            batch,
            "label",
            label,
            predictions,
            first_row,
        )?);
        scores.extend(kiln_core::predictions::probabilities(
            batch,
            score,
            predictions,
            first_row,
        )?);
    }
    let (report, _, _) = evaluate_off_runtime(scores, labels, options.clone(), predictions).await?;
    Ok(report)
}

/// [`evaluate_scores`] on the blocking pool: the metrics and the bootstrap are CPU work
/// that must not hold up the runtime's workers. Hands the scores and labels back.
async fn evaluate_off_runtime(
    scores: Vec<f64>,
    labels: Vec<u8>,
    options: kiln_core::spec::EvaluateSpec,
    source: &str,
) -> Result<(EvaluationReport, Vec<f64>, Vec<u8>)> {
    let source = source.to_string();
    tokio::task::spawn_blocking(move || {
        evaluate_scores(&scores, &labels, &options, &source).map(|r| (r, scores, labels))
    })
    .await
    .map_err(|e| Error::Invalid(format!("the evaluation thread failed: {e}")))?
}

/// Reads `metrics.json` of a run.
pub async fn load_report(run: &ArtifactStore) -> Result<EvaluationReport> {
    kiln_core::contracts::read_at(&run.child(STEP), METRICS).await
}
