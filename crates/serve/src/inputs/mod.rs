//! Requests to rows: the model's raw input columns, and the decoding of V1 records and
//! V2 tensors (JSON or gRPC) into one Arrow record batch — the same shape of batch
//! evaluate scores, so the transform and the model see identical inputs whatever the
//! protocol. Every error names the input, column, row or element, and what was expected.
//!
//! Missing values: JSON `null` anywhere; an empty text (as prepare's CSV reading treats
//! an empty field); NaN in a number tensor (binary tensors have no null).
//!
//! Files: this one holds the model's input columns and the two entry points
//! ([`InputSchema::from_records`], [`InputSchema::from_tensors`]); [`tensor`] the V2
//! datatypes and the decoding of tensor elements (JSON, typed, raw bytes); `column`
//! the typed column builders both fill.

mod column;
pub mod tensor;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use kiln_core::spec::ColumnType;
use serde_json::Value;

use crate::error::ServeError;
use crate::lookup::Lookup;
use column::{ColumnBuilder, kind};
pub use tensor::{Datatype, Tensor, TensorData};

/// One raw input column of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct InputColumn {
    pub name: String,
    pub dtype: ColumnType,
}

impl InputColumn {
    /// The V2 datatype a client should send.
    pub fn v2_datatype(&self) -> &'static str {
        match self.dtype {
            ColumnType::Int => "INT64",
            ColumnType::Float => "FP64",
            ColumnType::Bool => "BOOL",
            ColumnType::String | ColumnType::Timestamp => "BYTES",
        }
    }

    /// The Arrow type of its decoded column.
    pub fn arrow_type(&self) -> DataType {
        match self.dtype {
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::String | ColumnType::Timestamp => DataType::Utf8,
        }
    }
}

/// The model's input columns and the Arrow schema of a decoded batch.
#[derive(Debug, Clone)]
pub struct InputSchema {
    pub columns: Vec<InputColumn>,
    pub arrow: SchemaRef,
    /// Most rows one request may carry.
    pub max_rows: usize,
    /// Columns a request may leave out, looked up by key (`transform.lookup`).
    pub lookup: Option<Lookup>,
}

