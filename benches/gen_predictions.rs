//! Generates a predictions file for benchmarks: `label`, `score` (a float32
//! probability, so ties occur as in real model output), `sex` and `race`, seeded.
//!
//! `cargo run --profile fast-release -p kiln-benches --bin gen-predictions -- ROWS OUT.parquet`
//! (benches/audit.sh runs it).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use kiln_core::parquet_io::ParquetSink;
use kiln_core::split::SplitMix64;
use kiln_core::store::ObjectRef;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rows), Some(out)) = (
        args.get(1).and_then(|r| r.parse::<usize>().ok()),
        args.get(2),
    ) else {
        return Err("usage: gen-predictions ROWS OUT.parquet".into());
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int32, false),
        Field::new("score", DataType::Float64, false),
        Field::new("sex", DataType::Utf8, false),
        Field::new("race", DataType::Utf8, false),
    ]));
    let races = [
        "White",
        "Black",
        "Asian-Pac-Islander",
        "Amer-Indian-Eskimo",
        "Other",
    ];
    let race_weights = [85u64, 95, 98, 99, 100];
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut rng = SplitMix64::new(7);
        let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut sink = ParquetSink::create(&ObjectRef::parse(out)?, schema.clone())?;
        let mut done = 0;
        while done < rows {
            let n = (rows - done).min(1 << 16);
            let (mut labels, mut scores, mut sexes, mut race) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for _ in 0..n {
                let female = uniform() < 0.33;
                let positive = uniform() < if female { 0.11 } else { 0.31 };
                // A logistic score around a class-dependent centre, stored as float32.
                let z = if positive { 1.2 } else { -1.6 }
                    + 1.4 * (uniform() + uniform() + uniform() - 1.5) * 2.0;
                let score = f64::from((1.0 / (1.0 + (-z).exp())) as f32);
                let r = (uniform() * 100.0) as u64;
                labels.push(i32::from(positive));
                scores.push(score);
                sexes.push(if female { "Female" } else { "Male" });
                race.push(races[race_weights.iter().position(|&w| r < w).unwrap_or(0)]);
            }
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(labels)) as ArrayRef,
                    Arc::new(Float64Array::from(scores)),
                    Arc::new(StringArray::from(sexes)),
                    Arc::new(StringArray::from(race)),
                ],
            )?;
            sink.write(&batch).await?;
            done += n;
        }
        sink.finish().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
