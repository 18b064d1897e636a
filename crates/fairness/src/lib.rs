//! # kiln-fairness
//!
//! Fairness of the model's decisions on the test split, from evaluate's predictions
//! alone (no model needed): for each sensitive attribute of the spec and for their
//! intersection, per-group count, selection rate, TPR, FPR and precision; demographic
//! parity, equal opportunity and equalized odds differences and ratios, and the
//! predictive parity ratio, as Fairlearn defines them; bootstrap 95 % intervals; and
//! the gates of the spec. Writes `<run>/fairness/report.json`; a failed gate is exit 3.
//!
//! [`audit`] analyses any predictions file outside a run.

mod analysis;
#[cfg(feature = "cli")]
pub mod args;
pub mod mitigation;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::predictions;
use kiln_core::spec::{
    ColumnType, FairnessMetric, FairnessSpec, MitigationConstraint, MitigationSpec,
};
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::store::ObjectRef;
use kiln_core::table::binary_column;
use kiln_core::{Error, Result};

pub use analysis::analyse;
pub use kiln_core::contracts::fairness::{
    AttributeReport, BeforeAfter, DecisionSummary, Disparities, FairnessReport, GateResult,
    GroupStats, MitigationReport,
};
pub use mitigation::GroupThresholds;

/// The step's name and folder.
pub const STEP: &str = "fairness";
/// The spec sections fairness reads.
pub const SPEC_SECTIONS: &[&str] = &["fairness", "sensitive", "label"];
pub const REPORT: &str = "report.json";
/// Group thresholds chosen by mitigation (copied into the registered model).
pub const THRESHOLDS: &str = kiln_core::decision::GROUP_THRESHOLDS;
/// The decisions that ship (mitigated when mitigation chose thresholds): row `i` is
/// row `i` of evaluate's `predictions.parquet`, with its `score` and `decision`.
pub const DECISIONS: &str = "decisions.parquet";
/// How an intersection of attributes is named (`sex × race`).
pub const INTERSECTION: &str = " × ";

/// Analyses predictions: `sensitive` holds each attribute's per-row values.
pub fn analyse_predictions(
    labels: &[u8],
    predicted: &[u8],
    sensitive: &[(String, Vec<Option<String>>)],
    options: &FairnessSpec,
) -> FairnessReport {
    let mut attributes: Vec<AttributeReport> = sensitive
        .iter()
        .map(|(name, values)| {
            analyse(
                name,
                values,
                labels,
                predicted,
                options.min_group_count,
                options.bootstrap_resamples,
                options.seed,
            )
        })
        .collect();
    if options.intersections && sensitive.len() > 1 {
        let name = sensitive
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(INTERSECTION);
        let values: Vec<Option<String>> = (0..labels.len())
            .map(|row| {
                Some(
                    sensitive
                        .iter()
                        .map(|(_, v)| v[row].clone().unwrap_or_else(|| "<missing>".into()))
                        .collect::<Vec<_>>()
                        .join(INTERSECTION),
                )
            })
            .collect();
        attributes.push(analyse(
            &name,
            &values,
            labels,
            predicted,
            options.min_group_count,
            options.bootstrap_resamples,
            options.seed,
        ));
    }
    let mut gates = Vec::new();
    for gate in &options.gates {
        for attribute in attributes
            .iter()
            .filter(|a| gate.attribute.as_deref().is_none_or(|g| g == a.attribute))
        {
            let observed = attribute.disparities.get(&gate.metric).copied().flatten();
            let passed = observed.is_some_and(|v| {
                gate.min.is_none_or(|lo| v >= lo) && gate.max.is_none_or(|hi| v <= hi)
            });
            gates.push(GateResult {
                metric: gate.metric,
                attribute: attribute.attribute.clone(),
                min: gate.min,
                max: gate.max,
                observed,
                passed,
            });
        }
    }
    FairnessReport {
        format_version: <FairnessReport as kiln_core::contracts::Artifact>::FORMAT_VERSION,
        rows: labels.len() as u64,
        min_group_count: options.min_group_count,
        passed: gates.iter().all(|g| g.passed),
        attributes,
        gates,
        mitigation: None,
    }
}

/// The step with its cache key: evaluate's predictions and the spec sections.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let evaluate = ctx.completed_step("evaluate", STEP).await?;
    let object = evaluate.object("predictions.parquet");
    let inputs = vec![ctx.input("evaluate/predictions.parquet", &object).await?];
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The fairness step, for the driver.
pub struct Fairness;

impl PipelineStep for Fairness {
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
        Box::pin(step.run(move |writer| fairness(ctx, writer)))
    }

    fn gate<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(gate(ctx))
    }

    fn tracked<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(async {
            Ok(kiln_core::tracked::Tracked::report::<
                kiln_core::contracts::fairness::FairnessReport,
            >())
        })
    }
}

/// The gate: every fairness gate of the committed report passed (a failure is
/// [`Error::Gate`], the report written either way).
async fn gate(ctx: &StepContext) -> Result<()> {
    kiln_core::driver::verdict_gate::<FairnessReport>(ctx, "fairness gate(s) failed").await
}

