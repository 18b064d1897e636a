//! Each artifact's JSON, snapshotted (timestamps and paths redacted), and the committed
//! schemas checked against the types. `INSTA_UPDATE=always` / `KILN_BLESS=1` rewrite them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, json};

use super::bundle::{BundleMetadata, Library, TrainingMetrics};
use super::evaluate::{BestF1, EvaluationReport};
use super::fairness::{
    AttributeReport, BeforeAfter, DecisionSummary, FairnessReport, GateResult, GroupStats,
    GroupThresholds, MitigationReport,
};
use super::register::{Decision, GateVerdict, Registered};
use super::tracking::TrackedRun;
use super::train::{EpochRecord, TrainHistory, TrainSummary};
use super::validate::{
    ColumnDrift, DriftMeasure, DriftReport, ExceptionInfo, ExpectationConfig, ExpectationResult,
    Statistics, ValidateReport, ValidationResult,
};
use super::*;
use crate::contracts::measures::{BootstrapIntervals, Interval};
use crate::contracts::measures::{Calibration, CalibrationBin, Confusion};
use crate::manifest::InputRecord;
use crate::spec::{ColumnSpec, ColumnType, FairnessMetric, MitigationConstraint};
use crate::store::ContentHash;

fn hash() -> ContentHash {
    ContentHash {
        sha256: "ab".repeat(32),
        size: 1024,
    }
}

fn validation_result() -> ValidationResult {
    let mut kwargs = Map::new();
    kwargs.insert("column".into(), json!("age"));
    kwargs.insert("min_value".into(), json!(17));
    let mut result = Map::new();
    result.insert("element_count".into(), json!(100));
    result.insert("unexpected_count".into(), json!(2));
    let mut meta = Map::new();
    meta.insert("rows".into(), json!(100));
    ValidationResult {
        success: false,
        statistics: Statistics {
            evaluated_expectations: 1,
            successful_expectations: 0,
            unsuccessful_expectations: 1,
            success_percent: Some(0.0),
        },
        results: vec![ExpectationResult {
            success: false,
            expectation_config: ExpectationConfig {
                kind: "expect_column_values_to_be_between".into(),
                kwargs,
                meta: Map::new(),
                id: None,
                notes: None,
                severity: None,
            },
            result,
            exception_info: ExceptionInfo {
                raised_exception: false,
                exception_message: None,
                exception_traceback: None,
            },
            meta: Map::new(),
        }],
        suite_name: "adult".into(),
        meta,
    }
}

fn validate_report() -> ValidateReport {
    ValidateReport {
        format_version: ValidateReport::FORMAT_VERSION,
        passed: false,
        suite: "adult".into(),
        train: validation_result(),
        test: validation_result(),
        drift: Some(DriftReport {
            reference: "/runs/r/prepare/profile.json".into(),
            current: "/runs/r/prepare/test.parquet".into(),
            min_rows: 100,
            columns: vec![ColumnDrift {
                column: "age".into(),
                kind: "numeric".into(),
                reference_rows: 900,
                current_rows: 100,
                measures: vec![DriftMeasure {
                    method: "psi".into(),
                    value: 0.01,
                    threshold: 0.2,
                    drifted: false,
                }],
                verdict: "ok".into(),
            }],
            gate: true,
            passed: true,
        }),
    }
}

fn evaluation_report() -> EvaluationReport {
    EvaluationReport {
        format_version: EvaluationReport::FORMAT_VERSION,
        rows: 100,
        positives: 25,
        negatives: 75,
        threshold: 0.5,
        accuracy: 0.85,
        precision: 0.75,
        recall: 0.6,
        f1: 0.666,
        roc_auc: Some(0.9),
        average_precision: None,
        log_loss: 0.3,
        brier: 0.1,
        confusion: Confusion {
            tn: 70,
            fp: 5,
            fn_: 10,
            tp: 15,
        },
        best_f1: Some(BestF1 {
            threshold: 0.4,
            f1: 0.7,
        }),
        calibration: Calibration {
            bins: vec![CalibrationBin {
                lower: 0.0,
                upper: 0.5,
                count: 60,
                mean_predicted: 0.2,
                fraction_positive: 0.1,
            }],
            expected_calibration_error: 0.05,
        },
        bootstrap: Some(BootstrapIntervals {
            resamples: 100,
            seed: 42,
            confidence: 0.95,
            roc_auc: Some(Interval {
                low: 0.88,
                high: 0.92,
            }),
            f1: None,
        }),
    }
}

