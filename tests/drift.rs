//! Offline and online drift are one definition: validate's PSI over a table and
//! kiln-serve's PSI over a window of the same rows are equal, values on the
//! histogram's bin edges, outside its range, missing and unseen categories included.

use std::sync::Arc;

use arrow::array::{Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use kiln_core::spec::DriftSpec;
use kiln_serve::drift::{DriftMonitor, DriftOptions};
use kiln_stats::profile::{ColumnStats, TableProfiler};
use kiln_validate::DriftCheck;

fn batch(xs: Vec<Option<f64>>, cs: Vec<Option<&str>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("c", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float64Array::from(xs)),
            Arc::new(StringArray::from(cs)),
        ],
    )
    .expect("batch")
}

#[test]
fn offline_and_online_psi_are_equal_on_the_same_rows_bin_edges_included() {
    // A reference whose equal-width edges are not exact in binary (0.1 steps).
    let xs: Vec<Option<f64>> = (0..3000)
        .map(|i| (i % 7 != 0).then(|| f64::from(i % 10) * 0.1))
        .collect();
    let cs: Vec<Option<&str>> = (0..3000)
        .map(|i| match i % 5 {
            0 => None,
            1 | 2 => Some("a"),
            3 => Some("b"),
            _ => Some("c"),
        })
        .collect();
    let reference = batch(xs, cs);
    let mut profiler = TableProfiler::new(&reference.schema(), &["x", "c"]);
    profiler.update(&reference).expect("profile");
    let profile = profiler.finish();
    let ColumnStats::Numeric { histogram, .. } = &profile.column("x").expect("x").stats else {
        panic!("x is numeric");
    };
    // Every edge itself, values either side of each, outliers, missing values; and
    // categories seen, unseen and missing.
    let mut current_x: Vec<Option<f64>> = Vec::new();
    for &e in &histogram.edges {
        current_x.extend([Some(e), Some(e), Some(e - 1e-12), Some(e + 1e-12)]);
    }
    current_x.extend([Some(-100.0), Some(1e9), None, None, Some(f64::NAN)]);
    let current_c: Vec<Option<&str>> = (0..current_x.len())
        .map(|i| match i % 6 {
            0 => None,
            1 => Some("a"),
            2 => Some("zzz"),
            _ => Some("b"),
        })
        .collect();
    let current = batch(current_x, current_c);
    // An edge at which the old arithmetic rule, (x − min) / width, picked another bin
    // than the bin whose lower edge it is: the case the rule used to disagree on.
    let (lo, bins) = (histogram.edges[0], histogram.edges.len() - 1);
    let width = (histogram.edges[bins] - lo) / bins as f64;
    assert!(
        histogram.edges[..bins]
            .iter()
            .enumerate()
            .any(|(i, &e)| (((e - lo) / width) as usize).min(bins - 1) != i),
        "the edges include one the arithmetic rule bins differently: {:?}",
        histogram.edges
    );

    let spec = DriftSpec {
        min_rows: 1,
        exclude: Vec::new(),
        ..DriftSpec::default()
    };
    let columns = vec!["x".to_string(), "c".to_string()];
    let mut offline = DriftCheck::new(profile.clone(), &columns, &spec).expect("check");
    offline.update(&current).expect("update");
    let report = offline.finish("reference", "current");

    let mut online = DriftMonitor::new(
        &profile,
        &columns,
        DriftOptions {
            window: 10_000,
            min_rows: 1,
            max_idle: std::time::Duration::from_secs(3600),
            threshold: 0.2,
        },
    );
    online.update(&current);
    let reading = online.reading();
    assert_eq!(reading.features.len(), 2);
    for (name, online_psi) in &reading.features {
        let column = report
            .columns
            .iter()
            .find(|c| &c.column == name)
            .unwrap_or_else(|| panic!("validate measured {name}"));
        let offline_psi = column
            .measures
            .iter()
            .find(|m| m.method == "psi")
            .expect("psi")
            .value;
        assert!(
            (offline_psi - online_psi).abs() < 1e-12,
            "{name}: offline {offline_psi} vs online {online_psi}"
        );
        assert!(
            offline_psi > 0.0,
            "{name}: the current rows differ from the reference"
        );
    }
}
