//! The one feature transform: fitted once by prepare on the train split, saved as
//! `transform.json`, applied by train, evaluate and serve through this code alone.
//!
//! Record batches and single JSON records go through the same per-value functions
//! ([`NumericFeature::encode`], [`CategoricalFeature::encode`]), so both give the same
//! bits by construction. Every fitted number is an f64 that JSON round-trips exactly
//! (serde_json's `float_roundtrip`), so a reloaded transform gives bit-identical output.

use std::collections::HashMap;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::profile::{Moments, TableProfiler, category_key, numeric_values};
use crate::spec::{
    BucketSpec, CategoricalEncoding, ColumnSpec, ColumnType, Impute, MissingCategory, TransformSpec,
};

/// Version of the `transform.json` format.
pub const TRANSFORM_FORMAT: u32 = 1;

/// A fitted transform: an ordered list of features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedTransform {
    pub format_version: u32,
    pub features: Vec<Feature>,
    /// Names of the output columns, in order (derived; written for readers of the file).
    pub output_names: Vec<String>,
}

/// One fitted feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    Numeric(NumericFeature),
    Categorical(CategoricalFeature),
}

/// A fitted numeric feature: impute → clip → log1p → standardise (+ buckets, indicator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericFeature {
    pub column: String,
    /// Value used for a missing input.
    pub impute: f64,
    pub clip_min: Option<f64>,
    pub clip_max: Option<f64>,
    pub log1p: bool,
    /// Mean and population std of the pre-scaling value on train, when standardising.
    pub scale: Option<Scale>,
    /// Ascending bucket edges over the pre-scaling value; n edges → n + 1 one-hot outputs.
    pub buckets: Option<Vec<f64>>,
    pub missing_indicator: bool,
    /// Ascending piecewise-linear bin edges over the pre-scaling value (train
    /// quantiles, min and max included); n edges → n − 1 outputs in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piecewise_linear: Option<Vec<f64>>,
}

/// Standardisation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub mean: f64,
    pub std: f64,
}

/// A fitted categorical feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoricalFeature {
    pub column: String,
    /// Known categories, most frequent first.
    pub vocabulary: Vec<String>,
    /// Train counts of the known categories, aligned with `vocabulary`.
    pub counts: Vec<u64>,
    pub encoding: CategoricalEncoding,
    pub missing: MissingCategory,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl PartialEq for CategoricalFeature {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column
            && self.vocabulary == other.vocabulary
            && self.counts == other.counts
            && self.encoding == other.encoding
            && self.missing == other.missing
    }
}

impl NumericFeature {
    /// Output width.
    pub fn width(&self) -> usize {
        1 + usize::from(self.missing_indicator)
            + self.buckets.as_ref().map_or(0, |b| b.len() + 1)
            + self.piecewise_bins()
    }

    /// Number of piecewise-linear outputs.
    pub fn piecewise_bins(&self) -> usize {
        self.piecewise_linear
            .as_ref()
            .map_or(0, |e| e.len().saturating_sub(1))
    }

    /// The value after impute, clip and log1p (before scaling): what buckets and
    /// standardisation are fitted on.
    fn base_value(&self, x: Option<f64>) -> f64 {
        let mut v = x.unwrap_or(self.impute);
        if let Some(lo) = self.clip_min {
            v = v.max(lo);
        }
        if let Some(hi) = self.clip_max {
            v = v.min(hi);
        }
        if self.log1p {
            v = v.ln_1p();
        }
        v
    }

