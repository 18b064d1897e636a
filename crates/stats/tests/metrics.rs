//! kiln_stats::metrics against the values scikit-learn computed on the same fixture
//! files (tests/fixtures/metrics; `generate.py` there wrote them). No Python needed.

use kiln_stats::metrics::{Confusion, average_precision, brier, calibration, log_loss, roc_auc};

/// The crate folder as `cargo test` gives it at run time: a test binary compiled in
/// another checkout that shares the target directory keeps its own path in `env!`.
fn crate_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}

fn fixture(name: &str) -> (Vec<u8>, Vec<f64>) {
    let path = format!("{}/tests/fixtures/metrics/{name}.csv", crate_dir());
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let (y, s) = line.split_once(',').unwrap();
            (y.parse::<u8>().unwrap(), s.parse::<f64>().unwrap())
        })
        .unzip()
}

fn close(actual: f64, expected: &serde_json::Value, tolerance: f64, what: &str) {
    let expected = expected
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {expected}"));
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: kiln {actual} vs scikit-learn {expected}"
    );
}

#[test]
fn every_metric_equals_scikit_learn() {
    let path = format!("{}/tests/fixtures/metrics/expected.json", crate_dir());
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for name in ["ties", "continuous", "tiny"] {
        let (labels, scores) = fixture(name);
        let e = &expected[name];
        let c = Confusion::at(&scores, &labels, 0.5);
        assert_eq!(
            (c.tn, c.fp, c.fn_, c.tp),
            (
                e["confusion"]["tn"].as_u64().unwrap(),
                e["confusion"]["fp"].as_u64().unwrap(),
                e["confusion"]["fn"].as_u64().unwrap(),
                e["confusion"]["tp"].as_u64().unwrap()
            ),
            "{name}: confusion matrix"
        );
        close(
            c.accuracy(),
            &e["accuracy"],
            1e-9,
            &format!("{name} accuracy"),
        );
        close(
            c.precision(),
            &e["precision"],
            1e-9,
            &format!("{name} precision"),
        );
        close(c.recall(), &e["recall"], 1e-9, &format!("{name} recall"));
        close(c.f1(), &e["f1"], 1e-9, &format!("{name} f1"));
        close(
            log_loss(&scores, &labels),
            &e["log_loss"],
            1e-9,
            &format!("{name} log loss"),
        );
        close(
            brier(&scores, &labels),
            &e["brier"],
            1e-9,
            &format!("{name} brier"),
        );
        // Curve integrals.
        close(
            roc_auc(&scores, &labels).unwrap(),
            &e["roc_auc"],
            1e-6,
            &format!("{name} roc auc"),
        );
        close(
            average_precision(&scores, &labels).unwrap(),
            &e["average_precision"],
            1e-6,
            &format!("{name} average precision"),
        );
        let cal = calibration(&scores, &labels, 10);
        let fractions = e["calibration_fraction_positive"].as_array().unwrap();
        let means = e["calibration_mean_predicted"].as_array().unwrap();
        assert_eq!(
            cal.bins.len(),
            fractions.len(),
            "{name}: non-empty calibration bins"
        );
        for (bin, (fraction, mean)) in cal.bins.iter().zip(fractions.iter().zip(means)) {
            close(
                bin.fraction_positive,
                fraction,
                1e-9,
                &format!("{name} calibration fraction"),
            );
            close(
                bin.mean_predicted,
                mean,
                1e-9,
                &format!("{name} calibration mean"),
            );
        }
    }
}
