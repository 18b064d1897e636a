//! Row-level work on typed batches: filters, label mapping, row ids, event times and
//! the train/test assignment.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::compute::kernels::cmp;
use arrow::compute::{and, filter_record_batch, is_not_null, is_null, or, prep_null_mask_filter};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use kiln_core::csv_source::TypedBatch;
use kiln_core::spec::{
    ColumnType, FilterOp, LabelSpec, PipelineSpec, RowFilter, SplitRole, SplitSpec,
};
use kiln_core::split::split_fraction;
use kiln_core::table::{EVENT_TIMESTAMP, ROW_ID, arrow_type, timestamp_type};
use kiln_core::{Error, Result};
use kiln_stats::profile::category_key;

/// The schema of prepare's output tables: the spec's columns under their names (the
/// label as 0/1 Int32), the derived columns (`transform.derived`, float), then `row_id`
/// and `event_timestamp`.
pub fn output_schema(spec: &PipelineSpec) -> SchemaRef {
    let mut fields: Vec<Field> = spec
        .table_columns()
        .iter()
        .map(|c| {
            if c.name == spec.label.column {
                Field::new(&c.name, DataType::Int32, false)
            } else {
                Field::new(&c.name, arrow_type(c.dtype), c.nullable)
            }
        })
        .collect();
    fields.push(Field::new(ROW_ID, DataType::Int64, false));
    fields.push(Field::new(EVENT_TIMESTAMP, timestamp_type(), false));
    Arc::new(Schema::new(fields))
}

/// Turns raw typed batches into output rows, assigned to train or test.
pub struct RowProcessor<'a> {
    spec: &'a PipelineSpec,
    schema: SchemaRef,
    next_row_id: i64,
    /// Fixed event time (ingest time or `event_time.fixed`), µs since the epoch.
    fixed_time: Option<i64>,
    /// Rows dropped by filters.
    pub filtered_out: u64,
}

/// A processed batch split into its train and test parts.
pub struct SplitBatch {
    pub train: RecordBatch,
    pub test: RecordBatch,
}

impl<'a> RowProcessor<'a> {
    pub fn new(spec: &'a PipelineSpec, fixed_time: Option<i64>) -> Self {
        RowProcessor {
            spec,
            schema: output_schema(spec),
            next_row_id: 0,
            fixed_time,
            filtered_out: 0,
        }
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Filters, labels, ids, times and splits one batch from `file`. `role` is the
    /// split of the whole file when `split.method` is `files`.
    pub fn process(
        &mut self,
        input: TypedBatch,
        file: &str,
        role: Option<SplitRole>,
    ) -> Result<SplitBatch> {
        let TypedBatch { batch, lines } = input;
        let keep = self.filter_mask(&batch)?;
        let kept = keep.true_count();
        self.filtered_out += (batch.num_rows() - kept) as u64;
        let (batch, lines) = if kept == batch.num_rows() {
            (batch, lines)
        } else {
            let lines = lines
                .iter()
                .zip(keep.iter())
                .filter(|(_, k)| k == &Some(true))
                .map(|(l, _)| *l)
                .collect();
            (filter_record_batch(&batch, &keep)?, lines)
        };
        let n = batch.num_rows();
        let label = map_label(&self.spec.label, &batch, &lines, file)?;
        let row_ids = Int64Array::from_iter_values(self.next_row_id..self.next_row_id + n as i64);
        self.next_row_id += n as i64;
        let times: ArrayRef = match self.fixed_time {
            Some(t) => Arc::new(TimestampMicrosecondArray::from(vec![t; n]).with_timezone("UTC")),
            None => {
                let kiln_core::spec::EventTimeSpec::Column(name) = &self.spec.event_time else {
                    return Err(Error::Invalid("no event time source".into()));
                };
                let column = batch
                    .column_by_name(name)
                    .ok_or_else(|| Error::Invalid(format!("no column {name}")))?;
                if let Some(row) = (0..n).find(|&i| column.is_null(i)) {
                    return Err(Error::Data {
                        file: file.to_string(),
                        line: lines[row],
                        message: format!("event time column `{name}` is missing"),
                    });
                }
                Arc::clone(column)
            }
        };
        let is_test = self.assign(&batch, &row_ids, role)?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for column in &self.spec.schema {
            if column.name == self.spec.label.column {
                columns.push(Arc::clone(&label));
            } else {
                columns.push(batch.column_by_name(&column.name).cloned().ok_or_else(|| {
                    Error::Invalid(format!("batch lacks column `{}`", column.name))
                })?);
            }
        }
        for derived in &self.spec.transform.derived {
            let values = kiln_features::derive_batch(&batch, derived)?;
            columns.push(Arc::new(Float64Array::from(values)));
        }
        columns.push(Arc::new(row_ids));
        columns.push(times);
        let out = RecordBatch::try_new(self.schema(), columns)?;
        let is_train = arrow::compute::not(&is_test)?;
        Ok(SplitBatch {
            train: filter_record_batch(&out, &is_train)?,
            test: filter_record_batch(&out, &is_test)?,
        })
    }

    /// All filters ANDed; a null comparison is false (SQL semantics).
    fn filter_mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let mut mask = BooleanArray::from(vec![true; batch.num_rows()]);
        for filter in &self.spec.filters {
            let one = evaluate_filter(self.spec, filter, batch)?;
            // arrow's `prep_null_mask_filter` unwraps the null buffer: only for a
            // mask that has nulls (a batch where the column has none panicked).
            let one = if one.null_count() > 0 {
                prep_null_mask_filter(&one)
            } else {
                one
            };
            mask = and(&mask, &one)?;
        }
        Ok(mask)
    }

