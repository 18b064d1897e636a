//! kiln-fairness as a user runs it: a standalone audit compared with Fairlearn's
//! numbers for the same file, and the gate inside a run on Adult.

use std::path::PathBuf;
use std::process::{Command, Output};

use kiln_testkit::{adult_dir, bin, parse_svg, run, stderr, workspace_root};

fn fairness(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_kiln-fairness"))
        .args(args)
        .env("KILN_ADULT_DIR", adult_dir()))
}

fn fixture(name: &str) -> PathBuf {
    // At run time: a binary built in another checkout keeps that checkout's `env!` path.
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures")
    .join(name)
}

#[test]
fn standalone_audit_equals_fairlearn() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("report.json");
    let out = fairness(&[
        "--predictions",
        fixture("predictions.csv").to_str().unwrap(),
        "--sensitive",
        "sex,race",
        "--min-group-count",
        "30",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("too small, not compared"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("expected.json")).unwrap()).unwrap();
    for attribute in ["sex", "race", "sex × race"] {
        let ours = report["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["attribute"] == attribute)
            .unwrap();
        let theirs = &expected[attribute];
        // Groups: every group Fairlearn saw (the included ones) with the same rates.
        for (name, group) in theirs["groups"].as_object().unwrap() {
            let g = ours["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["group"] == name.as_str())
                .unwrap_or_else(|| panic!("{attribute}: no group {name}"));
            assert_eq!(g["count"], group["count"], "{attribute}/{name} count");
            assert_eq!(g["excluded"], false);
            for rate in ["selection_rate", "tpr", "fpr", "precision"] {
                let (a, e) = (g[rate].as_f64().unwrap(), group[rate].as_f64().unwrap());
                assert!(
                    (a - e).abs() < 1e-9,
                    "{attribute}/{name} {rate}: kiln {a} vs fairlearn {e}"
                );
            }
        }
        let excluded: Vec<&str> = ours["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["excluded"] == true)
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        let expected_excluded: Vec<&str> = expected["excluded"]
            .get(attribute)
            .map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(excluded, expected_excluded, "{attribute}: excluded groups");
        for metric in [
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equal_opportunity_difference",
            "equal_opportunity_ratio",
            "equalized_odds_difference",
            "equalized_odds_ratio",
            "predictive_parity_ratio",
        ] {
            let (a, e) = (
                ours["disparities"][metric].as_f64().unwrap(),
                theirs[metric].as_f64().unwrap(),
            );
            assert!(
                (a - e).abs() < 1e-9,
                "{attribute} {metric}: kiln {a} vs fairlearn {e}"
            );
            if let Some(interval) = ours["intervals"].get(metric) {
                assert!(interval["low"].as_f64().unwrap() <= interval["high"].as_f64().unwrap());
            }
        }
    }
}

#[test]
fn adult_shows_the_sex_gap_and_a_failed_gate_is_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let spec = workspace_root().join("examples/adult/spec.yaml");
    let common = [
        "--spec",
        spec.to_str().unwrap(),
        "--run",
        run_dir.to_str().unwrap(),
        "-q",
    ];
    for step in ["kiln-prepare", "kiln-train", "kiln-evaluate"] {
        let out = run(Command::new(bin(step))
            .args(common)
            .env("KILN_ADULT_DIR", adult_dir()));
        assert!(out.status.success(), "{step}: {}", stderr(&out));
    }
    // The example ships a mitigated model; take mitigation and the gate out to see the
    // unmitigated model's gap, then put the gate back alone.
    let unmitigated = [
        "--set",
        "fairness.mitigation=null",
        "--set",
        "fairness.gates=[]",
    ];
    let gate = "fairness.gates=[{metric: demographic_parity_ratio, attribute: sex, min: 0.8}]";
    let mut args = common.to_vec();
    args.extend(unmitigated);
    args.extend(["--set", gate]);
    let out = fairness(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.starts_with("error: 1 fairness gate(s) failed"), "{err}");
    assert!(
        err.contains("failed: DemographicParityRatio of `sex` is 0."),
        "{err}"
    );
    // The report is written either way, with the known gap: women are selected far less.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("fairness/report.json")).unwrap())
            .unwrap();
    let sex = report["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == "sex")
        .unwrap();
    let ratio = sex["disparities"]["demographic_parity_ratio"]
        .as_f64()
        .unwrap();
    assert!(ratio < 0.5, "demographic parity ratio for sex {ratio}");
    assert!(
        report["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["attribute"] == "sex × race")
    );
    assert_eq!(report["passed"], false);
    for plot in ["sex.svg", "race.svg", "sex_x_race.svg"] {
        let (tag, elements) = parse_svg(&run_dir.join("fairness/plots").join(plot));
        assert_eq!(tag, "{http://www.w3.org/2000/svg}svg", "{plot}");
        assert!(elements > 10, "{plot}: {elements}");
    }
    // Without the gate the step passes.
    let mut args = common.to_vec();
    args.extend(unmitigated);
    let out = fairness(&args);
    assert!(out.status.success(), "{}", stderr(&out));

    // With mitigation (thresholds per sex chosen on train's validation rows) the same
    // gate passes on the test rows, and the accuracy cost is reported.
    let mitigation =
        "fairness.mitigation={constraint: demographic_parity, attribute: sex, min_ratio: 0.85}";
    let mut args = common.to_vec();
    args.extend(["--set", gate, "--set", mitigation]);
    let out = fairness(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("fairness/report.json")).unwrap())
            .unwrap();
    let m = &report["mitigation"];
    assert_eq!(m["feasible"], true, "{m}");
    let before = m["test"]["before"]["ratio"].as_f64().unwrap();
    let after = m["test"]["after"]["ratio"].as_f64().unwrap();
    assert!(before < 0.5 && after >= 0.8, "ratio {before} → {after}");
    assert!(m["validation"]["after"]["ratio"].as_f64().unwrap() >= 0.85 - 1e-9);
    let cost = m["accuracy_cost"].as_f64().unwrap();
    assert!((0.0..0.05).contains(&cost), "accuracy cost {cost}");
    let thresholds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("fairness/thresholds.json")).unwrap())
            .unwrap();
    let female = thresholds["thresholds"]["Female"].as_f64().unwrap();
    let male = thresholds["thresholds"]["Male"].as_f64().unwrap();
    assert!(
        female < male,
        "women get the lower threshold: {female} vs {male}"
    );
    assert_eq!(report["passed"], true);
}

#[test]
fn bad_predictions_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.csv");
    std::fs::write(&path, "label,score,sex\n1,0.9,F\n0,0.2,M\n").unwrap();
    let out = fairness(&[
        "--predictions",
        path.to_str().unwrap(),
        "--sensitive",
        "race",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("header has no column `race`"),
        "{}",
        stderr(&out)
    );
    let out = fairness(&["--predictions", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--sensitive"), "{}", stderr(&out));
}
