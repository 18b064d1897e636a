//! prepare never panics on user input: a regression test for the crash found on real
//! data (a header row, filters that drop rows, a hash split), and a property test over
//! small random CSVs, schemas, filters and splits. Every case either succeeds or exits
//! 2 (or 3) with one line; exit 101 (a panic) fails the test.

use std::process::{Command, Output};

use proptest::prelude::*;

fn prepare(dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln-prepare"))
        .arg("--spec")
        .arg(dir.join("spec.yaml"))
        .arg("--run")
        .arg(dir.join("run"))
        .arg("-q")
        .output()
        .expect("run kiln-prepare")
}

fn spec(header: bool, filters: &str, split: &str) -> String {
    format!(
        r#"name: generated
data:
  format: csv
  csv: {{header: {header}, null_values: ["?"]}}
  sources:
    - {{uri: data.csv{source_split}}}
schema:
  - {{name: age, type: int}}
  - {{name: score, type: float}}
  - {{name: job, type: string}}
  - {{name: income, type: string}}
label: {{column: income, positive: ">50K", negative: "<=50K"}}
filters: {filters}
split: {split}
event_time: {{fixed: "2020-01-01T00:00:00Z"}}
transform:
  numeric: [{{column: age, standardize: true}}]
  categorical: [{{column: job}}]
"#,
        source_split = if split.contains("files") {
            ", split: train"
        } else {
            ""
        },
    )
}

#[test]
fn a_header_row_filters_that_drop_rows_and_a_hash_split_prepare_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("age,score,job,income\n");
    for i in 0..200 {
        let job = ["clerk", "Never-worked", "?", "nurse"][i % 4];
        let income = if i % 3 == 0 { ">50K" } else { "<=50K" };
        csv.push_str(&format!("{},{}.5,{job},{income}\n", 20 + i % 50, i % 7));
    }
    std::fs::write(dir.path().join("data.csv"), csv).unwrap();
    let filters = r#"[{column: job, op: ne, value: "Never-worked"}, {column: job, op: not_null}]"#;
    let split = "{method: hash, test_fraction: 0.25, key: age}";
    std::fs::write(dir.path().join("spec.yaml"), spec(true, filters, split)).unwrap();
    let out = prepare(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("run/prepare/manifest.json")).unwrap(),
    )
    .unwrap();
    // "Never-worked" and missing jobs: half of the 200 rows.
    assert_eq!(manifest["summary"]["filtered_out"], 100, "{manifest}");
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        (-5i64..120).prop_map(|v| v.to_string()),
        (-1.0f64..1.0).prop_map(|v| format!("{v:.3}")),
        Just("?".to_string()),
        Just(String::new()),
        "[a-z]{0,6}",
        Just("\"quoted, with comma\"".to_string()),
        Just(">50K".to_string()),
        Just("<=50K".to_string()),
    ]
}

/// A row that fits the schema (a missing job now and then).
fn good_row() -> impl Strategy<Value = String> {
    (
        0i64..90,
        -1.0f64..1.0,
        prop_oneof![4 => "[a-c]{1,2}", 1 => Just("?".to_string())],
        prop_oneof![Just(">50K"), Just("<=50K")],
    )
        .prop_map(|(a, s, j, l)| format!("{a},{s:.2},{j},{l}"))
}

/// Anything: wrong field counts, types and labels.
fn any_row() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => good_row(),
        1 => proptest::collection::vec(value(), 1..6).prop_map(|v| v.join(",")),
    ]
}

/// Mostly clean files (so filters and splits run), some with bad rows.
fn rows() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => proptest::collection::vec(good_row(), 0..40),
        1 => proptest::collection::vec(any_row(), 0..40),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    let column = prop_oneof![
        Just("age"),
        Just("score"),
        Just("job"),
        Just("income"),
        Just("nope")
    ];
    let op = prop_oneof![
        Just("eq"),
        Just("ne"),
        Just("lt"),
        Just("le"),
        Just("gt"),
        Just("ge"),
        Just("in"),
        Just("not_in"),
        Just("is_null"),
        Just("not_null")
    ];
    let literal = prop_oneof![
        (-5i64..100).prop_map(|v| v.to_string()),
        (-1.0f64..1.0).prop_map(|v| format!("{v:.2}")),
        "[a-c]{1,2}".prop_map(|s| format!("\"{s}\"")),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    (column, op, proptest::collection::vec(literal, 0..3)).prop_map(|(c, o, vals)| match o {
        "in" | "not_in" => format!("{{column: {c}, op: {o}, values: [{}]}}", vals.join(", ")),
        "is_null" | "not_null" => format!("{{column: {c}, op: {o}}}"),
        _ => match vals.first() {
            Some(v) => format!("{{column: {c}, op: {o}, value: {v}}}"),
            None => format!("{{column: {c}, op: {o}}}"),
        },
    })
}

fn split() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{method: files}".to_string()),
        (0.05f64..0.95).prop_map(|f| format!("{{method: hash, test_fraction: {f:.2}}}")),
        (
            prop_oneof![Just("age"), Just("job"), Just("score"), Just("nope")],
            0.05f64..0.95,
            0u64..5
        )
            .prop_map(|(k, f, s)| format!(
                "{{method: hash, key: {k}, test_fraction: {f:.2}, seed: {s}}}"
            )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn prepare_never_panics(
        header in any::<bool>(),
        rows in rows(),
        filters in proptest::collection::vec(filter(), 0..3),
        split in split(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::new();
        if header {
            csv.push_str("age,score,job,income\n");
        }
        for r in &rows {
            csv.push_str(r);
            csv.push('\n');
        }
        std::fs::write(dir.path().join("data.csv"), &csv).unwrap();
        let spec = spec(header, &format!("[{}]", filters.join(", ")), &split);
        std::fs::write(dir.path().join("spec.yaml"), &spec).unwrap();
        let out = prepare(dir.path());
        let code = out.status.code();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        prop_assert!(
            matches!(code, Some(0 | 2 | 3)),
            "exit {code:?} on\n{spec}\n{csv}\n{err}"
        );
        if code != Some(0) {
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            prop_assert_eq!(lines.len(), 1, "one line, not:\n{}\non\n{}\n{}", err, spec, csv);
            prop_assert!(lines[0].starts_with("error: "), "{}", err);
        }
    }
}
