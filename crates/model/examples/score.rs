//! Scores a prepared table with a model bundle and prints ROC AUC and accuracy as JSON.
//! (A stop-gap for benchmarks until the evaluate step exists.)
//!
//! cargo run --release -p kiln-model --example score -- <bundle dir> <prepared parquet> <label column>

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use kiln_core::output::{write_stderr, write_stdout};
use kiln_core::parquet_io::read_parquet_all;
use kiln_core::store::{ArtifactStore, ObjectRef};
use kiln_model::{CpuBackend, ModelBundle};
use kiln_stats::metrics::{accuracy, roc_auc};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bundle, table, label] = args.as_slice() else {
        let _ = write_stdout("usage: score <bundle dir> <prepared parquet> <label column>\n");
        return std::process::ExitCode::from(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(async {
        let bundle =
            ModelBundle::<CpuBackend>::load(&ArtifactStore::open(bundle)?, &Default::default())
                .await?;
        let started = std::time::Instant::now();
        let (mut probabilities, mut labels) = (Vec::new(), Vec::new());
        for batch in read_parquet_all(&ObjectRef::parse(table)?).await? {
            probabilities.extend(bundle.predict_proba(&batch)?);
            let y = batch
                .column_by_name(label)
                .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned())
                .ok_or_else(|| {
                    kiln_core::Error::usage(format!("no Int32 label column `{label}`"))
                })?;
            labels.extend((0..y.len()).map(|i| u8::from(y.value(i) == 1)));
        }
        let report = serde_json::json!({
            "rows": labels.len(),
            "roc_auc": roc_auc(&probabilities, &labels),
            "accuracy": accuracy(&probabilities, &labels, bundle.metadata.decision_threshold),
            "predict_seconds": started.elapsed().as_secs_f64(),
        });
        write_stdout(&format!("{report}\n"))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = write_stderr(&format!("error: {e}\n"));
            std::process::ExitCode::from(e.class().code())
        }
    }
}
