//! Feast itself over what prepare writes: `feast apply` on the repository in
//! `feature_store/`, `feast materialize` of a freshly prepared Adult `train.parquet`
//! into the SQLite online store, then `get_online_features` through the model's feature
//! service. The values served online must equal the Parquet's, nulls included
//! (`tests/feast/online_matches_parquet.py`, which also checks that it can tell two
//! rows apart). `tests/manifests.rs` keeps the quick offline check of the definitions.

use std::process::Command;

use kiln_testkit::{feast_python, run, stderr, stdout, workspace_root};

#[test]
fn feast_serves_the_prepared_values_online() {
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let prepared = run(kiln_testkit::adult_command(
        &kiln_testkit::bin("kiln"),
        Some("prepare"),
        &tmp.path().join("run"),
    )
    .arg("-q"));
    assert!(
        prepared.status.success(),
        "kiln prepare: {}",
        stderr(&prepared)
    );
    let table = tmp.path().join("run/prepare/train.parquet");
    let out = run(Command::new(feast_python())
        .arg(root.join("tests/feast/online_matches_parquet.py"))
        .arg(root.join("feature_store"))
        .arg(&table)
        .arg(tmp.path().join("feast"))
        // Feast's usage reporting is off: tests reach nothing outside loopback.
        .env("FEAST_USAGE", "False"));
    assert!(
        out.status.success(),
        "Feast's online values differ from the Parquet's:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    let summary = stdout(&out);
    assert!(
        summary.starts_with("feast: ") && summary.contains("32561 rows materialized"),
        "{summary}"
    );
}
