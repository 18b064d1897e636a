//! The binary classifier: learned embeddings for index-encoded categoricals, an MLP
//! with optional layer normalisation and dropout, and one output logit.

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::activation::{gelu, relu, silu, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use kiln_core::split::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::layout::ModelInput;
use crate::periodic::{PeriodicConfig, PeriodicEmbedding};

/// Hidden-layer activation (mirrors the spec's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Gelu,
    Silu,
    Tanh,
}

impl From<kiln_core::spec::Activation> for Activation {
    fn from(a: kiln_core::spec::Activation) -> Self {
        match a {
            kiln_core::spec::Activation::Relu => Activation::Relu,
            kiln_core::spec::Activation::Gelu => Activation::Gelu,
            kiln_core::spec::Activation::Silu => Activation::Silu,
            kiln_core::spec::Activation::Tanh => Activation::Tanh,
        }
    }
}

/// An embedding table for one index-encoded categorical feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingInput {
    /// Name of the feature (its column).
    pub name: String,
    /// Number of codes (unknown, categories, missing).
    pub cardinality: usize,
    /// Embedding size.
    pub dim: usize,
}

/// The architecture, saved as `model_config.json` in the bundle.
#[derive(Config, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Number of dense (numeric and one-hot) inputs.
    pub dense_inputs: usize,
    /// One embedding per index-encoded categorical feature, in feature order.
    pub embeddings: Vec<EmbeddingInput>,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Dropout probability after each hidden layer.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Layer normalisation after each hidden linear layer.
    #[config(default = false)]
    pub layer_norm: bool,
    /// Periodic embeddings of the numeric features' scalars (absent: none).
    pub periodic: Option<PeriodicConfig>,
}

/// The model. Dropout is applied in [`Classifier::forward`] when the input carries a
/// dropout seed (training), never otherwise; the `Dropout` field holds the rate.
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    embeddings: Vec<Embedding<B>>,
    periodic: Option<PeriodicEmbedding<B>>,
    hidden: Vec<Linear<B>>,
    norms: Vec<LayerNorm<B>>,
    output: Linear<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl ClassifierConfig {
    /// Width of the first hidden layer's input.
    pub fn input_width(&self) -> usize {
        self.dense_inputs
            + self.embeddings.iter().map(|e| e.dim).sum::<usize>()
            + self.periodic.map_or(0, |p| p.width())
    }

    /// A freshly initialised model (weights from the backend's seeded RNG).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Classifier<B> {
        let embeddings = self
            .embeddings
            .iter()
            .map(|e| EmbeddingConfig::new(e.cardinality, e.dim).init(device))
            .collect();
        let mut width = self.input_width();
        let mut hidden = Vec::new();
        let mut norms = Vec::new();
        for &size in &self.hidden {
            hidden.push(LinearConfig::new(width, size).init(device));
            if self.layer_norm {
                norms.push(LayerNormConfig::new(size).init(device));
            }
            width = size;
        }
        let model = Classifier {
            embeddings,
            periodic: self.periodic.map(|p| p.init(device)),
            hidden,
            norms,
            output: LinearConfig::new(width, 1).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
        };
        // burn draws parameter ids at random per process; number them instead so that
        // the same seed gives a byte-identical model file (and content hash).
        model.map(&mut SequentialIds(0))
    }
}

/// Gives parameters the ids 0, 1, 2, ... in module order.
struct SequentialIds(u64);

impl<B: Backend> ModuleMapper<B> for SequentialIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (_, tensor, mapper) = param.consume();
        self.0 += 1;
        Param::from_mapped_value(ParamId::from(self.0 - 1), tensor, mapper)
    }
}

impl<B: Backend> Classifier<B> {
    /// Inverted dropout with a mask drawn from `seed` (not from the backend's global
    /// RNG), so that shards of one batch trained on different threads draw the same
    /// masks in any order, and a given seed gives the same model.
    fn dropout_mask(&self, x: Tensor<B, 2>, seed: u64) -> Tensor<B, 2> {
        let p = self.dropout.prob;
        if p <= 0.0 {
            return x;
        }
        let [rows, cols] = x.dims();
        let keep = (1.0 / (1.0 - p)) as f32;
        let mut rng = SplitMix64::new(seed);
        let mask: Vec<f32> = (0..rows * cols)
            .map(|_| if rng.uniform() < p { 0.0 } else { keep })
            .collect();
        x * Tensor::from_data(
            TensorData::new(mask, [rows, cols]),
            &self.output.weight.device(),
        )
    }

    /// Logits, shape `[rows]`.
    pub fn forward(&self, input: ModelInput<B>) -> Tensor<B, 1> {
        let ModelInput {
            dense,
            codes,
            periodic,
            dropout_seed,
        } = input;
        let [rows, _] = dense.dims();
        let mut parts = vec![dense];
        if let (Some(module), Some(scalars)) = (&self.periodic, periodic) {
            parts.push(module.forward(scalars));
        }
        if let Some(codes) = codes {
            for (i, embedding) in self.embeddings.iter().enumerate() {
                let column = codes.clone().narrow(1, i, 1);
                let vectors = embedding.forward(column);
                let [_, _, dim] = vectors.dims();
                parts.push(vectors.reshape([rows, dim]));
            }
        }
        let mut x = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 1)
        };
        for (i, linear) in self.hidden.iter().enumerate() {
            x = linear.forward(x);
            if let Some(norm) = self.norms.get(i) {
                x = norm.forward(x);
            }
            x = match self.activation {
                Activation::Relu => relu(x),
                Activation::Gelu => gelu(x),
                Activation::Silu => silu(x),
                Activation::Tanh => tanh(x),
            };
            if let Some(seed) = dropout_seed {
                x = self.dropout_mask(x, seed.wrapping_add(i as u64));
            }
        }
        self.output.forward(x).reshape([rows])
    }
}
