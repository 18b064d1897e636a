//! Typed tables: the Arrow types of spec columns, parsing raw text values, and
//! building record batches row by row with errors that name file, line, column and value.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::spec::{ColumnSpec, ColumnType};

/// Name of the row id column prepare adds.
pub const ROW_ID: &str = "row_id";
/// Name of the event time column prepare adds (for Feast and freshness checks).
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

/// The Arrow type that holds a logical column type.
pub fn arrow_type(dtype: ColumnType) -> DataType {
    match dtype {
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Timestamp => timestamp_type(),
    }
}

/// Microsecond UTC timestamps, what Feast and pyarrow expect.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The Arrow schema of the raw columns as the spec types them.
pub fn raw_schema(columns: &[ColumnSpec]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.dtype), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

pub use crate::values::{parse_bool, parse_timestamp};

/// A builder for one typed column.
enum ColumnBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(dtype: ColumnType, capacity: usize) -> Self {
        match dtype {
            ColumnType::Int => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            ColumnType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            ColumnType::String => {
                ColumnBuilder::Str(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Float(b) => b.append_null(),
            ColumnBuilder::Str(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
        }
    }

    /// Appends a parsed value, or says what type the text failed to be.
    fn append_text(&mut self, text: &str) -> std::result::Result<(), &'static str> {
        match self {
            ColumnBuilder::Int(b) => b.append_value(text.parse().map_err(|_| "an int")?),
            ColumnBuilder::Float(b) => {
                let v: f64 = text.parse().map_err(|_| "a float")?;
                if !v.is_finite() {
                    return Err("a finite float");
                }
                b.append_value(v)
            }
            ColumnBuilder::Str(b) => b.append_value(text),
            ColumnBuilder::Bool(b) => b.append_value(parse_bool(text).ok_or("a bool")?),
            ColumnBuilder::Timestamp(b) => b.append_value(
                parse_timestamp(text)
                    .ok_or("a timestamp")?
                    .timestamp_micros(),
            ),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds typed record batches from text fields, one row at a time.
pub struct TextBatchBuilder {
    columns: Vec<ColumnSpec>,
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    null_values: Vec<String>,
    lines: Vec<u64>,
    capacity: usize,
}

impl TextBatchBuilder {
    /// A builder for the given columns; `null_values` are the texts that mean missing.
    pub fn new(columns: &[ColumnSpec], null_values: &[String], capacity: usize) -> Self {
        TextBatchBuilder {
            columns: columns.to_vec(),
            schema: raw_schema(columns),
            builders: columns
                .iter()
                .map(|c| ColumnBuilder::new(c.dtype, capacity))
                .collect(),
            null_values: null_values.to_vec(),
            lines: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Appends a row whose fields are in column order. `line` and `file` name the
    /// row in errors. On error the builder is left unusable (the step stops).
    pub fn push_row<'a>(
        &mut self,
        fields: impl IntoIterator<Item = &'a str>,
        file: &str,
        line: u64,
    ) -> Result<()> {
        for ((text, column), builder) in fields
            .into_iter()
            .zip(&self.columns)
            .zip(&mut self.builders)
        {
            if text.is_empty() || self.null_values.iter().any(|n| n == text) {
                if !column.nullable {
                    return Err(Error::Data {
                        file: file.to_string(),
                        line,
                        message: format!(
                            "column `{}`: missing value in a non-nullable column",
                            column.name
                        ),
                    });
                }
                builder.append_null();
            } else if let Err(expected) = builder.append_text(text) {
                return Err(Error::Data {
                    file: file.to_string(),
                    line,
                    message: format!("column `{}`: value {text:?} is not {expected}", column.name),
                });
            }
        }
        self.lines.push(line);
        Ok(())
    }

    /// The batch of the pending rows and their line numbers; the builder is reset.
    pub fn finish(&mut self) -> Result<(RecordBatch, Vec<u64>)> {
        let arrays = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        let lines = std::mem::replace(&mut self.lines, Vec::with_capacity(self.capacity));
        Ok((batch, lines))
    }
}

/// Casts a batch read from a Parquet source to the spec's types, naming the column
/// that is missing or cannot be cast.
pub fn conform_batch(
    batch: &RecordBatch,
    columns: &[ColumnSpec],
    file: &str,
) -> Result<RecordBatch> {
    let schema = raw_schema(columns);
    let mut arrays = Vec::with_capacity(columns.len());
    for column in columns {
        let array = batch
            .column_by_name(&column.name)
            .ok_or_else(|| Error::Data {
                file: file.to_string(),
                line: 0,
                message: format!("column `{}` is not in the file", column.name),
            })?;
        let target = arrow_type(column.dtype);
        let cast = if array.data_type() == &target {
            array.clone()
        } else {
            let options = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow::compute::cast_with_options(array, &target, &options).map_err(|e| {
                Error::Data {
                    file: file.to_string(),
                    line: 0,
                    message: format!(
                        "column `{}`: cannot read {} as {:?}: {e}",
                        column.name,
                        array.data_type(),
                        column.dtype
                    ),
                }
            })?
        };
        if !column.nullable && cast.null_count() > 0 {
            return Err(Error::Data {
                file: file.to_string(),
                line: 0,
                message: format!(
                    "column `{}`: missing value in a non-nullable column",
                    column.name
                ),
            });
        }
        arrays.push(cast);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// The one rule for a 0/1 column (`role`: a label, a decision): each value must be 0 or
/// 1 and not null, whatever its integer (or boolean) type. train, evaluate, fairness and
/// the champion gate all read labels through it. `first_row` is the 0-based row of the
/// batch's first value in its file, so an error names the row in the whole file
/// (`row 70000`), not in the batch.
pub fn binary_column(
    batch: &RecordBatch,
    role: &str,
    name: &str,
    uri: &str,
    first_row: u64,
) -> Result<Vec<u8>> {
    use arrow::array::{Array, AsArray};
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::usage(format!("{uri}: no {role} column `{name}`")))?;
    let values = arrow::compute::cast(array, &DataType::Int64).map_err(|_| {
        Error::usage(format!(
            "{uri}: {role} `{name}` is {}, not a 0/1 column",
            array.data_type()
        ))
    })?;
    let values = values.as_primitive::<arrow::datatypes::Int64Type>();
    (0..values.len())
        .map(|i| {
            let row = first_row + i as u64 + 1;
            match (values.is_null(i), values.value(i)) {
                (false, v @ (0 | 1)) => Ok(v as u8),
                (true, _) => Err(Error::usage(format!(
                    "{uri}: {role} `{name}` is missing in row {row}; expected 0 or 1"
                ))),
                (false, v) => Err(Error::usage(format!(
                    "{uri}: {role} `{name}` is {v} in row {row}; expected 0 or 1"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};

    fn cols() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec {
                name: "age".into(),
                dtype: ColumnType::Int,
                nullable: true,
            },
            ColumnSpec {
                name: "w".into(),
                dtype: ColumnType::Float,
                nullable: false,
            },
            ColumnSpec {
                name: "job".into(),
                dtype: ColumnType::String,
                nullable: true,
            },
        ]
    }

    #[test]
    fn builds_typed_batches_with_nulls() {
        let mut b = TextBatchBuilder::new(&cols(), &["?".into()], 4);
        b.push_row(["39", "1.5", "?"], "f.csv", 1).unwrap();
        b.push_row(["", "2", "Sales"], "f.csv", 2).unwrap();
        let (batch, lines) = b.finish().unwrap();
        assert_eq!(lines, vec![1, 2]);
        let age = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(age.value(0), 39);
        assert!(age.is_null(1));
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.0);
        assert!(batch.column(2).is_null(0));
        assert_eq!(batch.column(2).as_string::<i32>().value(1), "Sales");
    }

    #[test]
    fn bad_values_name_file_line_column_and_value() {
        let mut b = TextBatchBuilder::new(&cols(), &[], 4);
        let err = b.push_row(["abc", "1", "x"], "data/f.csv", 17).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data/f.csv:17: column `age`: value \"abc\" is not an int"
        );
        let mut b = TextBatchBuilder::new(&cols(), &[], 4);
        let err = b.push_row(["1", "", "x"], "f.csv", 3).unwrap_err();
        assert!(
            err.to_string().contains("column `w`: missing value"),
            "{err}"
        );
        let mut b = TextBatchBuilder::new(&cols(), &[], 4);
        let err = b.push_row(["1", "NaN", "x"], "f.csv", 3).unwrap_err();
        assert!(err.to_string().contains("is not a finite float"), "{err}");
    }

    #[test]
    fn timestamps_and_bools_parse_in_common_forms() {
        let t = parse_timestamp("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_timestamp("2024-01-02 03:04:05").unwrap(), t);
        assert_eq!(
            parse_timestamp("2024-01-02").unwrap().timestamp(),
            1704153600
        );
        assert!(parse_timestamp("yesterday").is_none());
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn parquet_batches_are_cast_to_the_spec() {
        let source = RecordBatch::try_from_iter([
            (
                "age",
                Arc::new(arrow::array::Int32Array::from(vec![1, 2])) as ArrayRef,
            ),
            (
                "w",
                Arc::new(arrow::array::Float32Array::from(vec![0.5, 1.0])) as ArrayRef,
            ),
            (
                "job",
                Arc::new(arrow::array::StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let out = conform_batch(&source, &cols(), "f.parquet").unwrap();
        assert_eq!(out.schema().field(0).data_type(), &DataType::Int64);
        let missing = RecordBatch::try_from_iter([(
            "age",
            Arc::new(arrow::array::Int32Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let err = conform_batch(&missing, &cols(), "f.parquet").unwrap_err();
        assert!(
            err.to_string().contains("column `w` is not in the file"),
            "{err}"
        );
    }

    #[test]
    fn binary_columns_name_the_row_in_the_whole_file() {
        use arrow::array::{BooleanArray, Int32Array};
        let batch = RecordBatch::try_from_iter([
            (
                "y",
                Arc::new(Int32Array::from(vec![Some(0), Some(1), Some(2)])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(0)])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(arrow::array::StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let first = 65_536;
        assert_eq!(
            binary_column(&batch, "label", "y", "p.parquet", first)
                .unwrap_err()
                .to_string(),
            "p.parquet: label `y` is 2 in row 65539; expected 0 or 1"
        );
        assert_eq!(
            binary_column(&batch, "label", "n", "p.parquet", 0)
                .unwrap_err()
                .to_string(),
            "p.parquet: label `n` is missing in row 2; expected 0 or 1"
        );
        assert_eq!(
            binary_column(&batch, "decision", "b", "p.parquet", 0).unwrap(),
            [1, 0, 1]
        );
        assert_eq!(
            binary_column(&batch, "label", "z", "p.parquet", 0)
                .unwrap_err()
                .to_string(),
            "p.parquet: no label column `z`"
        );
        assert!(binary_column(&batch, "label", "s", "p.parquet", 0).is_err());
    }
}
