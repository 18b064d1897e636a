//! The transform's tests: fitted parameters, batch and record agreement, reload.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use kiln_core::spec::{
    BucketSpec, CategoricalEncoding, CategoricalFeatureSpec, ClipSpec, ColumnSpec, ColumnType,
    Impute, MissingCategory, NumericFeatureSpec, TransformSpec,
};
use kiln_stats::profile::TableProfiler;

use super::*;

fn batch() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(2.0),
                None,
                Some(10.0),
                Some(4.0),
            ])) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Int64Array::from(vec![0, 5, 100, 7, 0])) as ArrayRef,
        ),
        (
            "c",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                Some("a"),
                None,
                Some("rare"),
            ])) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec {
            name: "x".into(),
            dtype: ColumnType::Float,
            nullable: true,
        },
        ColumnSpec {
            name: "n".into(),
            dtype: ColumnType::Int,
            nullable: true,
        },
        ColumnSpec {
            name: "c".into(),
            dtype: ColumnType::String,
            nullable: true,
        },
    ]
}

fn spec() -> TransformSpec {
    TransformSpec {
        derived: vec![],
        numeric: vec![
            NumericFeatureSpec {
                column: "x".into(),
                impute: Impute::Median,
                clip: Some(ClipSpec {
                    min: None,
                    max: Some(8.0),
                    lower_quantile: None,
                    upper_quantile: None,
                }),
                log1p: false,
                standardize: true,
                bucketize: Some(BucketSpec::Boundaries(vec![2.0, 5.0])),
                piecewise_linear: None,
                missing_indicator: true,
            },
            NumericFeatureSpec {
                column: "n".into(),
                impute: Impute::Constant(0.0),
                clip: None,
                log1p: true,
                standardize: false,
                bucketize: None,
                piecewise_linear: None,
                missing_indicator: false,
            },
        ],
        categorical: vec![CategoricalFeatureSpec {
            column: "c".into(),
            min_frequency: 2,
            max_categories: None,
            encoding: CategoricalEncoding::OneHot,
            missing: MissingCategory::Separate,
        }],
        lookup: None,
    }
}

pub(crate) fn fit(batch: &RecordBatch) -> FittedTransform {
    let mut profiler = TableProfiler::new(&batch.schema(), &["x", "n", "c"]);
    profiler.update(batch).unwrap();
    let mut fitter = TransformFitter::new(&spec(), &columns(), &profiler).unwrap();
    fitter.update(batch).unwrap();
    fitter.finish().unwrap()
}

#[test]
fn fits_the_expected_parameters() {
    let t = fit(&batch());
    let Feature::Numeric(x) = &t.features[0] else {
        panic!()
    };
    // median of [1, 2, 10, 4] = 3
    assert_eq!(x.impute, 3.0);
    // base values after impute and clip: [1, 2, 3, 8, 4]; mean 3.6, population std
    let mean = 3.6;
    let var = [1.0f64, 2.0, 3.0, 8.0, 4.0]
        .iter()
        .map(|v| (v - mean).powi(2))
        .sum::<f64>()
        / 5.0;
    let scale = x.scale.unwrap();
    assert!((scale.mean - mean).abs() < 1e-12);
    assert!((scale.std - var.sqrt()).abs() < 1e-12);
    let Feature::Categorical(c) = &t.features[2] else {
        panic!()
    };
    // "b" and "rare" appear once: below min_frequency 2.
    assert_eq!(c.vocabulary, vec!["a".to_string()]);
    assert_eq!(
        t.output_names,
        [
            "x",
            "x__missing",
            "x__bucket_0",
            "x__bucket_1",
            "x__bucket_2",
            "n",
            "c=a",
            "c=<unknown>",
            "c=<missing>"
        ]
    );
}

/// The rows of [`batch`] as JSON records give the same bits as `matrix`'s rows.
fn assert_records_match_batch(t: &FittedTransform, matrix: &crate::FeatureMatrix) {
    let records = [
        serde_json::json!({"x": 1.0, "n": 0, "c": "a"}),
        serde_json::json!({"x": 2.0, "n": 5, "c": "b"}),
        serde_json::json!({"x": null, "n": 100, "c": "a"}),
        serde_json::json!({"x": 10.0, "n": 7}),
        serde_json::json!({"x": 4.0, "n": 0, "c": "rare"}),
    ];
    for (i, record) in records.iter().enumerate() {
        let vector = t.apply_record(record.as_object().unwrap()).unwrap();
        let a: Vec<u32> = vector.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = matrix.row(i).iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b, "row {i}");
    }
}

