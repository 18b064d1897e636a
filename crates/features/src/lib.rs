//! The one feature transform: fitted once by prepare on the train split, saved as
//! `transform.json`, applied by train, evaluate and serve through this code alone.
//!
//! Record batches and single JSON records go through the same per-value functions
//! ([`NumericFeature::encode`], [`CategoricalFeature::encode`]), so both give the same
//! bits by construction. Every fitted number is an f64 that JSON round-trips exactly
//! (serde_json's `float_roundtrip`), so a reloaded transform gives bit-identical output.

mod apply;
mod derived;
mod feature;
mod fit;

pub use apply::{FeatureMatrix, FittedTransform};
pub use derived::derive_batch;
pub use feature::{CategoricalFeature, Feature, NumericFeature, Scale, TRANSFORM_FORMAT};
pub use fit::TransformFitter;

#[cfg(test)]
mod tests;