    /// true = test.
    fn assign(
        &self,
        batch: &RecordBatch,
        row_ids: &Int64Array,
        role: Option<SplitRole>,
    ) -> Result<BooleanArray> {
        let n = batch.num_rows();
        match &self.spec.split {
            SplitSpec::Files => Ok(BooleanArray::from(vec![role == Some(SplitRole::Test); n])),
            SplitSpec::Hash {
                key,
                test_fraction,
                seed,
            } => {
                let keys: Vec<Option<String>> = match key {
                    Some(column) => {
                        let array = batch
                            .column_by_name(column)
                            .ok_or_else(|| Error::Invalid(format!("no column {column}")))?;
                        (0..n).map(|i| hash_key_text(array.as_ref(), i)).collect()
                    }
                    None => row_ids
                        .values()
                        .iter()
                        .map(|id| Some(id.to_string()))
                        .collect(),
                };
                Ok(keys
                    .iter()
                    .map(|k| Some(split_fraction(*seed, k.as_deref()) < *test_fraction))
                    .collect())
            }
        }
    }
}

/// The text a hash split hashes for a value (floats by their bits, so 0.1 is stable).
fn hash_key_text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Float64 => Some(
            array
                .as_primitive::<Float64Type>()
                .value(row)
                .to_bits()
                .to_string(),
        ),
        DataType::Timestamp(..) => Some(
            array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(row)
                .to_string(),
        ),
        _ => category_key(array, row),
    }
}

fn evaluate_filter(
    spec: &PipelineSpec,
    filter: &RowFilter,
    batch: &RecordBatch,
) -> Result<BooleanArray> {
    let array = batch
        .column_by_name(&filter.column)
        .ok_or_else(|| Error::Invalid(format!("filter column `{}` missing", filter.column)))?;
    let dtype = spec
        .column(&filter.column)
        .map(|c| c.dtype)
        .ok_or_else(|| {
            Error::Invalid(format!("filter column `{}` not in schema", filter.column))
        })?;
    let compare = |value: &serde_json::Value, op: FilterOp| -> Result<BooleanArray> {
        let scalar = scalar(dtype, value).ok_or_else(|| {
            Error::usage(format!(
                "filter on `{}`: value {value} does not fit the column",
                filter.column
            ))
        })?;
        let left: &dyn Datum = array;
        let right: &dyn Datum = scalar.as_ref();
        Ok(match op {
            FilterOp::Eq | FilterOp::In => cmp::eq(left, right)?,
            FilterOp::Ne | FilterOp::NotIn => cmp::neq(left, right)?,
            FilterOp::Lt => cmp::lt(left, right)?,
            FilterOp::Le => cmp::lt_eq(left, right)?,
            FilterOp::Gt => cmp::gt(left, right)?,
            FilterOp::Ge => cmp::gt_eq(left, right)?,
            FilterOp::IsNull | FilterOp::NotNull => unreachable!("handled below"),
        })
    };
    match filter.op {
        FilterOp::IsNull => Ok(is_null(array)?),
        FilterOp::NotNull => Ok(is_not_null(array)?),
        FilterOp::In | FilterOp::NotIn => {
            let values = filter.values.as_deref().unwrap_or_default();
            let combine = if filter.op == FilterOp::In { or } else { and };
            let mut acc = BooleanArray::from(vec![filter.op == FilterOp::NotIn; batch.num_rows()]);
            for value in values {
                acc = combine(&acc, &compare(value, filter.op)?)?;
            }
            // A null never matches (and is never "not in").
            Ok(and(&acc, &is_not_null(array)?)?)
        }
        op => {
            let value = filter
                .value
                .as_ref()
                .ok_or_else(|| Error::usage("filter without value"))?;
            compare(value, op)
        }
    }
}

/// A one-element array usable as a scalar in comparisons.
fn scalar(dtype: ColumnType, value: &serde_json::Value) -> Option<Arc<dyn Datum>> {
    Some(match dtype {
        ColumnType::Int => Arc::new(Int64Array::new_scalar(value.as_i64()?)),
        ColumnType::Float => Arc::new(Float64Array::new_scalar(value.as_f64()?)),
        ColumnType::String => Arc::new(StringArray::new_scalar(value.as_str()?)),
        ColumnType::Bool => Arc::new(BooleanArray::new_scalar(value.as_bool()?)),
        ColumnType::Timestamp => {
            let t = kiln_core::table::parse_timestamp(value.as_str()?)?.timestamp_micros();
            Arc::new(arrow::array::Scalar::new(
                TimestampMicrosecondArray::from(vec![t]).with_timezone("UTC"),
            ))
        }
    })
}

