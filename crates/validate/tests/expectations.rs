//! Every supported expectation type on a small table with nulls, NaN, ties and
//! duplicates, with results worked out by hand from GE's rules; plus empty tables,
//! `mostly`, strict bounds, row conditions and wrong kwargs.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use kiln_validate::{ExpectationResult, Suite, Validator};
use serde_json::{Value, json};

fn ts(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

fn table() -> RecordBatch {
    let t = TimestampMicrosecondArray::from(vec![
        Some(ts("2024-01-01T00:00:00Z")),
        Some(ts("2024-06-01T00:00:00Z")),
        None,
        Some(ts("2024-03-01T00:00:00Z")),
        Some(ts("2023-12-31T00:00:00Z")),
    ])
    .with_timezone("UTC");
    RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                Some(3),
                None,
                Some(5),
            ])) as ArrayRef,
        ),
        (
            "f",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                Some(1.5),
                Some(f64::NAN),
                Some(2.5),
                None,
            ])) as ArrayRef,
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some("yy"),
                None,
                Some("x"),
                Some("zzz"),
            ])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(Int64Array::from(vec![1, 1, 2, 0, 5])) as ArrayRef,
        ),
        (
            "c",
            Arc::new(Int64Array::from(vec![0, 1, 1, 0, 0])) as ArrayRef,
        ),
        (
            "d",
            Arc::new(Int64Array::from(vec![1, 1, 2, 2, 3])) as ArrayRef,
        ),
        (
            "e",
            Arc::new(Int64Array::from(vec![7, 7, 8, 9, 9])) as ArrayRef,
        ),
        ("t", Arc::new(t) as ArrayRef),
    ])
    .unwrap()
}

fn suite(expectations: Value) -> Suite {
    Suite::parse(
        &json!({"name": "t", "expectations": expectations}).to_string(),
        "suite.json",
    )
    .unwrap()
}

/// Runs expectations over batches (the table split in two batches, to exercise state
/// carried across batches).
fn run_all(expectations: Value, batches: &[RecordBatch]) -> Vec<ExpectationResult> {
    let suite = suite(expectations);
    let mut v = Validator::new(&suite, "suite.json", batches[0].schema(), false).unwrap();
    for b in batches {
        v.update(b).unwrap();
    }
    v.finish("memory").results
}

fn run(kind: &str, kwargs: Value) -> ExpectationResult {
    let t = table();
    let batches = [t.slice(0, 2), t.slice(2, 3)];
    run_all(json!([{"type": kind, "kwargs": kwargs}]), &batches).remove(0)
}

fn unexpected(r: &ExpectationResult) -> u64 {
    r.result["unexpected_count"].as_u64().unwrap()
}

fn observed(r: &ExpectationResult) -> &Value {
    &r.result["observed_value"]
}

#[test]
fn null_expectations_count_nulls_over_all_rows() {
    let r = run(
        "expect_column_values_to_not_be_null",
        json!({"column": "a"}),
    );
    assert!(!r.success);
    assert_eq!(r.result["element_count"], 5);
    assert_eq!(unexpected(&r), 1);
    assert_eq!(r.result["unexpected_percent"], 20.0);
    assert_eq!(r.result["partial_unexpected_list"], json!([null]));
    assert!(
        r.result.get("missing_count").is_none(),
        "GE reports no missing_count here"
    );
    assert!(
        run(
            "expect_column_values_to_not_be_null",
            json!({"column": "a", "mostly": 0.8})
        )
        .success
    );
    // NaN is missing, as in pandas.
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_not_be_null",
            json!({"column": "f"})
        )),
        2
    );
    let r = run("expect_column_values_to_be_null", json!({"column": "s"}));
    assert_eq!((r.success, unexpected(&r)), (false, 4));
}