    /// Writes this feature's outputs for one value into `out` (length [`width`](Self::width)).
    pub fn encode(&self, x: Option<f64>, out: &mut [f32]) {
        let base = self.base_value(x);
        out[0] = match self.scale {
            Some(s) => ((base - s.mean) / s.std) as f32,
            None => base as f32,
        };
        let mut at = 1;
        if self.missing_indicator {
            out[at] = if x.is_none() { 1.0 } else { 0.0 };
            at += 1;
        }
        if let Some(edges) = &self.buckets {
            // Bucket i holds edges[i-1] <= v < edges[i].
            let bucket = edges.partition_point(|edge| *edge <= base);
            for (i, slot) in out[at..at + edges.len() + 1].iter_mut().enumerate() {
                *slot = if i == bucket { 1.0 } else { 0.0 };
            }
            at += edges.len() + 1;
        }
        if let Some(edges) = &self.piecewise_linear {
            // Bin t covers [edges[t], edges[t+1]]: 0 below it, 1 above, linear inside.
            // Values outside the train range saturate (0 or 1) rather than grow.
            for (slot, pair) in out[at..].iter_mut().zip(edges.windows(2)) {
                *slot = ((base - pair[0]) / (pair[1] - pair[0])).clamp(0.0, 1.0) as f32;
            }
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names = vec![self.column.clone()];
        if self.missing_indicator {
            names.push(format!("{}__missing", self.column));
        }
        if let Some(edges) = &self.buckets {
            names.extend((0..=edges.len()).map(|i| format!("{}__bucket_{i}", self.column)));
        }
        names.extend((0..self.piecewise_bins()).map(|i| format!("{}__ple_{i}", self.column)));
        names
    }
}

impl CategoricalFeature {
    fn new(
        column: String,
        vocabulary: Vec<String>,
        counts: Vec<u64>,
        encoding: CategoricalEncoding,
        missing: MissingCategory,
    ) -> Self {
        let mut feature = CategoricalFeature {
            column,
            vocabulary,
            counts,
            encoding,
            missing,
            index: HashMap::new(),
        };
        feature.build_index();
        feature
    }

    fn build_index(&mut self) {
        self.index = self
            .vocabulary
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect();
    }

    /// Output width: one per category + unknown (+ missing) for one-hot; 1 for index.
    pub fn width(&self) -> usize {
        match self.encoding {
            CategoricalEncoding::OneHot => {
                self.vocabulary.len() + 1 + usize::from(self.missing == MissingCategory::Separate)
            }
            CategoricalEncoding::Index => 1,
        }
    }

    /// The number of distinct codes (for an embedding table): unknown, the categories,
    /// and missing when it is separate.
    pub fn cardinality(&self) -> usize {
        self.vocabulary.len() + 1 + usize::from(self.missing == MissingCategory::Separate)
    }

    /// The code of a value: 0 = unknown, 1..=n the categories, n + 1 = missing (if separate).
    pub fn code(&self, key: Option<&str>) -> usize {
        match key {
            Some(k) => self.index.get(k).map_or(0, |i| i + 1),
            None if self.missing == MissingCategory::Separate => self.vocabulary.len() + 1,
            None => 0,
        }
    }

    /// Writes this feature's outputs for one value into `out` (length [`width`](Self::width)).
    pub fn encode(&self, key: Option<&str>, out: &mut [f32]) {
        let code = self.code(key);
        match self.encoding {
            CategoricalEncoding::Index => out[0] = code as f32,
            CategoricalEncoding::OneHot => {
                // One-hot order: categories, unknown, missing.
                let slot = match code {
                    0 => self.vocabulary.len(),
                    c if c <= self.vocabulary.len() => c - 1,
                    _ => self.vocabulary.len() + 1,
                };
                out.iter_mut().for_each(|v| *v = 0.0);
                out[slot] = 1.0;
            }
        }
    }

    fn names(&self) -> Vec<String> {
        match self.encoding {
            CategoricalEncoding::Index => vec![self.column.clone()],
            CategoricalEncoding::OneHot => {
                let mut names: Vec<String> = self
                    .vocabulary
                    .iter()
                    .map(|v| format!("{}={v}", self.column))
                    .collect();
                names.push(format!("{}=<unknown>", self.column));
                if self.missing == MissingCategory::Separate {
                    names.push(format!("{}=<missing>", self.column));
                }
                names
            }
        }
    }
}

impl Feature {
    /// The input column.
    pub fn column(&self) -> &str {
        match self {
            Feature::Numeric(f) => &f.column,
            Feature::Categorical(f) => &f.column,
        }
    }

