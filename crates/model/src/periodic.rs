//! Periodic embeddings of numerical features (the "PLR" embeddings of Gorishniy et
//! al., "On Embeddings for Numerical Features in Tabular Deep Learning", 2022).
//!
//! Each scalar feature `x_i` becomes `v_i = [sin(2π c_i x_i), cos(2π c_i x_i)]` with
//! `k` learned frequencies `c_i` (initialised from N(0, σ²)), then its own linear
//! layer to `dim` outputs and a ReLU. Every feature has its own frequencies and
//! layer; all features go through one matrix product with a block-diagonal weight
//! (the off-block entries are masked to zero in the forward pass, so they neither
//! contribute nor learn), which is much faster on CPU than a batched product.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The embedding's shape, saved in `model_config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeriodicConfig {
    /// Number of scalar features embedded.
    pub features: usize,
    /// Learned frequencies per feature (`k`).
    pub frequencies: usize,
    /// Output size per feature.
    pub dim: usize,
    /// Standard deviation of the initial frequencies.
    pub sigma: f64,
}

/// The module.
#[derive(Module, Debug)]
pub struct PeriodicEmbedding<B: Backend> {
    /// `[features, k]`.
    frequencies: Param<Tensor<B, 2>>,
    /// `[features × 2k, features × dim]`, block-diagonal: one linear layer per feature.
    weight: Param<Tensor<B, 2>>,
    /// `[features × dim]`.
    bias: Param<Tensor<B, 1>>,
}

impl PeriodicConfig {
    /// Output width: `features × dim`.
    pub fn width(&self) -> usize {
        self.features * self.dim
    }

    /// A freshly initialised embedding (from the backend's seeded RNG).
    pub fn init<B: Backend>(&self, device: &B::Device) -> PeriodicEmbedding<B> {
        let (n, k, d) = (self.features, self.frequencies, self.dim);
        // The linear layers start like burn's Linear: uniform in ±1/√fan_in.
        let bound = 1.0 / ((2 * k) as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        PeriodicEmbedding {
            frequencies: Initializer::Normal {
                mean: 0.0,
                std: self.sigma,
            }
            .init([n, k], device),
            weight: uniform.init([n * 2 * k, n * d], device),
            bias: uniform.init([n * d], device),
        }
    }
}

impl<B: Backend> PeriodicEmbedding<B> {
    /// `x`: `[rows, features]` → `[rows, features × dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [rows, n] = x.dims();
        let [_, k] = self.frequencies.dims();
        let [_, width] = self.weight.dims();
        let d = width / n.max(1);
        let angles = x.unsqueeze_dim::<3>(2)
            * self.frequencies.val().unsqueeze_dim::<3>(0)
            * (2.0 * std::f32::consts::PI);
        // [rows, n, 2k] → [rows, n·2k]: feature i's sin and cos in columns i·2k..(i+1)·2k.
        let features =
            Tensor::cat(vec![angles.clone().sin(), angles.cos()], 2).reshape([rows, n * 2 * k]);
        let mask = block_diagonal::<B>(n, 2 * k, d, &features.device());
        let out = features.matmul(self.weight.val() * mask) + self.bias.val().unsqueeze_dim(0);
        relu(out)
    }
}

/// A `[n·rows_per, n·cols_per]` 0/1 matrix with ones in the n diagonal blocks.
fn block_diagonal<B: Backend>(
    n: usize,
    rows_per: usize,
    cols_per: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let (rows, cols) = (n * rows_per, n * cols_per);
    let mut values = vec![0f32; rows * cols];
    for i in 0..n {
        for r in i * rows_per..(i + 1) * rows_per {
            values[r * cols + i * cols_per..r * cols + (i + 1) * cols_per].fill(1.0);
        }
    }
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend;

    #[test]
    fn each_feature_has_its_own_frequencies_and_layer() {
        let device = Default::default();
        let config = PeriodicConfig {
            features: 2,
            frequencies: 3,
            dim: 4,
            sigma: 1.0,
        };
        let module = config.init::<CpuBackend>(&device);
        let x = Tensor::<CpuBackend, 2>::from_data(
            TensorData::new(vec![0.5f32, -1.0, 0.5, 2.0], [2, 2]),
            &device,
        );
        let out = module.forward(x).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out.len(), 2 * 8);
        // Rows 0 and 1 share feature 0's value (0.5): the same first 4 outputs.
        assert_eq!(out[0..4], out[8..12]);
        // Feature 1 differs (−1 vs 2); ReLU outputs are never negative.
        assert_ne!(out[4..8], out[12..16]);
        assert!(out.iter().all(|v| *v >= 0.0));
        // Only the diagonal blocks are used: changing feature 1's value leaves
        // feature 0's outputs alone.
        let x =
            Tensor::<CpuBackend, 2>::from_data(TensorData::new(vec![0.5f32, 7.0], [1, 2]), &device);
        let moved = module.forward(x).into_data().to_vec::<f32>().unwrap();
        assert_eq!(moved[0..4], out[0..4]);
    }
}