async fn fairness(
    ctx: &StepContext,
    writer: StepWriter,
) -> Result<(StepWriter, serde_json::Value)> {
    let spec = &ctx.spec.spec;
    let evaluate = ctx.run.child("evaluate");
    let threshold = spec.evaluate.threshold;
    let mut table = read_table(
        &evaluate.object("predictions.parquet"),
        &spec.label.column,
        "score",
        &spec.sensitive,
        Some(threshold),
    )
    .await?;
    let mut mitigated = None;
    if let Some(m) = &spec.fairness.mitigation {
        let validation = read_table(
            &evaluate.object("validation_predictions.parquet"),
            &spec.label.column,
            "score",
            std::slice::from_ref(&m.attribute),
            Some(threshold),
        )
        .await?;
        let test_groups = table
            .sensitive
            .iter()
            .find(|(name, _)| *name == m.attribute)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (report, thresholds) = mitigate(
            m,
            &validation,
            &table,
            &test_groups,
            &spec.fairness,
            threshold,
        );
        if let Some(t) = &thresholds {
            writer.put_json(THRESHOLDS, t).await?;
            table.decisions = t.decide(&table.scores, &test_groups);
        }
        mitigated = Some(report);
    }
    write_decisions(&writer, &table).await?;
    let mut report = analyse_off_runtime(table, spec.fairness.clone()).await?;
    report.mitigation = mitigated;
    writer.put_json(REPORT, &report).await?;
    for attribute in &report.attributes {
        writer
            .put(
                &format!("plots/{}.svg", file_stem(&attribute.attribute)),
                group_chart(attribute).into(),
            )
            .await?;
    }
    tracing::info!(
        passed = report.passed,
        gates = report.gates.len(),
        "fairness analysed"
    );
    Ok((
        writer,
        serde_json::json!({ "passed": report.passed, "gates": report.gates.len() }),
    ))
}

/// Writes [`DECISIONS`]: the score and the decision of every test row, in order.
async fn write_decisions(writer: &StepWriter, table: &PredictionsTable) -> Result<()> {
    use arrow::array::{Float64Array, Int32Array};
    use arrow::datatypes::{Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("score", DataType::Float64, false),
        Field::new("decision", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(Float64Array::from(table.scores.clone())),
            std::sync::Arc::new(Int32Array::from_iter_values(
                table.decisions.iter().map(|&d| i32::from(d)),
            )),
        ],
    )?;
    let mut sink = kiln_core::parquet_io::ParquetSink::create(&writer.object(DECISIONS), schema)?;
    if let Err(e) = sink.write(&batch).await {
        sink.abort().await;
        return Err(e);
    }
    writer.record(DECISIONS, sink.finish().await?.hash);
    Ok(())
}

fn summarise(
    m: &MitigationSpec,
    labels: &[u8],
    decisions: &[u8],
    groups: &[Option<String>],
    options: &FairnessSpec,
) -> DecisionSummary {
    let correct = labels.iter().zip(decisions).filter(|(a, b)| a == b).count();
    let metric = match m.constraint {
        MitigationConstraint::DemographicParity => FairnessMetric::DemographicParityRatio,
        MitigationConstraint::EqualOpportunity => FairnessMetric::EqualOpportunityRatio,
    };
    let report = analyse(
        &m.attribute,
        groups,
        labels,
        decisions,
        options.min_group_count,
        0,
        options.seed,
    );
    DecisionSummary {
        accuracy: correct as f64 / labels.len().max(1) as f64,
        ratio: report.disparities.get(&metric).copied().flatten(),
    }
}

fn mitigate(
    m: &MitigationSpec,
    validation: &PredictionsTable,
    test: &PredictionsTable,
    test_groups: &[Option<String>],
    options: &FairnessSpec,
    threshold: f64,
) -> (MitigationReport, Option<GroupThresholds>) {
    let val_groups = &validation.sensitive[0].1;
    let chosen = mitigation::choose(
        &m.attribute,
        &validation.scores,
        &validation.labels,
        val_groups,
        m.constraint,
        m.min_ratio,
        threshold,
        options.min_group_count,
    )
    .map(|mut t| {
        t.chosen_on =
            "evaluate/validation_predictions.parquet (the rows train held out for validation)"
                .into();
        t
    });
    let side = |table: &PredictionsTable, groups: &[Option<String>]| BeforeAfter {
        before: summarise(m, &table.labels, &table.decisions, groups, options),
        after: chosen.as_ref().map(|t| {
            summarise(
                m,
                &table.labels,
                &t.decide(&table.scores, groups),
                groups,
                options,
            )
        }),
    };
    let test_side = side(test, test_groups);
    let report = MitigationReport {
        feasible: chosen.is_some(),
        thresholds: chosen.clone(),
        validation: side(validation, val_groups),
        accuracy_cost: test_side
            .after
            .as_ref()
            .map(|a| test_side.before.accuracy - a.accuracy),
        test: test_side,
    };
    (report, chosen)
}

