//! Requests to rows: the model's raw input columns, and the decoding of V1 records and
//! V2 tensors (JSON or gRPC) into one Arrow record batch — the same shape of batch
//! evaluate scores, so the transform and the model see identical inputs whatever the
//! protocol. Every error names the input, column, row or element, and what was expected.
//!
//! Missing values: JSON `null` anywhere; an empty text (as prepare's CSV reading treats
//! an empty field); NaN in a number tensor (binary tensors have no null).

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use kiln_core::spec::ColumnType;
use serde_json::Value;

use crate::error::ServeError;

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

    fn arrow_type(&self) -> DataType {
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
        }
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
    /// must be present; an unknown key is an error.
    pub fn from_records(&self, instances: &[Value]) -> Result<RecordBatch, ServeError> {
        self.check_rows(instances.len())?;
        let mut builders: Vec<ColumnBuilder> = self
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.dtype, instances.len()))
            .collect();
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
            for (column, builder) in self.columns.iter().zip(&mut builders) {
                let value = record.get(&column.name).ok_or_else(|| {
                    ServeError::bad(format!(
                        "instances[{row}]: missing column `{}` (send null for a missing value)",
                        column.name
                    ))
                })?;
                builder.push_json(value).map_err(|e| {
                    ServeError::bad(format!("instances[{row}].{}: {e}", column.name))
                })?;
            }
        }
        self.finish(builders)
    }

    /// V2 (REST and gRPC): one tensor per column, all of the same length.
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
        let builders = slots
            .into_iter()
            .zip(&self.columns)
            .map(|(slot, column)| {
                slot.ok_or_else(|| {
                    ServeError::bad(format!(
                        "missing input `{}` (datatype {}, shape [-1])",
                        column.name,
                        column.v2_datatype()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.finish(builders)
    }

    fn finish(&self, builders: Vec<ColumnBuilder>) -> Result<RecordBatch, ServeError> {
        let arrays: Vec<ArrayRef> = builders.into_iter().map(ColumnBuilder::finish).collect();
        RecordBatch::try_new(self.arrow.clone(), arrays)
            .map_err(|e| ServeError::Internal(format!("building the input batch: {e}")))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A V2 datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Int(u8),
    Uint(u8),
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    pub fn parse(text: &str) -> Option<Datatype> {
        Some(match text {
            "BOOL" => Datatype::Bool,
            "INT8" => Datatype::Int(8),
            "INT16" => Datatype::Int(16),
            "INT32" => Datatype::Int(32),
            "INT64" => Datatype::Int(64),
            "UINT8" => Datatype::Uint(8),
            "UINT16" => Datatype::Uint(16),
            "UINT32" => Datatype::Uint(32),
            "UINT64" => Datatype::Uint(64),
            "FP16" => Datatype::Fp16,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            "BYTES" => Datatype::Bytes,
            _ => return None,
        })
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Datatype::Int(_) | Datatype::Uint(_) | Datatype::Fp32 | Datatype::Fp64
        )
    }

    /// Bytes per element in raw (binary) form; `None` for BYTES.
    fn width(self) -> Option<usize> {
        match self {
            Datatype::Bool => Some(1),
            Datatype::Int(bits) | Datatype::Uint(bits) => Some(usize::from(bits / 8)),
            Datatype::Fp16 => Some(2),
            Datatype::Fp32 => Some(4),
            Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }
}

/// The elements of a tensor, as a protocol delivered them.
#[derive(Debug, Clone)]
pub enum TensorData {
    /// V2 REST: JSON values, flat or nested to the shape.
    Json(Vec<Value>),
    Bools(Vec<bool>),
    Ints(Vec<i64>),
    Uints(Vec<u64>),
    Floats(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
    /// gRPC `raw_input_contents`: little-endian elements, BYTES as 4-byte length + bytes.
    Raw(Vec<u8>),
}

/// One input tensor of a V2 request.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

impl Tensor {
    /// The number of rows: the shape must be `[n]` or `[n, 1]` with `n >= 0`.
    fn rows(&self) -> Result<usize, ServeError> {
        match self.shape.as_slice() {
            [n] | [n, 1] if *n >= 0 => Ok(*n as usize),
            other => Err(ServeError::bad(format!(
                "input `{}`: shape {other:?} is not supported; expected [n] or [n, 1] (one value per row)",
                self.name
            ))),
        }
    }

    fn decode(self, column: &InputColumn) -> Result<ColumnBuilder, ServeError> {
        let name = self.name.clone();
        let fail = |e: String| ServeError::bad(format!("input `{name}`: {e}"));
        let datatype = Datatype::parse(&self.datatype)
            .ok_or_else(|| fail(format!("unknown datatype `{}`", self.datatype)))?;
        let accepted = match column.dtype {
            ColumnType::Int | ColumnType::Float => datatype.is_numeric(),
            ColumnType::Bool => datatype == Datatype::Bool,
            ColumnType::String | ColumnType::Timestamp => datatype == Datatype::Bytes,
        };
        if !accepted {
            return Err(fail(format!(
                "datatype {} does not fit column `{}` ({:?}); send {}",
                self.datatype,
                column.name,
                column.dtype,
                column.v2_datatype()
            )));
        }
        let rows = self.rows()?;
        let mut builder = ColumnBuilder::new(column.dtype, rows);
        let count = |n: usize| {
            if n == rows {
                Ok(())
            } else {
                Err(fail(format!(
                    "shape {:?} says {rows} elements but the data has {n}",
                    self.shape
                )))
            }
        };
        let at = |i: usize, e: String| fail(format!("element {i}: {e}"));
        let at2 = |(i, e): (usize, String)| at(i, e);
        match self.data {
            TensorData::Json(values) => {
                let mut flat = Vec::with_capacity(rows);
                for v in values {
                    flatten(v, &mut flat);
                }
                count(flat.len())?;
                for (i, v) in flat.iter().enumerate() {
                    if !v.is_null() {
                        check_json_datatype(v, datatype).map_err(|e| at(i, e))?;
                    }
                    builder.push_json(v).map_err(|e| at(i, e))?;
                }
            }
            TensorData::Bools(values) => {
                count(values.len())?;
                push_each(&mut builder, values, |b, v| b.push_json(&Value::Bool(v)))
                    .map_err(at2)?;
            }
            TensorData::Ints(values) => {
                count(values.len())?;
                push_each(&mut builder, values, ColumnBuilder::push_i64).map_err(at2)?;
            }
            TensorData::Uints(values) => {
                count(values.len())?;
                push_each(&mut builder, values, |b, v| {
                    let v = i64::try_from(v).map_err(|_| format!("{v} is out of range"))?;
                    b.push_i64(v)
                })
                .map_err(at2)?;
            }
            TensorData::Floats(values) => {
                count(values.len())?;
                push_each(&mut builder, values, ColumnBuilder::push_f64).map_err(at2)?;
            }
            TensorData::Bytes(values) => {
                count(values.len())?;
                push_each(&mut builder, values, |b, v| {
                    let text = String::from_utf8(v).map_err(|_| "is not UTF-8".to_string())?;
                    b.push_text(text);
                    Ok(())
                })
                .map_err(at2)?;
            }
            TensorData::Raw(bytes) => {
                decode_raw(&bytes, datatype, rows, &mut builder).map_err(fail)?
            }
        }
        Ok(builder)
    }
}

/// Pushes every element; the first failure comes back with its element number.
fn push_each<T>(
    builder: &mut ColumnBuilder,
    values: Vec<T>,
    push: impl Fn(&mut ColumnBuilder, T) -> Result<(), String>,
) -> Result<(), (usize, String)> {
    for (i, v) in values.into_iter().enumerate() {
        push(builder, v).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

/// A JSON element must match the tensor's declared datatype.
fn check_json_datatype(v: &Value, datatype: Datatype) -> Result<(), String> {
    let ok = match datatype {
        Datatype::Bool => v.is_boolean(),
        Datatype::Int(_) => v.is_i64(),
        Datatype::Uint(_) => v.is_u64(),
        Datatype::Fp16 | Datatype::Fp32 | Datatype::Fp64 => v.is_number(),
        Datatype::Bytes => v.is_string(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{v} is not a {datatype:?} value"))
    }
}

fn decode_raw(
    bytes: &[u8],
    datatype: Datatype,
    rows: usize,
    builder: &mut ColumnBuilder,
) -> Result<(), String> {
    let Some(width) = datatype.width() else {
        // BYTES: each element is a 4-byte little-endian length, then the bytes.
        let mut at = 0;
        for i in 0..rows {
            let len = bytes
                .get(at..at + 4)
                .ok_or_else(|| format!("raw contents end before element {i}"))?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            at += 4;
            let item = bytes
                .get(at..at + len)
                .ok_or_else(|| format!("raw contents end inside element {i}"))?;
            at += len;
            let text =
                std::str::from_utf8(item).map_err(|_| format!("element {i} is not UTF-8"))?;
            builder.push_text(text.to_string());
        }
        if at != bytes.len() {
            return Err(format!(
                "raw contents have {} bytes after the {rows} elements",
                bytes.len() - at
            ));
        }
        return Ok(());
    };
    if datatype == Datatype::Fp16 {
        return Err("datatype FP16 is not supported; send FP32 or FP64".into());
    }
    if bytes.len() != rows * width {
        return Err(format!(
            "raw contents have {} bytes; {rows} {datatype:?} elements take {}",
            bytes.len(),
            rows * width
        ));
    }
    for (i, chunk) in bytes.chunks_exact(width).enumerate() {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(chunk);
        let result = match datatype {
            Datatype::Bool => builder.push_json(&Value::Bool(chunk[0] != 0)),
            Datatype::Int(bits) => {
                // Sign-extend from `bits`.
                let raw = i64::from_le_bytes(b);
                let shift = 64 - u32::from(bits);
                builder.push_i64((raw << shift) >> shift)
            }
            Datatype::Uint(_) => {
                let raw = u64::from_le_bytes(b);
                match i64::try_from(raw) {
                    Ok(v) => builder.push_i64(v),
                    Err(_) => Err(format!("{raw} is out of range")),
                }
            }
            Datatype::Fp32 => {
                builder.push_f64(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Datatype::Fp64 => builder.push_f64(f64::from_le_bytes(b)),
            Datatype::Fp16 | Datatype::Bytes => unreachable!("handled above"),
        };
        result.map_err(|e| format!("element {i}: {e}"))?;
    }
    Ok(())
}

/// Values of one column as they are decoded.
#[derive(Debug, Clone)]
enum ColumnBuilder {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl ColumnBuilder {
    fn new(dtype: ColumnType, rows: usize) -> Self {
        match dtype {
            ColumnType::Int => ColumnBuilder::Int(Vec::with_capacity(rows)),
            ColumnType::Float => ColumnBuilder::Float(Vec::with_capacity(rows)),
            ColumnType::Bool => ColumnBuilder::Bool(Vec::with_capacity(rows)),
            ColumnType::String | ColumnType::Timestamp => {
                ColumnBuilder::Text(Vec::with_capacity(rows))
            }
        }
    }

    fn push_json(&mut self, v: &Value) -> Result<(), String> {
        if v.is_null() {
            match self {
                ColumnBuilder::Int(x) => x.push(None),
                ColumnBuilder::Float(x) => x.push(None),
                ColumnBuilder::Text(x) => x.push(None),
                ColumnBuilder::Bool(x) => x.push(None),
            }
            return Ok(());
        }
        match self {
            ColumnBuilder::Int(_) | ColumnBuilder::Float(_) => match v.as_f64() {
                Some(f) if v.is_i64() => self.push_i64(v.as_i64().unwrap_or(f as i64)),
                Some(f) => self.push_f64(f),
                None => Err(format!("expected a number, got {}", kind(v))),
            },
            ColumnBuilder::Text(x) => match v {
                Value::String(s) => {
                    // An empty text is missing, as in prepare's CSV reading.
                    x.push((!s.is_empty()).then(|| s.clone()));
                    Ok(())
                }
                other => Err(format!("expected a string, got {}", kind(other))),
            },
            ColumnBuilder::Bool(x) => match v {
                Value::Bool(b) => {
                    x.push(Some(*b));
                    Ok(())
                }
                other => Err(format!("expected true or false, got {}", kind(other))),
            },
        }
    }

    fn push_i64(&mut self, v: i64) -> Result<(), String> {
        match self {
            ColumnBuilder::Int(x) => x.push(Some(v)),
            ColumnBuilder::Float(x) => x.push(Some(v as f64)),
            _ => {
                return Err(format!(
                    "expected a {}, got the number {v}",
                    self.expected()
                ));
            }
        }
        Ok(())
    }

    fn push_f64(&mut self, v: f64) -> Result<(), String> {
        if v.is_nan() {
            // NaN is a missing number (binary tensors have no null).
            match self {
                ColumnBuilder::Float(x) => x.push(None),
                ColumnBuilder::Int(x) => x.push(None),
                _ => return Err(format!("expected a {}, got NaN", self.expected())),
            }
            return Ok(());
        }
        if !v.is_finite() {
            return Err(format!("{v} is not a finite number"));
        }
        match self {
            ColumnBuilder::Float(x) => x.push(Some(v)),
            ColumnBuilder::Int(x) => {
                if v.fract() != 0.0 || v.abs() > 9.007_199_254_740_992e15 {
                    return Err(format!("expected an integer, got {v}"));
                }
                x.push(Some(v as i64));
            }
            _ => {
                return Err(format!(
                    "expected a {}, got the number {v}",
                    self.expected()
                ));
            }
        }
        Ok(())
    }

    fn push_text(&mut self, v: String) {
        if let ColumnBuilder::Text(x) = self {
            x.push((!v.is_empty()).then_some(v));
        }
    }

    fn expected(&self) -> &'static str {
        match self {
            ColumnBuilder::Int(_) => "integer",
            ColumnBuilder::Float(_) => "number",
            ColumnBuilder::Text(_) => "string",
            ColumnBuilder::Bool(_) => "boolean",
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(x) => Arc::new(Int64Array::from(x)),
            ColumnBuilder::Float(x) => Arc::new(Float64Array::from(x)),
            ColumnBuilder::Text(x) => Arc::new(StringArray::from(x)),
            ColumnBuilder::Bool(x) => Arc::new(BooleanArray::from(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