#[test]
fn batch_and_json_records_give_identical_vectors() {
    let b = batch();
    let t = fit(&b);
    let matrix = t.apply_batch(&b).unwrap();
    assert_records_match_batch(&t, &matrix);
    // Row 4 ("rare") and row 1 ("b") fall in the unknown bucket; row 3 is missing.
    assert_eq!(&matrix.row(1)[6..], &[0.0, 1.0, 0.0]);
    assert_eq!(&matrix.row(3)[6..], &[0.0, 0.0, 1.0]);
    // Unseen categories go to unknown too.
    let v = t
        .apply_record(
            serde_json::json!({"x": 1, "n": 1, "c": "never-seen"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(&v[6..], &[0.0, 1.0, 0.0]);
    // Buckets: x=10 is clipped to 8 → bucket 2; x=2 → bucket 1 (edges are left-closed).
    assert_eq!(&matrix.row(3)[2..5], &[0.0, 0.0, 1.0]);
    assert_eq!(&matrix.row(1)[2..5], &[0.0, 1.0, 0.0]);
}

#[test]
fn reloaded_transform_is_bit_identical() {
    let b = batch();
    let t = fit(&b);
    let text = serde_json::to_vec_pretty(&t).unwrap();
    let reloaded = FittedTransform::from_json(&text, "transform.json").unwrap();
    assert_eq!(reloaded, t);
    let bits = |t: &FittedTransform| -> Vec<u32> {
        t.apply_batch(&b)
            .unwrap()
            .values
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    let (before, after) = (bits(&t), bits(&reloaded));
    assert_eq!(before, after);
}

#[test]
fn piecewise_linear_bins_come_from_train_quantiles_and_saturate() {
    let mut spec = spec();
    spec.numeric[0].piecewise_linear = Some(kiln_core::spec::PiecewiseLinearSpec { bins: 4 });
    let b = batch();
    let mut profiler = TableProfiler::new(&b.schema(), &["x", "n", "c"]);
    profiler.update(&b).unwrap();
    let mut fitter = TransformFitter::new(&spec, &columns(), &profiler).unwrap();
    fitter.update(&b).unwrap();
    let t = fitter.finish().unwrap();
    let Feature::Numeric(x) = &t.features[0] else {
        panic!()
    };
    // Train values of x (before impute): [1, 2, 4, 10], clipped at 8: quantiles
    // 0, 1/4, ..., 1 of [1, 2, 4, 10] are 1, 1.75, 3, 5.5, 10 → clipped 8.
    let edges = x.piecewise_linear.clone().unwrap();
    assert_eq!(edges, vec![1.0, 1.75, 3.0, 5.5, 8.0]);
    assert_eq!(x.width(), 1 + 1 + 3 + 4);
    assert_eq!(
        t.output_names[5..9],
        ["x__ple_0", "x__ple_1", "x__ple_2", "x__ple_3"]
    );
    let encode = |v: f64| {
        let mut out = vec![0f32; x.width()];
        x.encode(Some(v), &mut out);
        out[5..].to_vec()
    };
    // 2.0: bin 0 full, bin 1 at (2 − 1.75) / 1.25, the rest empty.
    assert_eq!(encode(2.0), vec![1.0, 0.2, 0.0, 0.0]);
    // Outside the train range: saturates instead of growing.
    assert_eq!(encode(-100.0), vec![0.0; 4]);
    assert_eq!(encode(1e9), vec![1.0; 4]);
    // A JSON record gives the same bits as the batch.
    let matrix = t.apply_batch(&b).unwrap();
    let record = t
        .apply_record(
            serde_json::json!({"x": 4.0, "n": 0, "c": "rare"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(record, matrix.row(4));
    // The edges travel in transform.json: reloaded, the encoding has the same bits.
    let text = serde_json::to_vec_pretty(&t).unwrap();
    let reloaded = FittedTransform::from_json(&text, "transform.json").unwrap();
    assert_eq!(reloaded, t);
    let bits = |m: &FeatureMatrix| m.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&reloaded.apply_batch(&b).unwrap()), bits(&matrix));
}

#[test]
fn wrong_record_types_are_named() {
    let t = fit(&batch());
    let err = t
        .apply_record(serde_json::json!({"x": "one"}).as_object().unwrap())
        .unwrap_err();
    assert_eq!(err.to_string(), "field `x`: expected a number, got \"one\"");
}

#[test]
fn a_derived_column_gives_the_same_values_for_batches_and_records() {
    use arrow::array::Float64Array;
    let b = batch();
    let mut spec = spec();
    spec.derived = vec![kiln_core::spec::DerivedSpec {
        name: "xn".into(),
        expr: kiln_core::spec::Expr::parse("x * 2 - n / 3").unwrap(),
    }];
    spec.numeric[1].column = "xn".into();
    // prepare writes the derived column into the train table; the fit reads it there.
    let derived = crate::derive_batch(&b, &spec.derived[0]).unwrap();
    let mut fields = b.schema().fields().to_vec();
    fields.push(std::sync::Arc::new(arrow::datatypes::Field::new(
        "xn",
        arrow::datatypes::DataType::Float64,
        true,
    )));
    let mut arrays = b.columns().to_vec();
    arrays.push(std::sync::Arc::new(Float64Array::from(derived.clone())));
    let table = RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        arrays,
    )
    .unwrap();
    let mut profiler = TableProfiler::new(&table.schema(), &["x", "xn", "c"]);
    profiler.update(&table).unwrap();
    let mut fitter = TransformFitter::new(&spec, &columns(), &profiler).unwrap();
    fitter.update(&table).unwrap();
    let t = fitter.finish().unwrap();
    // The derived column reads x and n: they are the raw inputs a request carries.
    assert_eq!(t.input_columns(), vec!["x", "n", "c"]);
    // Reloaded from JSON, as the server loads it.
    let json = serde_json::to_vec(&t).unwrap();
    let t = FittedTransform::from_json(&json, "transform.json").unwrap();
    // The raw batch (without the derived column, as a server's columnar request)
    // computes it; so does each JSON record.
    let matrix = t.apply_batch(&b).unwrap();
    assert_records_match_batch(&t, &matrix);
    // x missing → xn missing (imputed), not 0 − n/3.
    assert_eq!(derived[2], None);
    assert_eq!(derived[1], Some(4.0 - 5.0 / 3.0));
}