#[test]
fn between_ignores_nulls_and_honours_strictness_and_mostly() {
    let r = run(
        "expect_column_values_to_be_between",
        json!({"column": "a", "min_value": 2, "max_value": 5}),
    );
    assert!(!r.success);
    assert_eq!(r.result["element_count"], 5);
    assert_eq!(r.result["missing_count"], 1);
    assert_eq!(r.result["missing_percent"], 20.0);
    assert_eq!(unexpected(&r), 1);
    assert_eq!(r.result["unexpected_percent"], 25.0);
    assert_eq!(r.result["unexpected_percent_total"], 20.0);
    assert_eq!(r.result["unexpected_percent_nonmissing"], 25.0);
    assert_eq!(r.result["partial_unexpected_list"], json!([1]));
    assert_eq!(
        r.result["partial_unexpected_counts"],
        json!([{"value": 1, "count": 1}])
    );
    assert!(
        run(
            "expect_column_values_to_be_between",
            json!({"column": "a", "min_value": 2, "mostly": 0.75})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_values_to_be_between",
            json!({"column": "a", "min_value": 2, "mostly": 0.76})
        )
        .success
    );
    let strict = run(
        "expect_column_values_to_be_between",
        json!({"column": "a", "min_value": 1, "max_value": 5, "strict_min": true, "strict_max": true}),
    );
    assert_eq!(unexpected(&strict), 2);
    assert!(
        run(
            "expect_column_values_to_be_between",
            json!({"column": "a", "min_value": 1, "max_value": 5})
        )
        .success
    );
    // Floats with NaN: NaN is missing, not unexpected.
    let r = run(
        "expect_column_values_to_be_between",
        json!({"column": "f", "max_value": 2.0}),
    );
    assert_eq!(
        (unexpected(&r), r.result["missing_count"].as_u64()),
        (1, Some(2))
    );
    // Timestamps against dates.
    let r = run(
        "expect_column_values_to_be_between",
        json!({"column": "t", "min_value": "2024-01-01"}),
    );
    assert_eq!(unexpected(&r), 1);
    assert_eq!(
        r.result["partial_unexpected_list"],
        json!(["2023-12-31T00:00:00"])
    );
}

#[test]
fn sets_regexes_and_lengths() {
    let r = run(
        "expect_column_values_to_be_in_set",
        json!({"column": "s", "value_set": ["x", "yy"]}),
    );
    assert_eq!((r.success, unexpected(&r)), (false, 1));
    assert_eq!(r.result["partial_unexpected_list"], json!(["zzz"]));
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_not_be_in_set",
            json!({"column": "a", "value_set": [1, 2]})
        )),
        2
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_be_in_set",
            json!({"column": "f", "value_set": [0.5, 1.5, 2.5]})
        )),
        0
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_match_regex",
            json!({"column": "s", "regex": "^x"})
        )),
        2
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_not_match_regex",
            json!({"column": "s", "regex": "y"})
        )),
        1
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_match_regex_list",
            json!({"column": "s", "regex_list": ["^x", "^z"]})
        )),
        1
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_match_regex_list",
            json!({"column": "s", "regex_list": ["^x", "^z"], "match_on": "all"})
        )),
        4
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_not_match_regex_list",
            json!({"column": "s", "regex_list": ["y", "z"]})
        )),
        2
    );
    // Regexes search (re.search), on the text of non-string values too.
    assert_eq!(
        unexpected(&run(
            "expect_column_values_to_match_regex",
            json!({"column": "a", "regex": "[1-3]"})
        )),
        1
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_value_lengths_to_be_between",
            json!({"column": "s", "min_value": 1, "max_value": 2})
        )),
        1
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_value_lengths_to_equal",
            json!({"column": "s", "value": 1})
        )),
        2
    );
}

#[test]
fn uniqueness_flags_every_repeated_row() {
    let r = run("expect_column_values_to_be_unique", json!({"column": "s"}));
    assert_eq!((r.success, unexpected(&r)), (false, 2));
    assert_eq!(r.result["partial_unexpected_list"], json!(["x", "x"]));
    assert!(run("expect_column_values_to_be_unique", json!({"column": "a"})).success);
    let r = run(
        "expect_compound_columns_to_be_unique",
        json!({"column_list": ["d", "e"]}),
    );
    assert_eq!(unexpected(&r), 2);
    assert_eq!(r.result["partial_unexpected_list"], json!([[1, 7], [1, 7]]));
    assert!(
        run(
            "expect_compound_columns_to_be_unique",
            json!({"column_list": ["a", "b"]})
        )
        .success
    );
    let r = run(
        "expect_select_column_values_to_be_unique_within_record",
        json!({"column_list": ["b", "c"]}),
    );
    assert_eq!(unexpected(&r), 2);
    assert!(
        run(
            "expect_column_values_to_be_unique",
            json!({"column": "s", "mostly": 0.5})
        )
        .success
    );
}

