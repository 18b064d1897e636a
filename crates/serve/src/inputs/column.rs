//! Typed column builders: the values of one input column as they are decoded, with the
//! missing-value rules (null, empty text, NaN) in one place.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use kiln_core::spec::ColumnType;
use serde_json::Value;

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Values of one column as they are decoded.
#[derive(Debug, Clone)]
pub(super) enum ColumnBuilder {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl ColumnBuilder {
    pub(super) fn new(dtype: ColumnType, rows: usize) -> Self {
        match dtype {
            ColumnType::Int => ColumnBuilder::Int(Vec::with_capacity(rows)),
            ColumnType::Float => ColumnBuilder::Float(Vec::with_capacity(rows)),
            ColumnType::Bool => ColumnBuilder::Bool(Vec::with_capacity(rows)),
            ColumnType::String | ColumnType::Timestamp => {
                ColumnBuilder::Text(Vec::with_capacity(rows))
            }
        }
    }

    pub(super) fn push_json(&mut self, v: &Value) -> Result<(), String> {
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

    pub(super) fn push_i64(&mut self, v: i64) -> Result<(), String> {
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

    pub(super) fn push_f64(&mut self, v: f64) -> Result<(), String> {
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

    pub(super) fn push_text(&mut self, v: String) {
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

    pub(super) fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(x) => Arc::new(Int64Array::from(x)),
            ColumnBuilder::Float(x) => Arc::new(Float64Array::from(x)),
            ColumnBuilder::Text(x) => Arc::new(StringArray::from(x)),
            ColumnBuilder::Bool(x) => Arc::new(BooleanArray::from(x)),
        }
    }
}
