//! How the transform's output vector feeds the model: dense slots go in as they are,
//! index-encoded categorical slots go through embedding tables, and (with periodic
//! embeddings) each numeric feature's scalar slot goes through its periodic embedding.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use kiln_core::spec::CategoricalEncoding;
use kiln_features::{Feature, FeatureMatrix, FittedTransform};
use serde::{Deserialize, Serialize};

use crate::classifier::EmbeddingInput;

/// Which transform output slots are dense, which are embedding codes and which are
/// scalars for the periodic embedding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    pub dense_slots: Vec<usize>,
    pub code_slots: Vec<usize>,
    #[serde(default)]
    pub periodic_slots: Vec<usize>,
    pub width: usize,
}

/// One batch of model inputs.
pub struct ModelInput<B: Backend> {
    /// `[rows, dense]`.
    pub dense: Tensor<B, 2>,
    /// `[rows, embeddings]`, when there are index-encoded categoricals.
    pub codes: Option<Tensor<B, 2, Int>>,
    /// `[rows, numeric features]`, with periodic embeddings.
    pub periodic: Option<Tensor<B, 2>>,
    /// Training only: the seed of this batch's dropout masks.
    pub dropout_seed: Option<u64>,
}

impl FeatureLayout {
    /// The layout of a transform, and an embedding per index-encoded feature. With
    /// `periodic`, the first (scalar) slot of each numeric feature feeds the periodic
    /// embedding instead of the dense input; its other slots (indicator, buckets,
    /// piecewise-linear bins) stay dense.
    pub fn of(
        transform: &FittedTransform,
        embedding_dim: usize,
        periodic: bool,
    ) -> (Self, Vec<EmbeddingInput>) {
        let mut dense_slots = Vec::new();
        let mut code_slots = Vec::new();
        let mut periodic_slots = Vec::new();
        let mut embeddings = Vec::new();
        let mut at = 0;
        for feature in &transform.features {
            let width = feature.width();
            match feature {
                Feature::Numeric(_) if periodic => {
                    periodic_slots.push(at);
                    dense_slots.extend(at + 1..at + width);
                }
                Feature::Categorical(c) if c.encoding == CategoricalEncoding::Index => {
                    code_slots.push(at);
                    embeddings.push(EmbeddingInput {
                        name: c.column.clone(),
                        cardinality: c.cardinality(),
                        dim: embedding_dim,
                    });
                }
                _ => dense_slots.extend(at..at + width),
            }
            at += width;
        }
        (
            FeatureLayout {
                dense_slots,
                code_slots,
                periodic_slots,
                width: at,
            },
            embeddings,
        )
    }

    /// Rows `rows` of a feature matrix as model inputs on `device`.
    pub fn tensors<B: Backend>(
        &self,
        matrix: &FeatureMatrix,
        rows: &[usize],
        device: &B::Device,
    ) -> ModelInput<B> {
        let mut dense = Vec::with_capacity(rows.len() * self.dense_slots.len());
        let mut codes = Vec::with_capacity(rows.len() * self.code_slots.len());
        let mut scalars = Vec::with_capacity(rows.len() * self.periodic_slots.len());
        for &r in rows {
            let row = matrix.row(r);
            dense.extend(self.dense_slots.iter().map(|&s| row[s]));
            codes.extend(self.code_slots.iter().map(|&s| row[s] as i64));
            scalars.extend(self.periodic_slots.iter().map(|&s| row[s]));
        }
        let dense = Tensor::from_data(
            TensorData::new(dense, [rows.len(), self.dense_slots.len()]),
            device,
        );
        let codes = (!self.code_slots.is_empty()).then(|| {
            Tensor::from_data(
                TensorData::new(codes, [rows.len(), self.code_slots.len()]),
                device,
            )
        });
        let periodic = (!self.periodic_slots.is_empty()).then(|| {
            Tensor::from_data(
                TensorData::new(scalars, [rows.len(), self.periodic_slots.len()]),
                device,
            )
        });
        ModelInput {
            dense,
            codes,
            periodic,
            dropout_seed: None,
        }
    }
}