/// Parquet text arrives as dictionary arrays, CSV text as plain strings (which the
/// validator dictionary-encodes per batch): every check on text must give the same
/// result from both (nulls, repeats across batches and partial lists included).
#[test]
fn dictionary_text_gives_the_results_of_plain_text() {
    use arrow::datatypes::{DataType, Field, Schema};
    let t = table();
    let as_dictionary = |batch: &RecordBatch| {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Field::new(f.name(), dict.clone(), true),
                _ => f.as_ref().clone(),
            })
            .collect();
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(&fields)
            .map(|(c, f)| arrow::compute::cast(c, f.data_type()).unwrap())
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let checks = json!([
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["x", "zzz"]}},
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "s", "value_set": ["yy"]}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "^x"}},
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "s", "min_value": 2}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}},
        {"type": "expect_column_values_to_be_null", "kwargs": {"column": "s"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "s"}},
        {"type": "expect_column_distinct_values_to_equal_set", "kwargs": {"column": "s", "value_set": ["x", "yy"]}},
        {"type": "expect_column_unique_value_count_to_be_between", "kwargs": {"column": "s", "min_value": 3}},
        {"type": "expect_column_most_common_value_to_be_in_set", "kwargs": {"column": "s", "value_set": ["x"]}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["s", "d"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["x"], "row_condition": "d>1", "condition_parser": "pandas"}},
    ]);
    let plain = [t.slice(0, 2), t.slice(2, 3)];
    let dict = [as_dictionary(&plain[0]), as_dictionary(&plain[1])];
    let (a, b) = (run_all(checks.clone(), &plain), run_all(checks, &dict));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.success, &x.result, &x.exception_info),
            (y.success, &y.result, &y.exception_info),
            "{}",
            x.expectation_config.kind
        );
    }
    // Not vacuous: some of them fail, with values listed.
    assert!(a.iter().any(|r| !r.success));
    assert_eq!(a[0].result["partial_unexpected_list"], json!(["yy"]));
}

/// Uniqueness over more keys than fit one in-memory chunk: the keys go to sorted runs
/// in temporary files, and repeats that land in different runs are still found.
#[test]
fn uniqueness_is_exact_when_keys_spill_to_disk() {
    let rows = 1_200_000i64;
    // Unique ids, except that the last 3 rows repeat ids 7, 8 and 9 of the first batch.
    let ids: Vec<i64> = (0..rows)
        .map(|i| if i >= rows - 3 { 7 + i - (rows - 3) } else { i })
        .collect();
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        (
            "k",
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i % 2))),
        ),
    ])
    .unwrap();
    let batches: Vec<RecordBatch> = (0..rows as usize)
        .step_by(65_536)
        .map(|o| batch.slice(o, 65_536.min(rows as usize - o)))
        .collect();
    let r = run_all(
        json!([
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "k"]}},
            {"type": "expect_column_proportion_of_unique_values_to_be_between", "kwargs": {"column": "id", "min_value": 0.0}},
        ]),
        &batches,
    );
    // Ids 7, 8, 9 appear twice each: six rows.
    assert_eq!(unexpected(&r[0]), 6);
    assert_eq!(
        r[0].result["partial_unexpected_list"],
        json!([7, 7, 8, 8, 9, 9])
    );
    // (id, k) repeats only where the repeated id's row has the same parity: count it
    // from the data.
    let mut pairs: std::collections::HashMap<(i64, i64), u64> = Default::default();
    for (i, &id) in ids.iter().enumerate() {
        *pairs.entry((id, i as i64 % 2)).or_default() += 1;
    }
    let repeated: u64 = pairs.values().filter(|&&c| c > 1).sum();
    assert!(repeated > 0);
    assert_eq!(unexpected(&r[1]), repeated);
    let distinct = (rows - 3) as f64;
    assert_eq!(observed(&r[2]).as_f64().unwrap(), distinct / rows as f64);
}

#[test]
fn column_pairs_and_row_sums() {
    let r = run(
        "expect_column_pair_values_a_to_be_greater_than_b",
        json!({"column_A": "a", "column_B": "b"}),
    );
    assert_eq!(unexpected(&r), 3);
    assert_eq!(r.result["element_count"], 5);
    let r = run(
        "expect_column_pair_values_a_to_be_greater_than_b",
        json!({"column_A": "a", "column_B": "b", "or_equal": true}),
    );
    assert_eq!(unexpected(&r), 1);
    let r = run(
        "expect_column_pair_values_a_to_be_greater_than_b",
        json!({"column_A": "a", "column_B": "b", "or_equal": true, "ignore_row_if": "either_value_is_missing"}),
    );
    assert_eq!(
        (
            r.success,
            unexpected(&r),
            r.result["missing_count"].as_u64()
        ),
        (true, 0, Some(1))
    );
    assert_eq!(
        unexpected(&run(
            "expect_column_pair_values_to_be_equal",
            json!({"column_A": "b", "column_B": "c"})
        )),
        3
    );
    let r = run(
        "expect_multicolumn_sum_to_equal",
        json!({"column_list": ["b", "c"], "sum_total": 2}),
    );
    assert_eq!(unexpected(&r), 4);
    assert!(
        run(
            "expect_multicolumn_sum_to_equal",
            json!({"column_list": ["b", "c"], "sum_total": 2, "mostly": 0.2})
        )
        .success
    );
}

