//! Fitting the transform on the train split.

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;

use kiln_core::error::{Error, Result};
use kiln_core::spec::{BucketSpec, ColumnSpec, ColumnType, Impute, TransformSpec};
use kiln_stats::profile::{Moments, TableProfiler, category_key, numeric_values};
use kiln_stats::sketch::QuantileSketch;

use crate::FittedTransform;
use crate::feature::{CategoricalFeature, Feature, NumericFeature, Scale};

/// Fits a [`FittedTransform`] in two passes over the train split: quantile-based
/// parameters (median, clip quantiles, bucket edges) come from the profiler's sketches
/// of the first pass; [`update`](Self::update) then streams the train split again for
/// the moments of the clipped/log1p'd values and the category counts.
pub struct TransformFitter {
    numeric: Vec<(NumericFeature, bool, Moments)>,
    categorical: Vec<(
        kiln_core::spec::CategoricalFeatureSpec,
        HashMap<String, u64>,
    )>,
    order: Vec<(bool, usize)>,
    derived: Vec<kiln_core::spec::DerivedSpec>,
    lookup: Option<kiln_core::spec::LookupSpec>,
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
            derived: spec.derived.clone(),
            lookup: spec.lookup.clone(),
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
        Ok(FittedTransform::new(self.derived, features, self.lookup))
    }
}

/// The base values (after impute, clip and log1p) at the train quantiles i/n for i in
/// `steps`, repeated edges merged. clip and log1p are monotone, so quantiles of the
/// base value are the base values of the raw quantiles.
fn base_quantiles(
    feature: &NumericFeature,
    sketch: &QuantileSketch,
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
