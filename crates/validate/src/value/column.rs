//! A column normalised once per batch to one of the physical kinds, and the names
//! GE gives each Arrow type.

use super::*;

/// A column normalised to one of the physical kinds.
pub enum Column {
    Int(Int64Array),
    Float(Float64Array),
    /// Text, as Parquet stores it: a key per row into the batch's distinct values, so
    /// a check tests each distinct value once and then counts keys (see
    /// [`Column::codes`]). Plain text (CSV, Parquet without dictionary pages) is
    /// dictionary-encoded once per batch here.
    Text {
        keys: Int32Array,
        values: StringArray,
    },
    Bool(BooleanArray),
    Ts(TimestampMicrosecondArray),
}

impl Column {
    /// Normalises any supported Arrow array; other types are read as their text.
    pub fn new(array: &ArrayRef) -> Result<Column, arrow::error::ArrowError> {
        use arrow::compute::cast;
        Ok(match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Column::Int(
                cast(array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _) => Column::Float(
                cast(array, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                let target = DataType::Timestamp(TimeUnit::Microsecond, None);
                let array = match array.data_type() {
                    DataType::Timestamp(_, Some(_)) => {
                        // Drop the zone: values are UTC already.
                        let tz_free = cast(
                            array,
                            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                        )?;
                        let values = tz_free.as_primitive::<TimestampMicrosecondType>().clone();
                        std::sync::Arc::new(values.with_timezone_opt(None::<String>)) as ArrayRef
                    }
                    _ => cast(array, &target)?,
                };
                Column::Ts(array.as_primitive::<TimestampMicrosecondType>().clone())
            }
            DataType::Dictionary(_, value) if !matches!(**value, DataType::Utf8) => {
                Column::new(&cast(array, value)?)?
            }
            // Text, and any other type read as its text.
            _ => {
                let text_dictionary =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                let array = match array.data_type() {
                    DataType::Utf8 | DataType::Dictionary(_, _) => array.clone(),
                    _ => cast(array, &DataType::Utf8)?,
                };
                let dict = cast(&array, &text_dictionary)?;
                let dict = dict.as_dictionary::<Int32Type>();
                Column::Text {
                    keys: dict.keys().clone(),
                    values: dict.values().as_string::<i32>().clone(),
                }
            }
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Int(a) => a.len(),
            Column::Float(a) => a.len(),
            Column::Text { keys, .. } => keys.len(),
            Column::Bool(a) => a.len(),
            Column::Ts(a) => a.len(),
        }
    }

    /// Missing values (nulls, and NaN in float columns), without a per-row match.
    pub fn null_count(&self) -> usize {
        match self {
            Column::Int(a) => a.null_count(),
            Column::Float(a) => {
                let nan = a.iter().filter(|v| v.is_some_and(f64::is_nan)).count();
                a.null_count() + nan
            }
            Column::Text { keys, values } if values.null_count() == 0 => keys.null_count(),
            Column::Text { .. } => (0..self.len()).filter(|&i| self.get(i).is_null()).count(),
            Column::Bool(a) => a.null_count(),
            Column::Ts(a) => a.null_count(),
        }
    }

    /// The value in row `i`; NaN is null.
    #[inline]
    pub fn get(&self, i: usize) -> Val<'_> {
        match self {
            Column::Int(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Int(a.value(i))
                }
            }
            Column::Float(a) => {
                let v = a.value(i);
                if a.is_null(i) || v.is_nan() {
                    Val::Null
                } else {
                    Val::Float(v)
                }
            }
            Column::Text { keys, values } => {
                let k = keys.value(i) as usize;
                if keys.is_null(i) || values.is_null(k) {
                    Val::Null
                } else {
                    Val::Str(values.value(k))
                }
            }
            Column::Bool(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Bool(a.value(i))
                }
            }
            Column::Ts(a) => {
                if a.is_null(i) {
                    Val::Null
                } else {
                    Val::Ts(a.value(i))
                }
            }
        }
    }
}

impl Column {
    /// For text: per row, the index of its value in the batch's dictionary (`None` for
    /// a missing value), and the dictionary's values. A value
    /// may be listed more than once or not used at all; a check that works per
    /// distinct value tests each listed one once and then only counts keys.
    pub fn codes(&self) -> Option<(impl Iterator<Item = Option<usize>> + '_, &StringArray)> {
        let Column::Text { keys, values } = self else {
            return None;
        };
        let rows = (0..keys.len()).map(move |i| {
            let k = keys.value(i) as usize;
            (!keys.is_null(i) && !values.is_null(k)).then_some(k)
        });
        Some((rows, values))
    }
}

/// The type name pandas reports for a column read from this Arrow type (`dtype.type.__name__`),
/// and the other names a suite may use for it.
pub fn type_names(data_type: &DataType) -> (&'static str, &'static [&'static str]) {
    match data_type {
        DataType::Int64 => (
            "int64",
            &[
                "int64", "Int64", "int", "integer", "INTEGER", "BIGINT", "long",
            ],
        ),
        DataType::Int32 => (
            "int32",
            &["int32", "Int32", "int", "integer", "INTEGER", "INT"],
        ),
        DataType::Int16 => ("int16", &["int16", "Int16", "int", "integer", "SMALLINT"]),
        DataType::Int8 => ("int8", &["int8", "Int8", "int", "integer", "TINYINT"]),
        DataType::UInt64 => ("uint64", &["uint64", "UInt64", "int", "integer"]),
        DataType::UInt32 => ("uint32", &["uint32", "UInt32", "int", "integer"]),
        DataType::UInt16 => ("uint16", &["uint16", "UInt16", "int", "integer"]),
        DataType::UInt8 => ("uint8", &["uint8", "UInt8", "int", "integer"]),
        DataType::Float64 => (
            "float64",
            &[
                "float64", "Float64", "float", "double", "FLOAT", "DOUBLE", "number",
            ],
        ),
        DataType::Float32 => (
            "float32",
            &["float32", "Float32", "float", "FLOAT", "REAL", "number"],
        ),
        DataType::Float16 => ("float16", &["float16", "float", "number"]),
        DataType::Boolean => ("bool", &["bool", "bool_", "boolean", "BOOLEAN"]),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (
            "str",
            &[
                "str",
                "string",
                "String",
                "StringDtype",
                "STRING",
                "VARCHAR",
                "TEXT",
            ],
        ),
        DataType::Timestamp(_, Some(_)) => (
            "Timestamp",
            &[
                "Timestamp",
                "DatetimeTZDtype",
                "datetime64[ns, UTC]",
                "datetime64[us, UTC]",
                "datetime",
                "TIMESTAMP",
            ],
        ),
        DataType::Timestamp(_, None) => (
            "datetime64",
            &[
                "datetime64",
                "datetime64[ns]",
                "datetime64[us]",
                "datetime",
                "TIMESTAMP",
            ],
        ),
        DataType::Date32 | DataType::Date64 => ("date", &["date", "DATE", "object"]),
        _ => ("object_", &["object", "object_", "O"]),
    }
}
