//! The fitted features: what each one learned from the train split and how it encodes
//! one value (the per-value functions that batches and JSON records share).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use kiln_core::spec::{CategoricalEncoding, MissingCategory};

/// Version of the `transform.json` format.
pub const TRANSFORM_FORMAT: u32 = 1;

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
    pub(crate) fn base_value(&self, x: Option<f64>) -> f64 {
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

    pub(crate) fn names(&self) -> Vec<String> {
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
    pub(crate) fn new(
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

    pub(crate) fn build_index(&mut self) {
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

    pub(crate) fn names(&self) -> Vec<String> {
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
