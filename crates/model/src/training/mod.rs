//! Training the classifier: the data a training needs, the loop, its checkpoints and
//! schedule. The train step and the tune step's trials both train through this module,
//! so a trial and the final model are trained by the same code.

mod checkpoint;
mod data;
mod fit;
mod schedule;

pub use checkpoint::{Best, CheckpointStore, EpochRecord};
pub use data::Dataset;
pub use fit::{Control, Io, TrainData, TrainResult, fit};

use kiln_core::spec::{NumericEmbedding, TrainSpec};
use kiln_core::{Error, Result};
use kiln_features::{FeatureMatrix, FittedTransform};

use crate::device::DeviceKind;
use crate::{ClassifierConfig, FeatureLayout, PeriodicConfig};

/// The train/validation split of a dataset and the architecture a spec asks for.
pub fn plan<'a>(
    dataset: &'a Dataset,
    transform: &FittedTransform,
    spec: &TrainSpec,
) -> Result<(TrainData<'a>, ClassifierConfig)> {
    let (train_rows, validation_rows) = dataset.split(spec.seed, spec.validation_fraction);
    if train_rows.is_empty() || validation_rows.is_empty() {
        return Err(Error::usage(format!(
            "train: {} rows cannot be split into train and validation (validation_fraction {})",
            dataset.labels.len(),
            spec.validation_fraction
        )));
    }
    let validation = select_rows(&dataset.features, &validation_rows);
    let validation_labels = validation_rows.iter().map(|&r| dataset.labels[r]).collect();
    let periodic = match spec.numeric_embedding {
        NumericEmbedding::None => None,
        NumericEmbedding::Periodic(p) => Some(p),
    };
    let (layout, embeddings) = FeatureLayout::of(transform, spec.embedding_dim, periodic.is_some());
    let config = ClassifierConfig::new(
        layout.dense_slots.len(),
        embeddings,
        spec.hidden.clone(),
        spec.activation.into(),
    )
    .with_dropout(spec.dropout)
    .with_layer_norm(spec.layer_norm)
    .with_periodic(periodic.map(|p| PeriodicConfig {
        features: layout.periodic_slots.len(),
        frequencies: p.frequencies,
        dim: p.dim,
        sigma: p.sigma,
    }));
    let data = TrainData {
        features: &dataset.features,
        labels: &dataset.labels,
        train_rows,
        validation,
        validation_labels,
        layout,
    };
    Ok((data, config))
}

/// [`fit`] on the backend of `device`.
pub fn fit_on(
    device: DeviceKind,
    spec: &TrainSpec,
    config: &ClassifierConfig,
    data: &TrainData<'_>,
    io: Option<&Io<'_>>,
    control: &Control<'_>,
) -> Result<TrainResult> {
    match device {
        DeviceKind::Cpu => {
            fit::<crate::CpuTrainBackend>(spec, config, data, &Default::default(), io, control)
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            type Gpu = burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>;
            fit::<Gpu>(
                spec,
                config,
                data,
                &burn::backend::cuda::CudaDevice::new(0),
                io,
                control,
            )
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(Error::usage(
            "--device cuda: this build has no CUDA support",
        )),
    }
}

fn select_rows(matrix: &FeatureMatrix, rows: &[usize]) -> FeatureMatrix {
    let mut values = Vec::with_capacity(rows.len() * matrix.cols);
    for &r in rows {
        values.extend_from_slice(matrix.row(r));
    }
    FeatureMatrix {
        rows: rows.len(),
        cols: matrix.cols,
        values,
    }
}
