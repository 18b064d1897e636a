//! Predictions-shaped tables: the one opener for a file of labels, scores, decisions
//! and group columns that the standalone audits read (`kiln evaluate --predictions`,
//! `kiln fairness --predictions`): Parquet, or CSV with a header, each column typed
//! and checked as the caller names it.

use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};

use crate::csv_source::{CsvRead, stream_csv};
use crate::error::{Error, Result};
use crate::parquet_io::read_parquet;
use crate::spec::{ColumnSpec, ColumnType, CsvOptions};
use crate::store::ObjectRef;
use crate::table::conform_batch;

/// Rows per batch when reading a predictions file.
const BATCH_ROWS: usize = 65_536;

/// A column the caller needs, by name and type (`nullable`: whether a missing value is
/// allowed, as for a group column).
pub fn wanted(name: &str, dtype: ColumnType, nullable: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.to_string(),
        dtype,
        nullable,
    }
}

/// Reads `object` (`.csv` with a header, else Parquet) as batches of exactly `columns`,
/// typed; a missing column or a value of the wrong type is a usage error naming the
/// file, the column and the row.
pub async fn open(object: &ObjectRef, columns: Vec<ColumnSpec>) -> Result<Vec<RecordBatch>> {
    let uri = object.uri().to_string();
    let mut batches = Vec::new();
    if uri.ends_with(".csv") {
        let read = CsvRead {
            options: CsvOptions {
                header: true,
                ..CsvOptions::default()
            },
            skip_lines: 0,
            columns,
            batch_rows: BATCH_ROWS,
        };
        let mut stream = stream_csv(object, read).await?;
        while let Some(typed) = stream.next().await {
            batches.push(typed?.batch);
        }
    } else {
        let (_, mut stream) = read_parquet(object, BATCH_ROWS).await?;
        while let Some(batch) = stream.try_next().await? {
            batches.push(conform_batch(&batch, &columns, &uri)?);
        }
    }
    Ok(batches)
}

/// The probabilities in `batch`'s column `name` (a float column [`open`] typed): each
/// must be in [0, 1], or the error names the value and its row (`first_row` is the
/// batch's first row in the file, counted from 0).
pub fn probabilities(
    batch: &RecordBatch,
    name: &str,
    uri: &str,
    first_row: u64,
) -> Result<Vec<f64>> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::usage(format!("{uri}: no column `{name}`")))?;
    let scores = column.as_primitive::<Float64Type>();
    if let Some(i) = scores
        .values()
        .iter()
        .position(|s| !(0.0..=1.0).contains(s))
    {
        return Err(Error::usage(format!(
            "{uri}: score {} in row {} is not a probability in [0, 1]",
            scores.value(i),
            first_row + i as u64 + 1
        )));
    }
    Ok(scores.values().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectRef;

    #[tokio::test]
    async fn csv_and_parquet_open_alike_and_bad_scores_name_their_row() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("p.csv");
        std::fs::write(&csv, "y,score,sex\n1,0.9,Male\n0,0.2,\n").unwrap();
        let columns = || {
            vec![
                wanted("y", ColumnType::Int, false),
                wanted("score", ColumnType::Float, false),
                wanted("sex", ColumnType::String, true),
            ]
        };
        let object = ObjectRef::parse(csv.to_str().unwrap()).unwrap();
        let batches = open(&object, columns()).await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        let p = probabilities(&batches[0], "score", "p.csv", 0).unwrap();
        assert_eq!(p, [0.9, 0.2]);

        std::fs::write(&csv, "y,score,sex\n1,0.9,Male\n0,1.5,Female\n").unwrap();
        let batches = open(&object, columns()).await.unwrap();
        let e = probabilities(&batches[0], "score", "p.csv", 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("score 1.5 in row 2"), "{e}");

        std::fs::write(&csv, "y,sex\n1,Male\n").unwrap();
        let e = open(&object, columns()).await.unwrap_err().to_string();
        assert!(e.contains("score"), "{e}");
    }
}