#[test]
fn aggregates_match_pandas() {
    let between = |kind: &str, column: &str| run(kind, json!({"column": column, "min_value": 0}));
    assert_eq!(
        observed(&between("expect_column_min_to_be_between", "a")),
        &json!(1)
    );
    assert_eq!(
        observed(&between("expect_column_max_to_be_between", "a")),
        &json!(5)
    );
    assert_eq!(
        observed(&between("expect_column_mean_to_be_between", "a")),
        &json!(2.75)
    );
    assert_eq!(
        observed(&between("expect_column_mean_to_be_between", "f")),
        &json!(1.5)
    );
    assert_eq!(
        observed(&between("expect_column_median_to_be_between", "a")),
        &json!(2.5)
    );
    assert_eq!(
        observed(&between("expect_column_sum_to_be_between", "a")),
        &json!(11)
    );
    let sd = observed(&between("expect_column_stdev_to_be_between", "a"))
        .as_f64()
        .unwrap();
    assert!(
        (sd - (8.75f64 / 3.0).sqrt()).abs() < 1e-12,
        "sample stdev, n − 1"
    );
    // Bounds: inclusive unless strict; one-sided when one is null.
    assert!(
        run(
            "expect_column_mean_to_be_between",
            json!({"column": "a", "min_value": 2.75, "max_value": 2.75})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_mean_to_be_between",
            json!({"column": "a", "min_value": 2.75, "strict_min": true})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_max_to_be_between",
            json!({"column": "a", "max_value": 4})
        )
        .success
    );
    let q = run(
        "expect_column_quantile_values_to_be_between",
        json!({"column": "a", "quantile_ranges": {"quantiles": [0.0, 0.5, 1.0], "value_ranges": [[1, 1], [3, 3], [5, null]]}}),
    );
    assert!(q.success, "{:?}", q.result);
    assert_eq!(
        observed(&q)["values"],
        json!([1.0, 3.0, 5.0]),
        "numpy 'nearest': index 1.5 rounds to 2"
    );
    let q = run(
        "expect_column_quantile_values_to_be_between",
        json!({"column": "a", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[2, 2.5]]}, "allow_relative_error": "linear"}),
    );
    assert!(q.success);
    assert_eq!(
        observed(&run(
            "expect_column_unique_value_count_to_be_between",
            json!({"column": "s", "min_value": 3, "max_value": 3})
        )),
        &json!(3)
    );
    assert_eq!(
        observed(&run(
            "expect_column_proportion_of_unique_values_to_be_between",
            json!({"column": "s", "min_value": 0.75})
        )),
        &json!(0.75)
    );
    assert_eq!(
        observed(&run(
            "expect_column_proportion_of_non_null_values_to_be_between",
            json!({"column": "a", "min_value": 0.8})
        )),
        &json!(0.8)
    );
    let r = run(
        "expect_column_most_common_value_to_be_in_set",
        json!({"column": "s", "value_set": ["x"]}),
    );
    assert_eq!((r.success, observed(&r)), (true, &json!(["x"])));
    // Ties: d has 1 and 2 twice each.
    let r = run(
        "expect_column_most_common_value_to_be_in_set",
        json!({"column": "d", "value_set": [1]}),
    );
    assert_eq!((r.success, observed(&r)), (false, &json!([1, 2])));
    assert!(
        run(
            "expect_column_most_common_value_to_be_in_set",
            json!({"column": "d", "value_set": [1], "ties_okay": true})
        )
        .success
    );
    // Freshness: the latest timestamp.
    let r = run(
        "expect_column_max_to_be_between",
        json!({"column": "t", "min_value": "2024-05-01T00:00:00+00:00", "max_value": "2024-12-31"}),
    );
    assert_eq!(
        (r.success, observed(&r)),
        (true, &json!("2024-06-01T00:00:00"))
    );
}

