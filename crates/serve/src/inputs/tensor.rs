//! V2 tensors: datatypes, the forms a protocol delivers elements in, and their
//! decoding into a column (shape and datatype checks, raw little-endian bytes).

use serde_json::Value;

use super::InputColumn;
use super::column::ColumnBuilder;
use crate::error::ServeError;
use kiln_core::spec::ColumnType;

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
    pub(super) fn rows(&self) -> Result<usize, ServeError> {
        match self.shape.as_slice() {
            [n] | [n, 1] if *n >= 0 => Ok(*n as usize),
            other => Err(ServeError::bad(format!(
                "input `{}`: shape {other:?} is not supported; expected [n] or [n, 1] (one value per row)",
                self.name
            ))),
        }
    }

    pub(super) fn decode(self, column: &InputColumn) -> Result<ColumnBuilder, ServeError> {
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