fn thresholds() -> GroupThresholds {
    GroupThresholds {
        format_version: 1,
        attribute: "sex".into(),
        constraint: MitigationConstraint::DemographicParity,
        min_ratio: 0.85,
        thresholds: [("Female".to_string(), 0.3), ("Male".to_string(), 0.6)].into(),
        default_threshold: 0.5,
        chosen_on: "validation".into(),
    }
}

fn fairness_report() -> FairnessReport {
    let summary = DecisionSummary {
        accuracy: 0.85,
        ratio: Some(0.4),
    };
    FairnessReport {
        format_version: FairnessReport::FORMAT_VERSION,
        rows: 100,
        min_group_count: 30,
        attributes: vec![AttributeReport {
            attribute: "sex".into(),
            groups: vec![GroupStats {
                group: "Female".into(),
                count: 40,
                positives: 5,
                excluded: false,
                selection_rate: 0.1,
                tpr: Some(0.6),
                fpr: None,
                precision: Some(0.7),
            }],
            disparities: [(FairnessMetric::DemographicParityRatio, Some(0.9))].into(),
            intervals: [(
                FairnessMetric::DemographicParityRatio,
                Interval {
                    low: 0.8,
                    high: 0.95,
                },
            )]
            .into(),
        }],
        gates: vec![GateResult {
            metric: FairnessMetric::DemographicParityRatio,
            attribute: "sex".into(),
            min: Some(0.8),
            max: None,
            observed: Some(0.9),
            passed: true,
        }],
        passed: true,
        mitigation: Some(MitigationReport {
            feasible: true,
            thresholds: Some(thresholds()),
            validation: BeforeAfter {
                before: summary.clone(),
                after: Some(summary.clone()),
            },
            test: BeforeAfter {
                before: summary,
                after: None,
            },
            accuracy_cost: Some(0.01),
        }),
    }
}

fn decision() -> Decision {
    Decision {
        format_version: Decision::FORMAT_VERSION,
        model: "adult-income".into(),
        run: "/home/someone/kiln-runs/adult".into(),
        gates: vec![GateVerdict {
            gate: "metric roc_auc".into(),
            threshold: json!({"min": 0.85}),
            observed: json!(0.92),
            passed: true,
        }],
        passed: true,
        registered: Some(Registered {
            backend: "local".into(),
            model: "adult-income".into(),
            version: "3".into(),
            alias: "staging".into(),
            source: "/home/someone/kiln-runs/registry/adult-income/versions/3/model".into(),
            reused: false,
        }),
        decided_at: "2026-12-02T00:00:00+00:00".into(),
    }
}

fn bundle_metadata() -> BundleMetadata {
    BundleMetadata {
        format_version: BundleMetadata::FORMAT_VERSION,
        kiln_version: "0.1.0".into(),
        created_at: chrono::DateTime::from_timestamp(1_764_633_600, 0).unwrap_or_default(),
        spec_fingerprint: "cd".repeat(32),
        label: "income".into(),
        positive_class: ">50K".into(),
        feature_names: vec!["age".into(), "sex=Female".into()],
        data: vec![InputRecord {
            name: "train.parquet".into(),
            uri: "/home/someone/kiln-runs/adult/prepare/train.parquet".into(),
            hash: hash(),
            version: None,
        }],
        metrics: TrainingMetrics {
            best_epoch: 7,
            val_loss: 0.3,
            val_auc: Some(0.93),
            epochs_run: 8,
            stopped_early: false,
        },
        decision_threshold: 0.5,
        inputs: vec![ColumnSpec {
            name: "age".into(),
            dtype: ColumnType::Int,
            nullable: false,
        }],
        libraries: vec![Library {
            name: "burn".into(),
            version: "0.21.0".into(),
            source: Some("registry+https://github.com/rust-lang/crates.io-index".into()),
            checksum: Some("ef".repeat(32)),
        }],
    }
}