/// Maps raw label text to 0/1; a missing or (with `negative` set) unknown label is an
/// error naming the line and value.
fn map_label(
    label: &LabelSpec,
    batch: &RecordBatch,
    lines: &[u64],
    file: &str,
) -> Result<ArrayRef> {
    let raw = batch
        .column_by_name(&label.column)
        .ok_or_else(|| Error::Invalid(format!("no label column `{}`", label.column)))?;
    let raw: &StringArray = raw
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::Invalid(format!("label column `{}` is not text", label.column)))?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let error = |message: String| Error::Data {
            file: file.to_string(),
            line: lines[i],
            message,
        };
        let Some(value) = value else {
            return Err(error(format!("label `{}` is missing", label.column)));
        };
        let value = match &label.strip_suffix {
            Some(suffix) => value.strip_suffix(suffix.as_str()).unwrap_or(value),
            None => value,
        };
        let y = if value == label.positive {
            1
        } else {
            match &label.negative {
                Some(negative) if value != negative => {
                    return Err(error(format!(
                        "label `{}`: value {value:?} is neither {:?} nor {negative:?}",
                        label.column, label.positive
                    )));
                }
                _ => 0,
            }
        };
        out.push(y);
    }
    Ok(Arc::new(Int32Array::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::spec::LoadedSpec;
    use kiln_core::table::TextBatchBuilder;

    fn spec(extra: &str) -> PipelineSpec {
        let text = format!(
            r#"
name: t
data: {{format: csv, sources: [{{uri: a.csv}}]}}
schema:
  - {{name: age, type: int}}
  - {{name: job, type: string}}
  - {{name: y, type: string}}
label: {{column: y, positive: ">50K", negative: "<=50K", strip_suffix: "."}}
split: {{method: hash, test_fraction: 0.5, seed: 3}}
transform: {{numeric: [{{column: age}}]}}
event_time: {{fixed: "1994-07-01T00:00:00Z"}}
{extra}
"#
        );
        LoadedSpec::from_text(&text, "s.yaml", &[]).unwrap().spec
    }

    fn typed(spec: &PipelineSpec, rows: &[[&str; 3]]) -> TypedBatch {
        let mut b = TextBatchBuilder::new(&spec.schema, &["?".into()], 16);
        for (i, row) in rows.iter().enumerate() {
            b.push_row(row.iter().copied(), "a.csv", i as u64 + 1)
                .unwrap();
        }
        let (batch, lines) = b.finish().unwrap();
        TypedBatch { batch, lines }
    }

    #[test]
    fn labels_filters_and_split() {
        let s = spec(
            "filters: [{column: age, op: ge, value: 18}, {column: job, op: not_in, values: [Spy]}]",
        );
        let mut p = RowProcessor::new(&s, Some(0));
        let rows = [
            ["17", "Sales", "<=50K"],
            ["40", "Sales", ">50K."],
            ["50", "Spy", ">50K"],
            ["33", "?", "<=50K."],
            ["?", "Sales", ">50K"],
        ];
        let out = p.process(typed(&s, &rows), "a.csv", None).unwrap();
        // Dropped: 17 (too young), Spy (excluded), the null job (a null never passes
        // `not_in`) and the null age (null >= 18 is not true).
        assert_eq!(p.filtered_out, 4);
        let total = out.train.num_rows() + out.test.num_rows();
        assert_eq!(total, 1);
        let kept = if out.train.num_rows() == 1 {
            &out.train
        } else {
            &out.test
        };
        let y = kept
            .column_by_name("y")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(y.value(0), 1, "`>50K.` maps to 1 after stripping the dot");
    }

    #[test]
    fn unknown_and_missing_labels_name_the_line() {
        let s = spec("");
        let mut p = RowProcessor::new(&s, Some(0));
        let err = p
            .process(
                typed(&s, &[["1", "a", "<=50K"], ["2", "b", "maybe"]]),
                "a.csv",
                None,
            )
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "a.csv:2: label `y`: value \"maybe\" is neither \">50K\" nor \"<=50K\""
        );
        let err = p
            .process(typed(&s, &[["1", "a", "?"]]), "a.csv", None)
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "a.csv:1: label `y` is missing");
    }

    #[test]
    fn row_ids_continue_across_batches() {
        let s = spec("");
        let mut p = RowProcessor::new(&s, Some(0));
        let rows = [["1", "a", "<=50K"], ["2", "b", ">50K"]];
        p.process(typed(&s, &rows), "a.csv", None).unwrap();
        let second = p.process(typed(&s, &rows), "a.csv", None).unwrap();
        let mut ids: Vec<i64> = Vec::new();
        for part in [&second.train, &second.test] {
            ids.extend(
                part.column_by_name(ROW_ID)
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .iter(),
            );
        }
        ids.sort();
        assert_eq!(ids, vec![2, 3]);
    }
}