#[test]
fn distinct_value_sets_report_as_ge_1x() {
    let r = run(
        "expect_column_distinct_values_to_be_in_set",
        json!({"column": "s", "value_set": ["x", "yy"]}),
    );
    assert_eq!((r.success, unexpected(&r)), (false, 1));
    assert_eq!(observed(&r), &Value::Null);
    assert_eq!(r.result["partial_unexpected_list"], json!(["zzz"]));
    let r = run(
        "expect_column_distinct_values_to_contain_set",
        json!({"column": "s", "value_set": ["x", "q"]}),
    );
    assert_eq!(
        (r.success, r.result["missing_count"].as_u64()),
        (false, Some(1))
    );
    assert!(
        run(
            "expect_column_distinct_values_to_equal_set",
            json!({"column": "s", "value_set": ["x", "yy", "zzz"]})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_distinct_values_to_equal_set",
            json!({"column": "s", "value_set": ["x", "yy"]})
        )
        .success
    );
}

#[test]
fn table_shape_and_types() {
    assert!(
        run(
            "expect_table_row_count_to_be_between",
            json!({"min_value": 1, "max_value": 5})
        )
        .success
    );
    assert!(
        !run(
            "expect_table_row_count_to_be_between",
            json!({"min_value": 1, "max_value": 5, "strict_max": true})
        )
        .success
    );
    assert!(run("expect_table_row_count_to_equal", json!({"value": 5})).success);
    assert!(run("expect_table_column_count_to_equal", json!({"value": 8})).success);
    assert!(
        !run(
            "expect_table_column_count_to_be_between",
            json!({"max_value": 7})
        )
        .success
    );
    let names = json!(["a", "f", "s", "b", "c", "d", "e", "t"]);
    assert!(
        run(
            "expect_table_columns_to_match_ordered_list",
            json!({"column_list": names})
        )
        .success
    );
    assert!(
        !run(
            "expect_table_columns_to_match_ordered_list",
            json!({"column_list": ["f", "a"]})
        )
        .success
    );
    assert!(
        run(
            "expect_table_columns_to_match_set",
            json!({"column_set": ["a", "b"], "exact_match": false})
        )
        .success
    );
    assert!(
        !run(
            "expect_table_columns_to_match_set",
            json!({"column_set": ["a", "b"]})
        )
        .success
    );
    assert!(
        run(
            "expect_column_to_exist",
            json!({"column": "s", "column_index": 2})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_to_exist",
            json!({"column": "s", "column_index": 0})
        )
        .success
    );
    assert!(!run("expect_column_to_exist", json!({"column": "nope"})).success);
    let r = run(
        "expect_column_values_to_be_of_type",
        json!({"column": "a", "type_": "int64"}),
    );
    assert_eq!((r.success, observed(&r)), (true, &json!("int64")));
    assert!(
        run(
            "expect_column_values_to_be_of_type",
            json!({"column": "s", "type_": "str"})
        )
        .success
    );
    assert!(
        !run(
            "expect_column_values_to_be_of_type",
            json!({"column": "a", "type_": "float64"})
        )
        .success
    );
    assert!(
        run(
            "expect_column_values_to_be_in_type_list",
            json!({"column": "f", "type_list": ["int64", "float64"]})
        )
        .success
    );
}

#[test]
fn a_missing_column_fails_the_expectation_not_the_run() {
    let r = run(
        "expect_column_values_to_not_be_null",
        json!({"column": "nope"}),
    );
    assert!(!r.success);
    assert!(r.exception_info.raised_exception);
    assert_eq!(
        r.exception_info.exception_message.as_deref(),
        Some("column `nope` does not exist")
    );
    let r = run(
        "expect_column_mean_to_be_between",
        json!({"column": "s", "min_value": 0}),
    );
    assert!(
        !r.success
            && r.exception_info
                .exception_message
                .unwrap()
                .contains("numeric")
    );
}

