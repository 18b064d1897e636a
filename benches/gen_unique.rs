//! Generates a table of unique values for validate's memory benchmark: `id` (int64)
//! and `x` (float64), each a permutation of 0..ROWS (x scaled), so every value is
//! distinct and arrives in no particular order.
//!
//! `cargo run --profile fast-release -p kiln-benches --bin gen-unique -- ROWS OUT.parquet`
//! (benches/validate_memory.sh runs it).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use kiln_core::parquet_io::ParquetSink;
use kiln_core::store::ObjectRef;

/// A multiplier coprime with every ROWS that is a product of 2s and 5s (10^k): the map
/// i → i·P mod ROWS is then a permutation.
const P: u128 = 1_000_003;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rows), Some(out)) = (args.get(1).and_then(|r| r.parse::<u64>().ok()), args.get(2))
    else {
        return Err("usage: gen-unique ROWS OUT.parquet".into());
    };
    if rows == 0 || u128::from(rows) % P == 0 {
        return Err(format!("ROWS must be positive and not a multiple of {P}").into());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut sink = ParquetSink::create(&ObjectRef::parse(out)?, schema.clone())?;
        let mut done = 0u64;
        while done < rows {
            let n = (rows - done).min(1 << 16);
            let perm: Vec<i64> = (done..done + n)
                .map(|i| ((u128::from(i) * P) % u128::from(rows)) as i64)
                .collect();
            let x: Vec<f64> = perm.iter().map(|&v| v as f64 * 0.001 + 0.5).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(perm)) as ArrayRef,
                    Arc::new(Float64Array::from(x)),
                ],
            )?;
            sink.write(&batch).await?;
            done += n;
        }
        sink.finish().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
