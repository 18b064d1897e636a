//! # kiln-model
//!
//! The model Kiln trains, the bundle it is saved as, and batch inference — shared by
//! train, evaluate and serve so that none of them depends on another step.
//!
//! The code is generic over burn's `Backend`: tests and laptops use the ndarray CPU
//! backend ([`CpuBackend`]); GPU nodes build with `--features cuda` and pick CUDA at
//! run time ([`device`]). CPU builds never link CUDA.

pub mod bundle;
pub mod classifier;
pub mod device;
pub mod layout;
pub mod periodic;
pub mod training;

pub use bundle::{BundleMetadata, BundleParts, ModelBundle, ScoredTable};
pub use classifier::{Activation, Classifier, ClassifierConfig, EmbeddingInput};
pub use kiln_core::decision::DecisionPolicy;
pub use layout::{FeatureLayout, ModelInput};
pub use periodic::PeriodicConfig;

/// The CPU backend for inference and tests.
pub type CpuBackend = burn::backend::NdArray<f32>;
/// The CPU backend with automatic differentiation, for training.
pub type CpuTrainBackend = burn::backend::Autodiff<CpuBackend>;