#[test]
fn empty_tables_follow_ge() {
    let empty = table().slice(0, 0);
    let results = run_all(
        json!([
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
            {"type": "expect_column_sum_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 0}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "s"}},
        ]),
        &[empty],
    );
    assert!(results[0].success, "vacuously true");
    assert_eq!(results[0].result["element_count"], 0);
    assert!(results[1].success);
    assert_eq!(results[1].result["unexpected_percent"], Value::Null);
    assert!(!results[2].success, "no mean: observed null fails");
    assert_eq!(observed(&results[2]), &Value::Null);
    assert_eq!(observed(&results[3]), &json!(0));
    assert!(results[4].success && results[5].success);
}

#[test]
fn row_condition_selects_rows_first() {
    let r = run(
        "expect_column_values_to_be_between",
        json!({"column": "a", "max_value": 3, "row_condition": "col(\"a\") > 1", "condition_parser": "great_expectations"}),
    );
    assert_eq!(
        (r.result["element_count"].as_u64(), unexpected(&r)),
        (Some(3), 1)
    );
    let r = run(
        "expect_table_row_count_to_equal",
        json!({"value": 2, "row_condition": "s == 'x'", "condition_parser": "pandas"}),
    );
    assert!(r.success);
}

#[test]
fn statistics_and_severity() {
    let t = table();
    let suite = suite(json!([
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "warning"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}},
    ]));
    let mut v = Validator::new(&suite, "suite.json", t.schema(), false).unwrap();
    v.update(&t).unwrap();
    let result = v.finish("memory");
    assert!(!result.success);
    assert_eq!(result.statistics.evaluated_expectations, 3);
    assert_eq!(result.statistics.successful_expectations, 1);
    assert_eq!(result.statistics.unsuccessful_expectations, 2);
    assert!((result.statistics.success_percent.unwrap() - 100.0 / 3.0).abs() < 1e-12);
    let blocking = result.blocking_failures();
    assert_eq!(blocking.len(), 1, "the warning does not block");
    assert!(
        blocking[0]
            .describe()
            .starts_with("`s` expect_column_values_to_not_be_null: 1 unexpected"),
        "{}",
        blocking[0].describe()
    );
    assert!(
        result
            .results
            .iter()
            .all(|r| r.meta["kiln"]["seconds"].as_f64().unwrap() >= 0.0)
    );
}

fn compile_error(kind: &str, kwargs: Value) -> String {
    let suite = suite(json!([{"type": kind, "kwargs": kwargs}]));
    match Validator::new(&suite, "suite.json", table().schema(), false) {
        Ok(_) => panic!("{kind} {kwargs} compiled"),
        Err(e) => {
            assert_eq!(e.class().code(), 2);
            e.to_string()
        }
    }
}

#[test]
fn wrong_kwargs_name_the_expectation_and_the_kwarg() {
    let e = compile_error(
        "expect_column_values_to_be_between",
        json!({"column": "a", "min_value": 1, "maxvalue": 3}),
    );
    assert!(e.starts_with("suite suite.json: expectations[0] expect_column_values_to_be_between: unknown kwarg `maxvalue`"), "{e}");
    let e = compile_error(
        "expect_column_values_to_not_be_null",
        json!({"column": "a", "mostly": 1.5}),
    );
    assert!(
        e.contains("`mostly` must be between 0 and 1, got 1.5"),
        "{e}"
    );
    let e = compile_error("expect_column_values_to_be_in_set", json!({"column": "a"}));
    assert!(e.contains("missing required kwarg `value_set`"), "{e}");
    let e = compile_error(
        "expect_column_values_to_be_between",
        json!({"column": "a", "min_value": "abc"}),
    );
    assert!(
        e.contains("`min_value` must be a number or a date, got \"abc\""),
        "{e}"
    );
    let e = compile_error("expect_column_values_to_be_between", json!({"column": "a"}));
    assert!(
        e.contains("min_value and max_value cannot both be None"),
        "{e}"
    );
    let e = compile_error(
        "expect_column_values_to_match_regex",
        json!({"column": "s", "regex": "("}),
    );
    assert!(e.contains("regex `(`"), "{e}");
    let e = compile_error(
        "expect_column_values_to_be_between",
        json!({"column": "a", "min_value": 1, "row_condition": "a > 1 or a < 0"}),
    );
    assert!(e.contains("is not supported"), "{e}");
    let e = compile_error("expect_column_values_to_be_purple", json!({"column": "a"}));
    assert!(
        e.contains("unknown expectation type") && e.contains("expect_column_values_to_be_unique"),
        "{e}"
    );
}

#[test]
fn unknown_types_can_be_skipped() {
    let suite = suite(json!([
        {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "a"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
    ]));
    let mut v = Validator::new(&suite, "suite.json", table().schema(), true).unwrap();
    v.update(&table()).unwrap();
    let result = v.finish("memory");
    assert!(result.success);
    assert_eq!(result.results.len(), 1);
    assert_eq!(
        result.meta["skipped_expectations"][0]["type"],
        "expect_column_values_to_be_purple"
    );
}