    /// Output width.
    pub fn width(&self) -> usize {
        match self {
            Feature::Numeric(f) => f.width(),
            Feature::Categorical(f) => f.width(),
        }
    }
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
    fn new(features: Vec<Feature>) -> Self {
        let output_names = features
            .iter()
            .flat_map(|f| match f {
                Feature::Numeric(n) => n.names(),
                Feature::Categorical(c) => c.names(),
            })
            .collect();
        FittedTransform {
            format_version: TRANSFORM_FORMAT,
            features,
            output_names,
        }
    }

    /// Number of output features.
    pub fn width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// The input columns the transform reads.
    pub fn input_columns(&self) -> Vec<&str> {
        self.features.iter().map(Feature::column).collect()
    }

    /// Parses `transform.json`.
    pub fn from_json(bytes: &[u8], uri: &str) -> Result<Self> {
        let mut transform: FittedTransform = crate::store::parse_json(bytes, uri)?;
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
        let expected = FittedTransform::new(transform.features.clone()).output_names;
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
                    let x = match value {
                        None => None,
                        Some(v) => Some(v.as_f64().ok_or_else(|| {
                            Error::usage(format!(
                                "field `{}`: expected a number, got {v}",
                                f.column
                            ))
                        })?),
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

fn check_categorical_type(column: &str, array: &dyn Array) -> Result<()> {
    use arrow::datatypes::DataType::*;
    match array.data_type() {
        Utf8 | LargeUtf8 | Utf8View | Int64 | Boolean => Ok(()),
        other => Err(Error::usage(format!(
            "transform input column `{column}` has type {other}, expected string, int or bool"
        ))),
    }
}

/// Fits a [`FittedTransform`] in two passes over the train split: quantile-based
/// parameters (median, clip quantiles, bucket edges) come from the profiler's sketches
/// of the first pass; [`update`](Self::update) then streams the train split again for
/// the moments of the clipped/log1p'd values and the category counts.
/// The base values (after impute, clip and log1p) at the train quantiles i/n for i in
/// `steps`, repeated edges merged. clip and log1p are monotone, so quantiles of the
/// base value are the base values of the raw quantiles.
fn base_quantiles(
    feature: &NumericFeature,
    sketch: &crate::sketch::QuantileSketch,
    steps: std::ops::Range<u32>,
    n: u32,
) -> Option<Vec<f64>> {
    let levels: Vec<f64> = steps.map(|i| f64::from(i) / f64::from(n)).collect();
    let mut edges: Vec<f64> = sketch
        .quantiles(&levels)?
        .into_iter()
        .map(|q| feature.base_value(Some(q)))
        .collect();
    edges.dedup();
    Some(edges)
}

pub struct TransformFitter {
    numeric: Vec<(NumericFeature, bool, Moments)>,
    categorical: Vec<(crate::spec::CategoricalFeatureSpec, HashMap<String, u64>)>,
    order: Vec<(bool, usize)>,
}

impl TransformFitter {
    /// Starts a fit from the first pass's profile of the train split.
    pub fn new(
        spec: &TransformSpec,
        columns: &[ColumnSpec],
        train: &TableProfiler,
    ) -> Result<Self> {
        let mut numeric = Vec::new();
        let mut order = Vec::new();
        for f in &spec.numeric {
            let sketch = train.sketch(&f.column).ok_or_else(|| {
                Error::Invalid(format!("no statistics for numeric column `{}`", f.column))
            })?;
            let empty = || {
                Error::usage(format!(
                    "transform: column `{}` has no values in the train split to fit on",
                    f.column
                ))
            };
            let impute = match &f.impute {
                Impute::Median => sketch.quantile(0.5).ok_or_else(empty)?,
                Impute::Mean => train.mean(&f.column).ok_or_else(empty)?,
                Impute::Constant(v) => *v,
            };
            let clip = f.clip.as_ref();
            let quantile = |q: Option<f64>| -> Result<Option<f64>> {
                q.map(|q| sketch.quantile(q).ok_or_else(empty)).transpose()
            };
            let clip_min = clip
                .and_then(|c| c.min)
                .or(quantile(clip.and_then(|c| c.lower_quantile))?);
            let clip_max = clip
                .and_then(|c| c.max)
                .or(quantile(clip.and_then(|c| c.upper_quantile))?);
            let mut feature = NumericFeature {
                column: f.column.clone(),
                impute,
                clip_min,
                clip_max,
                log1p: f.log1p,
                scale: None,
                buckets: None,
                missing_indicator: f.missing_indicator,
                piecewise_linear: None,
            };
            feature.buckets = match &f.bucketize {
                None => None,
                Some(BucketSpec::Boundaries(edges)) => Some(edges.clone()),
                Some(BucketSpec::Quantiles(n)) => {
                    Some(base_quantiles(&feature, sketch, 1..*n, *n).ok_or_else(empty)?)
                }
            };
            if let Some(ple) = &f.piecewise_linear {
                // Edges at the quantiles 0, 1/n, ..., 1 (min and max included).
                let edges = base_quantiles(&feature, sketch, 0..ple.bins + 1, ple.bins)
                    .ok_or_else(empty)?;
                // A constant column has one edge: no bins.
                feature.piecewise_linear = (edges.len() >= 2).then_some(edges);
            }
            if f.log1p && feature.base_value(sketch.min_max().map(|m| m.0)).is_nan() {
                return Err(Error::usage(format!(
                    "transform: column `{}` has values <= -1 that log1p cannot take; clip them first",
                    f.column
                )));
            }
            order.push((true, numeric.len()));
            numeric.push((feature, f.standardize, Moments::default()));
        }
        let mut categorical = Vec::new();
        for f in &spec.categorical {
            let known = columns
                .iter()
                .any(|c| c.name == f.column && c.dtype != ColumnType::Float);
            if !known {
                return Err(Error::Invalid(format!(
                    "categorical column `{}` not in schema",
                    f.column
                )));
            }
            order.push((false, categorical.len()));
            categorical.push((f.clone(), HashMap::new()));
        }
        Ok(TransformFitter {
            numeric,
            categorical,
            order,
        })
    }

    /// Adds a batch of the train split (second pass).
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        for (feature, standardize, moments) in &mut self.numeric {
            if !*standardize {
                continue;
            }
            let array = batch.column_by_name(&feature.column).ok_or_else(|| {
                Error::Invalid(format!("train batch lacks column `{}`", feature.column))
            })?;
            for x in numeric_values(array.as_ref()) {
                moments.push(feature.base_value(x));
            }
        }
        for (spec, counts) in &mut self.categorical {
            let array = batch.column_by_name(&spec.column).ok_or_else(|| {
                Error::Invalid(format!("train batch lacks column `{}`", spec.column))
            })?;
            for row in 0..array.len() {
                if let Some(key) = category_key(array.as_ref(), row) {
                    *counts.entry(key).or_insert(0) += 1;
                }
            }
        }
        Ok(())
    }

    /// The fitted transform.
    pub fn finish(self) -> Result<FittedTransform> {
        let mut numeric: Vec<Option<NumericFeature>> = self
            .numeric
            .into_iter()
            .map(|(mut feature, standardize, moments)| {
                if standardize {
                    let std = moments.population_variance().map(f64::sqrt).unwrap_or(0.0);
                    feature.scale = Some(Scale {
                        mean: moments.mean,
                        // A constant column scales to 0 rather than dividing by zero.
                        std: if std > 0.0 { std } else { 1.0 },
                    });
                }
                Some(feature)
            })
            .collect();
        let mut categorical: Vec<Option<CategoricalFeature>> = self
            .categorical
            .into_iter()
            .map(|(spec, counts)| {
                let mut ranked: Vec<(String, u64)> = counts
                    .into_iter()
                    .filter(|(_, c)| *c >= spec.min_frequency)
                    .collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                if let Some(max) = spec.max_categories {
                    ranked.truncate(max);
                }
                let (vocabulary, counts) = ranked.into_iter().unzip();
                Some(CategoricalFeature::new(
                    spec.column,
                    vocabulary,
                    counts,
                    spec.encoding,
                    spec.missing,
                ))
            })
            .collect();
        let features = self
            .order
            .into_iter()
            .filter_map(|(is_numeric, i)| {
                if is_numeric {
                    numeric[i].take().map(Feature::Numeric)
                } else {
                    categorical[i].take().map(Feature::Categorical)
                }
            })
            .collect();
        Ok(FittedTransform::new(features))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CategoricalFeatureSpec, ClipSpec, NumericFeatureSpec};
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(10.0),
                    Some(4.0),
                ])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(Int64Array::from(vec![0, 5, 100, 7, 0])) as ArrayRef,
            ),
            (
                "c",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                    Some("rare"),
                ])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn columns() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec {
                name: "x".into(),
                dtype: ColumnType::Float,
                nullable: true,
            },
            ColumnSpec {
                name: "n".into(),
                dtype: ColumnType::Int,
                nullable: true,
            },
            ColumnSpec {
                name: "c".into(),
                dtype: ColumnType::String,
                nullable: true,
            },
        ]
    }

    fn spec() -> TransformSpec {
        TransformSpec {
            numeric: vec![
                NumericFeatureSpec {
                    column: "x".into(),
                    impute: Impute::Median,
                    clip: Some(ClipSpec {
                        min: None,
                        max: Some(8.0),
                        lower_quantile: None,
                        upper_quantile: None,
                    }),
                    log1p: false,
                    standardize: true,
                    bucketize: Some(BucketSpec::Boundaries(vec![2.0, 5.0])),
                    piecewise_linear: None,
                    missing_indicator: true,
                },
                NumericFeatureSpec {
                    column: "n".into(),
                    impute: Impute::Constant(0.0),
                    clip: None,
                    log1p: true,
                    standardize: false,
                    bucketize: None,
                    piecewise_linear: None,
                    missing_indicator: false,
                },
            ],
            categorical: vec![CategoricalFeatureSpec {
                column: "c".into(),
                min_frequency: 2,
                max_categories: None,
                encoding: CategoricalEncoding::OneHot,
                missing: MissingCategory::Separate,
            }],
        }
    }

    pub(crate) fn fit(batch: &RecordBatch) -> FittedTransform {
        let mut profiler = TableProfiler::new(&batch.schema(), &["x", "n", "c"]);
        profiler.update(batch).unwrap();
        let mut fitter = TransformFitter::new(&spec(), &columns(), &profiler).unwrap();
        fitter.update(batch).unwrap();
        fitter.finish().unwrap()
    }

    #[test]
    fn fits_the_expected_parameters() {
        let t = fit(&batch());
        let Feature::Numeric(x) = &t.features[0] else {
            panic!()
        };
        // median of [1, 2, 10, 4] = 3
        assert_eq!(x.impute, 3.0);
        // base values after impute and clip: [1, 2, 3, 8, 4]; mean 3.6, population std
        let mean = 3.6;
        let var = [1.0f64, 2.0, 3.0, 8.0, 4.0]
            .iter()
            .map(|v| (v - mean).powi(2))
            .sum::<f64>()
            / 5.0;
        let scale = x.scale.unwrap();
        assert!((scale.mean - mean).abs() < 1e-12);
        assert!((scale.std - var.sqrt()).abs() < 1e-12);
        let Feature::Categorical(c) = &t.features[2] else {
            panic!()
        };
        // "b" and "rare" appear once: below min_frequency 2.
        assert_eq!(c.vocabulary, vec!["a".to_string()]);
        assert_eq!(
            t.output_names,
            [
                "x",
                "x__missing",
                "x__bucket_0",
                "x__bucket_1",
                "x__bucket_2",
                "n",
                "c=a",
                "c=<unknown>",
                "c=<missing>"
            ]
        );
    }

    #[test]
    fn batch_and_json_records_give_identical_vectors() {
        let b = batch();
        let t = fit(&b);
        let matrix = t.apply_batch(&b).unwrap();
        let records = [
            serde_json::json!({"x": 1.0, "n": 0, "c": "a"}),
            serde_json::json!({"x": 2.0, "n": 5, "c": "b"}),
            serde_json::json!({"x": null, "n": 100, "c": "a"}),
            serde_json::json!({"x": 10.0, "n": 7}),
            serde_json::json!({"x": 4.0, "n": 0, "c": "rare"}),
        ];
        for (i, record) in records.iter().enumerate() {
            let vector = t.apply_record(record.as_object().unwrap()).unwrap();
            let a: Vec<u32> = vector.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = matrix.row(i).iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b, "row {i}");
        }
        // Row 4 ("rare") and row 1 ("b") fall in the unknown bucket; row 3 is missing.
        assert_eq!(&matrix.row(1)[6..], &[0.0, 1.0, 0.0]);
        assert_eq!(&matrix.row(3)[6..], &[0.0, 0.0, 1.0]);
        // Unseen categories go to unknown too.
        let v = t
            .apply_record(
                serde_json::json!({"x": 1, "n": 1, "c": "never-seen"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(&v[6..], &[0.0, 1.0, 0.0]);
        // Buckets: x=10 is clipped to 8 → bucket 2; x=2 → bucket 1 (edges are left-closed).
        assert_eq!(&matrix.row(3)[2..5], &[0.0, 0.0, 1.0]);
        assert_eq!(&matrix.row(1)[2..5], &[0.0, 1.0, 0.0]);
    }

    #[test]
    fn reloaded_transform_is_bit_identical() {
        let b = batch();
        let t = fit(&b);
        let text = serde_json::to_vec_pretty(&t).unwrap();
        let reloaded = FittedTransform::from_json(&text, "transform.json").unwrap();
        assert_eq!(reloaded, t);
        let bits = |t: &FittedTransform| -> Vec<u32> {
            t.apply_batch(&b)
                .unwrap()
                .values
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        let (before, after) = (bits(&t), bits(&reloaded));
        assert_eq!(before, after);
    }

    #[test]
    fn piecewise_linear_bins_come_from_train_quantiles_and_saturate() {
        let mut spec = spec();
        spec.numeric[0].piecewise_linear = Some(crate::spec::PiecewiseLinearSpec { bins: 4 });
        let b = batch();
        let mut profiler = TableProfiler::new(&b.schema(), &["x", "n", "c"]);
        profiler.update(&b).unwrap();
        let mut fitter = TransformFitter::new(&spec, &columns(), &profiler).unwrap();
        fitter.update(&b).unwrap();
        let t = fitter.finish().unwrap();
        let Feature::Numeric(x) = &t.features[0] else {
            panic!()
        };
        // Train values of x (before impute): [1, 2, 4, 10], clipped at 8: quantiles
        // 0, 1/4, ..., 1 of [1, 2, 4, 10] are 1, 1.75, 3, 5.5, 10 → clipped 8.
        let edges = x.piecewise_linear.clone().unwrap();
        assert_eq!(edges, vec![1.0, 1.75, 3.0, 5.5, 8.0]);
        assert_eq!(x.width(), 1 + 1 + 3 + 4);
        assert_eq!(
            t.output_names[5..9],
            ["x__ple_0", "x__ple_1", "x__ple_2", "x__ple_3"]
        );
        let encode = |v: f64| {
            let mut out = vec![0f32; x.width()];
            x.encode(Some(v), &mut out);
            out[5..].to_vec()
        };
        // 2.0: bin 0 full, bin 1 at (2 − 1.75) / 1.25, the rest empty.
        assert_eq!(encode(2.0), vec![1.0, 0.2, 0.0, 0.0]);
        // Outside the train range: saturates instead of growing.
        assert_eq!(encode(-100.0), vec![0.0; 4]);
        assert_eq!(encode(1e9), vec![1.0; 4]);
        // A JSON record gives the same bits as the batch.
        let matrix = t.apply_batch(&b).unwrap();
        let record = t
            .apply_record(
                serde_json::json!({"x": 4.0, "n": 0, "c": "rare"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(record, matrix.row(4));
        // The edges travel in transform.json: reloaded, the encoding has the same bits.
        let text = serde_json::to_vec_pretty(&t).unwrap();
        let reloaded = FittedTransform::from_json(&text, "transform.json").unwrap();
        assert_eq!(reloaded, t);
        let bits = |m: &FeatureMatrix| m.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&reloaded.apply_batch(&b).unwrap()), bits(&matrix));
    }

    #[test]
    fn wrong_record_types_are_named() {
        let t = fit(&batch());
        let err = t
            .apply_record(serde_json::json!({"x": "one"}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(err.to_string(), "field `x`: expected a number, got \"one\"");
    }
}