fn train_summary() -> TrainSummary {
    TrainSummary {
        format_version: TrainSummary::FORMAT_VERSION,
        best_epoch: 7,
        epochs_run: 8,
        stopped_early: false,
        val_loss: 0.3,
        val_auc: Some(0.93),
        train_rows: 29_000,
        validation_rows: 3_200,
        seconds: 2.5,
        samples_per_second: 90_000.0,
        device: "cpu".into(),
        resumed_from_step: None,
    }
}

fn history() -> TrainHistory {
    TrainHistory::new(vec![EpochRecord {
        epoch: 0,
        train_loss: 0.4,
        val_loss: 0.35,
        val_auc: Some(0.9),
        learning_rate: 0.003,
        seconds: 0.3,
    }])
}

fn tracked_run() -> TrackedRun {
    TrackedRun {
        format_version: TrackedRun::FORMAT_VERSION,
        tracking_uri: "http://127.0.0.1:5000".into(),
        experiment_id: "1".into(),
        run_id: "0123456789abcdef".into(),
        artifact_uri: "mlflow-artifacts:/1/0123456789abcdef/artifacts".into(),
        logged: [(
            "prepare".to_string(),
            "2026-12-02T00:00:00+00:00".to_string(),
        )]
        .into(),
        children: BTreeMap::new(),
    }
}

/// Snapshots an artifact and checks that it reads back as the same value.
fn check<T: Artifact + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let back: T = parse(&bytes, "fixture").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&back, value);
}

#[test]
fn every_artifact_has_its_snapshot() {
    check(&validate_report());
    insta::assert_json_snapshot!("validate.report", validate_report(), {
        ".drift.reference" => "[path]", ".drift.current" => "[path]"
    });
    check(&evaluation_report());
    insta::assert_json_snapshot!("evaluate.metrics", evaluation_report());
    check(&fairness_report());
    insta::assert_json_snapshot!("fairness.report", fairness_report());
    check(&thresholds());
    insta::assert_json_snapshot!("fairness.thresholds", thresholds());
    check(&decision());
    insta::assert_json_snapshot!("register.decision", decision(), {
        ".run" => "[path]", ".registered.source" => "[path]", ".decided_at" => "[timestamp]"
    });
    check(&bundle_metadata());
    insta::assert_json_snapshot!("train.model.metadata", bundle_metadata(), {
        ".created_at" => "[timestamp]", ".data[].uri" => "[path]"
    });
    check(&train_summary());
    insta::assert_json_snapshot!("train.summary", train_summary());
    check(&history());
    insta::assert_json_snapshot!("train.history", history());
    check(&tracked_run());
    insta::assert_json_snapshot!("mlflow", tracked_run(), {
        ".logged.*" => "[timestamp]"
    });
}

#[test]
fn artifacts_written_before_versions_read_as_version_1() {
    let mut old = serde_json::to_value(evaluation_report()).unwrap_or_default();
    if let Some(object) = old.as_object_mut() {
        object.remove("format_version");
    }
    let bytes = serde_json::to_vec(&old).unwrap_or_default();
    let report: EvaluationReport = parse(&bytes, "old.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.format_version, 1);
}

#[test]
fn a_newer_format_is_refused_with_one_line_naming_the_file() {
    let mut newer = decision();
    newer.format_version = Decision::FORMAT_VERSION + 1;
    let bytes = serde_json::to_vec(&newer).unwrap_or_default();
    let err = parse::<Decision>(&bytes, "runs/r/register/decision.json")
        .err()
        .unwrap_or_else(|| panic!("a newer format must be refused"));
    assert_eq!(
        err.to_string(),
        format!(
            "corrupt artifact runs/r/register/decision.json: format_version {} is newer than this Kiln reads ({}): upgrade Kiln",
            Decision::FORMAT_VERSION + 1,
            Decision::FORMAT_VERSION
        )
    );
    assert_eq!(err.class().code(), 2);
}

#[test]
fn committed_schemas_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/contracts");
    let bless = std::env::var("KILN_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, schema) in schemas() {
        let file = dir.join(schema_file(&path));
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
        if bless {
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "schemas differ from the types (rerun with KILN_BLESS=1): {stale:?}"
    );
    // Every artifact has a schema of its own and a snapshot above.
    let paths: Vec<String> = schemas().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths.len(), 10, "{paths:?}");
}
