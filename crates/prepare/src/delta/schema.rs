//! A Delta table's schema (`metaData.schemaString`, Spark's struct JSON) and Arrow's,
//! for the primitive types prepare reads and writes.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"type": "struct", "fields": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
struct StructType {
    #[serde(rename = "type")]
    kind: String,
    fields: Vec<StructField>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StructField {
    name: String,
    #[serde(rename = "type")]
    kind: Value,
    nullable: bool,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

/// Delta's name of an Arrow type; `None` for a type Delta has no primitive for here.
fn delta_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Int8 => "byte".into(),
        DataType::Int16 => "short".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 => "date".into(),
        // Delta's `timestamp` is microseconds since the epoch, adjusted to UTC.
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamp".into(),
        DataType::Decimal128(precision, scale) => format!("decimal({precision},{scale})"),
        _ => return None,
    })
}

fn arrow_type(delta: &str) -> Option<DataType> {
    Some(match delta {
        "byte" => DataType::Int8,
        "short" => DataType::Int16,
        "integer" => DataType::Int32,
        "long" => DataType::Int64,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "string" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => {
            let inner = other.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (precision, scale) = inner.split_once(',')?;
            DataType::Decimal128(precision.trim().parse().ok()?, scale.trim().parse().ok()?)
        }
    })
}

/// The `schemaString` of an Arrow schema.
pub fn to_delta(schema: &Schema) -> Result<String, String> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            let kind = delta_type(f.data_type()).ok_or_else(|| {
                format!(
                    "column `{}`: type {} has no Delta equivalent here",
                    f.name(),
                    f.data_type()
                )
            })?;
            Ok(StructField {
                name: f.name().clone(),
                kind: Value::String(kind),
                nullable: f.is_nullable(),
                metadata: Default::default(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    serde_json::to_string(&StructType {
        kind: "struct".into(),
        fields,
    })
    .map_err(|e| e.to_string())
}

/// The Arrow schema of a `schemaString` (primitive columns only).
pub fn to_arrow(schema_string: &str) -> Result<Schema, String> {
    let parsed: StructType =
        serde_json::from_str(schema_string).map_err(|e| format!("schemaString: {e}"))?;
    let fields = parsed
        .fields
        .iter()
        .map(|f| {
            let kind = f.kind.as_str().and_then(arrow_type).ok_or_else(|| {
                format!(
                    "column `{}`: Delta type {} is not supported here (primitive types only)",
                    f.name, f.kind
                )
            })?;
            Ok(Field::new(&f.name, kind, f.nullable))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_schemas_go_both_ways() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(10, 2), true),
        ]);
        let text = to_delta(&schema).unwrap();
        assert!(
            text.contains(r#"{"name":"id","type":"long","nullable":false,"metadata":{}}"#),
            "{text}"
        );
        assert_eq!(to_arrow(&text).unwrap(), schema);
        let err =
            to_delta(&Schema::new(vec![Field::new("u", DataType::UInt64, true)])).unwrap_err();
        assert!(err.contains("column `u`"), "{err}");
        let err = to_arrow(r#"{"type":"struct","fields":[{"name":"m","type":{"type":"map"},"nullable":true,"metadata":{}}]}"#).unwrap_err();
        assert!(err.contains("column `m`"), "{err}");
    }
}