/// A file name for an attribute (`sex × race` → `sex_x_race`).
fn file_stem(attribute: &str) -> String {
    attribute
        .replace(INTERSECTION, "_x_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Selection rate, TPR and FPR per group, as grouped bars.
fn group_chart(attribute: &AttributeReport) -> String {
    let groups: Vec<String> = attribute
        .groups
        .iter()
        .map(|g| {
            if g.excluded {
                format!("{} (n<min)", g.group)
            } else {
                g.group.clone()
            }
        })
        .collect();
    let series = [
        (
            "selection rate",
            attribute
                .groups
                .iter()
                .map(|g| Some(g.selection_rate))
                .collect::<Vec<_>>(),
        ),
        ("TPR", attribute.groups.iter().map(|g| g.tpr).collect()),
        ("FPR", attribute.groups.iter().map(|g| g.fpr).collect()),
    ];
    kiln_charts::bar_chart(
        &format!("Rates by {}", attribute.attribute),
        "rate",
        &groups,
        &series,
        1.0,
    )
}

/// Labels, decisions and sensitive values read from a predictions file.
struct PredictionsTable {
    labels: Vec<u8>,
    decisions: Vec<u8>,
    /// The scores, when decisions come from a score column and a threshold.
    scores: Vec<f64>,
    sensitive: Vec<(String, Vec<Option<String>>)>,
}

/// Reads a predictions file (Parquet, or CSV with a header). Decisions come from a 0/1
/// column, or from a score column and a threshold when `threshold` is given.
async fn read_table(
    object: &ObjectRef,
    label: &str,
    decision: &str,
    sensitive: &[String],
    threshold: Option<f64>,
) -> Result<PredictionsTable> {
    let mut columns = vec![
        predictions::wanted(label, ColumnType::Int, false),
        predictions::wanted(
            decision,
            if threshold.is_some() {
                ColumnType::Float
            } else {
                ColumnType::Int
            },
            false,
        ),
    ];
    columns.extend(
        sensitive
            .iter()
            .map(|s| predictions::wanted(s, ColumnType::String, true)),
    );
    let uri = object.uri().to_string();
    let batches = predictions::open(object, columns).await?;
    let mut table = PredictionsTable {
        labels: Vec::new(),
        decisions: Vec::new(),
        scores: Vec::new(),
        sensitive: sensitive.iter().map(|s| (s.clone(), Vec::new())).collect(),
    };
    for batch in &batches {
        let first_row = table.labels.len() as u64;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::usage(format!("{uri}: no column `{name}`")))
        };
        table
            .labels
            .extend(binary_column(batch, "label", label, &uri, first_row)?);
        match threshold {
            Some(t) => {
                let scores = predictions::probabilities(batch, decision, &uri, first_row)?;
                table
                    .decisions
                    .extend(scores.iter().map(|&s| u8::from(s >= t)));
                table.scores.extend(scores);
            }
            None => table
                .decisions
                .extend(binary_column(batch, "decision", decision, &uri, first_row)?),
        }
        for (name, values) in &mut table.sensitive {
            let array = arrow::compute::cast(&column(name)?, &DataType::Utf8)?;
            let strings = array.as_string::<i32>();
            values.extend(
                (0..strings.len())
                    .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string())),
            );
        }
    }
    if table.labels.is_empty() {
        return Err(Error::usage(format!("{uri}: no predictions to analyse")));
    }
    Ok(table)
}

/// Analyses any predictions file (Parquet, or CSV with a header) outside a run.
pub async fn audit(
    predictions: &str,
    label: &str,
    score: &str,
    threshold: f64,
    sensitive: &[String],
    options: &FairnessSpec,
) -> Result<FairnessReport> {
    if sensitive.is_empty() {
        return Err(Error::usage("--sensitive: name at least one column"));
    }
    let table = read_table(
        &ObjectRef::parse(predictions)?,
        label,
        score,
        sensitive,
        Some(threshold),
    )
    .await?;
    analyse_off_runtime(table, options.clone()).await
}

/// [`analyse_predictions`] on the blocking pool: the groups' bootstrap is CPU work
/// that must not hold up the runtime's workers.
async fn analyse_off_runtime(
    table: PredictionsTable,
    options: FairnessSpec,
) -> Result<FairnessReport> {
    tokio::task::spawn_blocking(move || {
        analyse_predictions(&table.labels, &table.decisions, &table.sensitive, &options)
    })
    .await
    .map_err(|e| Error::Invalid(format!("the fairness analysis thread failed: {e}")))
}

/// Disparities of one attribute by metric name, for readers of the report.
pub fn disparity(report: &FairnessReport, attribute: &str, metric: FairnessMetric) -> Option<f64> {
    report
        .attributes
        .iter()
        .find(|a| a.attribute == attribute)
        .and_then(|a| a.disparities.get(&metric).copied().flatten())
}
