//! Applying a fitted transform: to a record batch (train, evaluate, batch scoring)
//! and to one JSON record (the model server), through the same per-value encoders.

use arrow::array::Array;
use arrow::record_batch::RecordBatch;

use kiln_core::error::{Error, Result};
use kiln_core::spec::{DerivedSpec, LookupSpec};
use kiln_stats::profile::{category_key, numeric_values};

use serde::{Deserialize, Serialize};

use crate::derive_batch;
use crate::feature::{Feature, TRANSFORM_FORMAT};

/// A fitted transform: an ordered list of features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedTransform {
    pub format_version: u32,
    /// Derived columns (`transform.derived`), computed from the raw inputs before the
    /// features read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedSpec>,
    pub features: Vec<Feature>,
    /// Inputs a served request may leave out: the model server looks them up by the
    /// entity key in a feature table (`transform.lookup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupSpec>,
    /// Names of the output columns, in order (derived; written for readers of the file).
    pub output_names: Vec<String>,
}

/// A dense row-major f32 matrix of transformed features.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl FeatureMatrix {
    /// One row's features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }
}

impl FittedTransform {
    pub(crate) fn new(
        derived: Vec<DerivedSpec>,
        features: Vec<Feature>,
        lookup: Option<LookupSpec>,
    ) -> Self {
        let output_names = features
            .iter()
            .flat_map(|f| match f {
                Feature::Numeric(n) => n.names(),
                Feature::Categorical(c) => c.names(),
            })
            .collect();
        FittedTransform {
            format_version: TRANSFORM_FORMAT,
            derived,
            features,
            lookup,
            output_names,
        }
    }

    /// Number of output features.
    pub fn width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// The raw input columns the transform reads: each feature's column, or for a
    /// derived column the columns its expression reads; then the lookup's entity key,
    /// which a served request carries to find the looked-up columns.
    pub fn input_columns(&self) -> Vec<&str> {
        let mut columns = Vec::new();
        for feature in &self.features {
            let inputs = match self.derived_column(feature.column()) {
                Some(derived) => derived.expr.columns(),
                None => vec![feature.column()],
            };
            for input in inputs {
                if !columns.contains(&input) {
                    columns.push(input);
                }
            }
        }
        if let Some(lookup) = &self.lookup
            && !columns.contains(&lookup.key.as_str())
        {
            columns.push(&lookup.key);
        }
        columns
    }

    fn derived_column(&self, name: &str) -> Option<&DerivedSpec> {
        self.derived.iter().find(|d| d.name == name)
    }

    /// Parses `transform.json`.
    pub fn from_json(bytes: &[u8], uri: &str) -> Result<Self> {
        #[expect(clippy::disallowed_methods, reason = "the transform's own reader")]
        let mut transform: FittedTransform = kiln_core::store::parse_json(bytes, uri)?;
        if transform.format_version != TRANSFORM_FORMAT {
            return Err(Error::Invalid(format!(
                "{uri}: transform format {} is not supported (expected {TRANSFORM_FORMAT})",
                transform.format_version
            )));
        }
        for feature in &mut transform.features {
            if let Feature::Categorical(c) = feature {
                c.build_index();
            }
        }
        let expected = FittedTransform::new(
            transform.derived.clone(),
            transform.features.clone(),
            transform.lookup.clone(),
        )
        .output_names;
        if transform.output_names != expected {
            return Err(Error::Invalid(format!(
                "{uri}: output_names do not match the features (file edited by hand?)"
            )));
        }
        Ok(transform)
    }

    /// Applies the transform to a record batch whose columns carry the input names.
    pub fn apply_batch(&self, batch: &RecordBatch) -> Result<FeatureMatrix> {
        let rows = batch.num_rows();
        let cols = self.width();
        let mut values = vec![0f32; rows * cols];
        let mut offset = 0;
        for feature in &self.features {
            let width = feature.width();
            // A derived column is computed from the raw inputs, as for one record.
            if let (Feature::Numeric(f), Some(derived)) =
                (feature, self.derived_column(feature.column()))
            {
                for (row, x) in derive_batch(batch, derived)?.into_iter().enumerate() {
                    let start = row * cols + offset;
                    f.encode(x, &mut values[start..start + width]);
                }
                offset += width;
                continue;
            }
            let array = batch.column_by_name(feature.column()).ok_or_else(|| {
                Error::usage(format!(
                    "transform input column `{}` is missing",
                    feature.column()
                ))
            })?;
            match feature {
                Feature::Numeric(f) => {
                    let xs = numeric_values(array.as_ref());
                    if xs.len() != rows {
                        return Err(Error::usage(format!(
                            "transform input column `{}` has type {}, expected int or float",
                            f.column,
                            array.data_type()
                        )));
                    }
                    for (row, x) in xs.into_iter().enumerate() {
                        let start = row * cols + offset;
                        f.encode(x, &mut values[start..start + width]);
                    }
                }
                Feature::Categorical(f) => {
                    check_categorical_type(&f.column, array.as_ref())?;
                    for row in 0..rows {
                        let key = category_key(array.as_ref(), row);
                        let start = row * cols + offset;
                        f.encode(key.as_deref(), &mut values[start..start + width]);
                    }
                }
            }
            offset += width;
        }
        Ok(FeatureMatrix { rows, cols, values })
    }

    /// Applies the transform to one JSON record (`{"age": 39, "workclass": "Private"}`);
    /// a missing key or `null` is a missing value.
    pub fn apply_record(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.width()];
        let mut offset = 0;
        for feature in &self.features {
            let width = feature.width();
            let value = record.get(feature.column()).filter(|v| !v.is_null());
            let slot = &mut out[offset..offset + width];
            match feature {
                Feature::Numeric(f) => {
                    // A derived column is computed from the record's raw fields.
                    let x = match self.derived_column(&f.column) {
                        Some(derived) => {
                            let inputs = derived
                                .expr
                                .columns()
                                .into_iter()
                                .map(|name| Ok((name, record_number(record, name)?)))
                                .collect::<Result<Vec<_>>>()?;
                            derived.expr.eval(&|name| {
                                inputs
                                    .iter()
                                    .find(|(n, _)| *n == name)
                                    .and_then(|(_, x)| *x)
                            })
                        }
                        None => record_number(record, &f.column)?,
                    };
                    f.encode(x, slot);
                }
                Feature::Categorical(f) => {
                    let key = match value {
                        None => None,
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                        Some(serde_json::Value::Number(n)) => {
                            Some(n.as_i64().map(|i| i.to_string()).ok_or_else(|| {
                                Error::usage(format!(
                                    "field `{}`: expected a category, got {n}",
                                    f.column
                                ))
                            })?)
                        }
                        Some(other) => {
                            return Err(Error::usage(format!(
                                "field `{}`: expected a category, got {other}",
                                f.column
                            )));
                        }
                    };
                    f.encode(key.as_deref(), slot);
                }
            }
            offset += width;
        }
        Ok(out)
    }
}

/// A record's numeric field: a missing key or `null` is missing; anything but a number
/// is a usage error naming the field.
fn record_number(
    record: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<f64>> {
    match record.get(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::usage(format!("field `{name}`: expected a number, got {v}"))),
    }
}

fn check_categorical_type(column: &str, array: &dyn Array) -> Result<()> {
    use arrow::datatypes::DataType::*;
    match array.data_type() {
        Utf8 | LargeUtf8 | Utf8View | Int64 | Boolean => Ok(()),
        other => Err(Error::usage(format!(
            "transform input column `{column}` has type {other}, expected string, int or bool"
        ))),
    }
}