impl InputSchema {
    pub fn new(columns: Vec<InputColumn>, max_rows: usize) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| Field::new(&c.name, c.arrow_type(), true))
            .collect();
        InputSchema {
            columns,
            arrow: Arc::new(Schema::new(fields)),
            max_rows,
            lookup: None,
        }
    }

    /// Whether a request may leave input column `index` out.
    fn looked_up(&self, index: usize) -> bool {
        self.lookup.as_ref().is_some_and(|l| l.is_looked_up(index))
    }

    /// The looked-up columns, each with no row left out yet.
    fn absent_rows(&self, rows: usize) -> Vec<(usize, Vec<bool>)> {
        self.lookup
            .as_ref()
            .map(|l| l.columns.iter().map(|&c| (c, vec![false; rows])).collect())
            .unwrap_or_default()
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    fn names(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn check_rows(&self, rows: usize) -> Result<(), ServeError> {
        if rows > self.max_rows {
            return Err(ServeError::bad(format!(
                "{rows} rows in one request; the limit is {} (--max-request-rows)",
                self.max_rows
            )));
        }
        if rows == 0 {
            return Err(ServeError::bad("the request has no rows"));
        }
        Ok(())
    }

    /// V1: `instances` as records `{column: value}` (`null` for missing). Every column
    /// must be present, except a looked-up one (then it comes from the feature table);
    /// an unknown key is an error.
    pub fn from_records(&self, instances: &[Value]) -> Result<RecordBatch, ServeError> {
        self.check_rows(instances.len())?;
        let mut builders: Vec<ColumnBuilder> = self
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.dtype, instances.len()))
            .collect();
        let mut absent = self.absent_rows(instances.len());
        for (row, instance) in instances.iter().enumerate() {
            let Value::Object(record) = instance else {
                return Err(ServeError::bad(format!(
                    "instances[{row}]: expected an object of column values, got {}",
                    kind(instance)
                )));
            };
            for key in record.keys() {
                if self.index_of(key).is_none() {
                    return Err(ServeError::bad(format!(
                        "instances[{row}]: unknown column `{key}`; the model takes {}",
                        self.names()
                    )));
                }
            }
            for (index, (column, builder)) in self.columns.iter().zip(&mut builders).enumerate() {
                let value = match record.get(&column.name) {
                    Some(value) => value,
                    None if self.looked_up(index) => {
                        if let Some((_, rows)) = absent.iter_mut().find(|(c, _)| *c == index) {
                            rows[row] = true;
                        }
                        &Value::Null
                    }
                    None => {
                        return Err(ServeError::bad(format!(
                            "instances[{row}]: missing column `{}` (send null for a missing value)",
                            column.name
                        )));
                    }
                };
                builder.push_json(value).map_err(|e| {
                    ServeError::bad(format!("instances[{row}].{}: {e}", column.name))
                })?;
            }
        }
        self.finish(builders, &absent)
    }

    /// V2 (REST and gRPC): one tensor per column, all of the same length; a looked-up
    /// column's tensor may be left out (then it comes from the feature table).
    pub fn from_tensors(&self, tensors: Vec<Tensor>) -> Result<RecordBatch, ServeError> {
        let mut slots: Vec<Option<ColumnBuilder>> = vec![None; self.columns.len()];
        let mut rows: Option<(usize, String)> = None;
        for tensor in tensors {
            let index = self.index_of(&tensor.name).ok_or_else(|| {
                ServeError::bad(format!(
                    "unknown input `{}`; the model takes {}",
                    tensor.name,
                    self.names()
                ))
            })?;
            if slots[index].is_some() {
                return Err(ServeError::bad(format!(
                    "input `{}` is given twice",
                    tensor.name
                )));
            }
            let column = &self.columns[index];
            let n = tensor.rows()?;
            match &rows {
                Some((m, first)) if *m != n => {
                    return Err(ServeError::bad(format!(
                        "input `{}` has {n} rows but `{first}` has {m}",
                        tensor.name
                    )));
                }
                Some(_) => {}
                None => {
                    self.check_rows(n)?;
                    rows = Some((n, tensor.name.clone()));
                }
            }
            slots[index] = Some(tensor.decode(column)?);
        }
        let n = rows.as_ref().map_or(0, |(n, _)| *n);
        let mut absent = self.absent_rows(n);
        let builders = slots
            .into_iter()
            .zip(&self.columns)
            .enumerate()
            .map(|(index, (slot, column))| match slot {
                Some(builder) => Ok(builder),
                None if self.looked_up(index) && n > 0 => {
                    if let Some((_, rows)) = absent.iter_mut().find(|(c, _)| *c == index) {
                        rows.fill(true);
                    }
                    let mut builder = ColumnBuilder::new(column.dtype, n);
                    for _ in 0..n {
                        builder
                            .push_json(&Value::Null)
                            .map_err(|e| ServeError::Internal(e.to_string()))?;
                    }
                    Ok(builder)
                }
                None => Err(ServeError::bad(format!(
                    "missing input `{}` (datatype {}, shape [-1])",
                    column.name,
                    column.v2_datatype()
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.finish(builders, &absent)
    }

    /// The batch, with the rows a request left out of looked-up columns filled from
    /// the feature table.
    fn finish(
        &self,
        builders: Vec<ColumnBuilder>,
        absent: &[(usize, Vec<bool>)],
    ) -> Result<RecordBatch, ServeError> {
        let arrays: Vec<ArrayRef> = builders.into_iter().map(ColumnBuilder::finish).collect();
        let batch = RecordBatch::try_new(self.arrow.clone(), arrays)
            .map_err(|e| ServeError::Internal(format!("building the input batch: {e}")))?;
        match &self.lookup {
            Some(lookup) => lookup.fill(batch, absent),
            None => Ok(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use serde_json::json;

    fn schema() -> InputSchema {
        InputSchema::new(
            vec![
                InputColumn {
                    name: "age".into(),
                    dtype: ColumnType::Int,
                },
                InputColumn {
                    name: "hours".into(),
                    dtype: ColumnType::Float,
                },
                InputColumn {
                    name: "sex".into(),
                    dtype: ColumnType::String,
                },
            ],
            100,
        )
    }

    fn tensor(name: &str, datatype: &str, shape: &[i64], data: TensorData) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn records_and_tensors_give_the_same_batch() {
        let s = schema();
        let records = s
            .from_records(&[
                json!({"age": 39, "hours": 40.5, "sex": "Male"}),
                json!({"age": null, "hours": 20, "sex": null}),
            ])
            .unwrap();
        let tensors = s
            .from_tensors(vec![
                tensor(
                    "sex",
                    "BYTES",
                    &[2],
                    TensorData::Json(vec![json!("Male"), json!(null)]),
                ),
                tensor(
                    "age",
                    "INT64",
                    &[2, 1],
                    TensorData::Json(vec![json!([39]), json!([null])]),
                ),
                tensor("hours", "FP32", &[2], TensorData::Floats(vec![40.5, 20.0])),
            ])
            .unwrap();
        assert_eq!(records, tensors);
        let mut raw = Vec::new();
        for s in ["Male", "Female"] {
            raw.extend((s.len() as u32).to_le_bytes());
            raw.extend(s.as_bytes());
        }
        let from_raw = s
            .from_tensors(vec![
                tensor("sex", "BYTES", &[2], TensorData::Raw(raw)),
                tensor(
                    "age",
                    "INT32",
                    &[2],
                    TensorData::Raw([(-3i32).to_le_bytes(), 7i32.to_le_bytes()].concat()),
                ),
                tensor(
                    "hours",
                    "FP64",
                    &[2],
                    TensorData::Raw([1.5f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat()),
                ),
            ])
            .unwrap();
        let ages = from_raw
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ages.values(), &[-3, 7]);
    }

    #[test]
    fn errors_name_the_input_and_the_problem() {
        let s = schema();
        let err = |r: Result<RecordBatch, ServeError>| r.unwrap_err().to_string();
        assert!(
            err(s.from_records(&[json!({"age": 1, "hours": 2})])).contains("missing column `sex`")
        );
        assert!(
            err(s.from_records(&[json!({"age": 1, "hours": 2, "sex": "M", "x": 1})]))
                .contains("unknown column `x`")
        );
        assert!(
            err(s.from_records(&[json!({"age": "old", "hours": 2, "sex": "M"})]))
                .contains("instances[0].age: expected a number")
        );
        assert!(
            err(s.from_records(&[json!({"age": 1.5, "hours": 2, "sex": "M"})]))
                .contains("expected an integer")
        );
        assert!(err(s.from_records(&[json!([1, 2])])).contains("instances[0]: expected an object"));
        assert!(err(s.from_records(&vec![json!({}); 101])).contains("the limit is 100"));
        let ok_sex = || tensor("sex", "BYTES", &[1], TensorData::Json(vec![json!("M")]));
        let ok_hours = || tensor("hours", "FP64", &[1], TensorData::Json(vec![json!(1.0)]));
        let e = err(s.from_tensors(vec![ok_sex(), ok_hours()]));
        assert!(e.contains("missing input `age`"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor("age", "BYTES", &[1], TensorData::Json(vec![json!("1")])),
        ]));
        assert!(
            e.contains("datatype BYTES does not fit column `age`"),
            "{e}"
        );
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor("age", "INT64", &[2], TensorData::Json(vec![json!(1)])),
        ]));
        assert!(e.contains("has 2 rows but `sex` has 1"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor(
                "age",
                "INT64",
                &[1],
                TensorData::Json(vec![json!(1), json!(2)]),
            ),
        ]));
        assert!(e.contains("says 1 elements but the data has 2"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor(
                "age",
                "INT64",
                &[1, 2],
                TensorData::Json(vec![json!(1), json!(2)]),
            ),
        ]));
        assert!(e.contains("shape [1, 2] is not supported"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_hours(),
            tensor("age", "INT64", &[1], TensorData::Json(vec![json!(1)])),
            tensor(
                "sex",
                "BYTES",
                &[1],
                TensorData::Bytes(vec![vec![0xff, 0xfe]]),
            ),
        ]));
        assert!(e.contains("input `sex`: element 0: is not UTF-8"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor("age", "INT64", &[1], TensorData::Json(vec![json!("x")])),
        ]));
        assert!(e.contains("input `age`: element 0"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor("age", "INT64", &[1], TensorData::Raw(vec![1, 2, 3])),
        ]));
        assert!(e.contains("raw contents have 3 bytes"), "{e}");
        let e = err(s.from_tensors(vec![
            ok_sex(),
            ok_hours(),
            tensor("age", "INT65", &[1], TensorData::Json(vec![json!(1)])),
        ]));
        assert!(e.contains("unknown datatype `INT65`"), "{e}");
    }
}
