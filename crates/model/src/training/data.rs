//! Training data: prepare's train table through the shared transform, and the
//! deterministic train/validation split.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use kiln_core::parquet_io::read_parquet;
use kiln_core::split::is_validation_row;
use kiln_core::store::ObjectRef;
use kiln_core::table::{ROW_ID, binary_column};
use kiln_core::{Error, Result};
use kiln_features::{FeatureMatrix, FittedTransform};

/// Transformed features with labels and row ids.
pub struct Dataset {
    pub features: FeatureMatrix,
    pub labels: Vec<u8>,
    pub row_ids: Vec<i64>,
}

impl Dataset {
    /// Reads a prepared table and applies the transform (kiln-core's, never a copy).
    pub async fn load(table: &ObjectRef, transform: &FittedTransform, label: &str) -> Result<Self> {
        let (_, mut batches) = read_parquet(table, 16_384).await?;
        let mut values = Vec::new();
        let mut labels = Vec::new();
        let mut row_ids = Vec::new();
        let mut cols = transform.width();
        while let Some(batch) = batches.try_next().await? {
            let matrix = transform.apply_batch(&batch)?;
            cols = matrix.cols;
            values.extend_from_slice(&matrix.values);
            // The same 0/1 rule evaluate and fairness read labels with.
            let first_row = labels.len() as u64;
            labels.extend(binary_column(
                &batch,
                "label",
                label,
                table.uri(),
                first_row,
            )?);
            let ids = batch
                .column_by_name(ROW_ID)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| Error::usage(format!("{}: no `{ROW_ID}` column", table.uri())))?;
            row_ids.extend_from_slice(ids.values());
        }
        Ok(Dataset {
            features: FeatureMatrix {
                rows: labels.len(),
                cols,
                values,
            },
            labels,
            row_ids,
        })
    }

    /// Row indices of the training and validation parts: a row is in validation when
    /// the hash of (seed, row id) falls below `fraction` — stable across runs and
    /// independent of row order.
    pub fn split(&self, seed: u64, fraction: f64) -> (Vec<usize>, Vec<usize>) {
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (i, id) in self.row_ids.iter().enumerate() {
            if is_validation_row(seed, fraction, *id) {
                validation.push(i);
            } else {
                train.push(i);
            }
        }
        (train, validation)
    }
}
