//! How the transform's output vector feeds the model: dense slots go in as they are,
//! index-encoded categorical slots go through embedding tables.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use kiln_core::spec::CategoricalEncoding;
use kiln_core::transform::{Feature, FeatureMatrix, FittedTransform};
use serde::{Deserialize, Serialize};

use crate::classifier::EmbeddingInput;

/// Which transform output slots are dense and which are embedding codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    pub dense_slots: Vec<usize>,
    pub code_slots: Vec<usize>,
    pub width: usize,
}

impl FeatureLayout {
    /// The layout of a transform, and an embedding per index-encoded feature.
    pub fn of(transform: &FittedTransform, embedding_dim: usize) -> (Self, Vec<EmbeddingInput>) {
        let mut dense_slots = Vec::new();
        let mut code_slots = Vec::new();
        let mut embeddings = Vec::new();
        let mut at = 0;
        for feature in &transform.features {
            let width = feature.width();
            match feature {
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
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2, Int>>) {
        let mut dense = Vec::with_capacity(rows.len() * self.dense_slots.len());
        let mut codes = Vec::with_capacity(rows.len() * self.code_slots.len());
        for &r in rows {
            let row = matrix.row(r);
            dense.extend(self.dense_slots.iter().map(|&s| row[s]));
            codes.extend(self.code_slots.iter().map(|&s| row[s] as i64));
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
        (dense, codes)
    }
}
