//! The workspace's layering, read from `cargo tree`: no library links a terminal crate
//! (clap, indicatif, tracing-subscriber) unless a binary asks for its `cli` feature, and
//! the crates the model server is built from never do; and the layers point one way
//! (core below statistics below features below the model; charts beside, for reports);
//! and each step's code hash covers every workspace crate the step links; and the SLO
//! tools and the rollout controller link no table or model crate.

use std::collections::BTreeSet;
use std::process::Command;

/// Terminal crates: argument parsing, progress bars, log formatting.
const TERMINAL: &[&str] = &["clap", "indicatif", "tracing-subscriber"];

/// Every library crate of the workspace, with its `cli` feature (if any) off.
const LIBRARIES: &[&str] = &[
    "kiln-core",
    "kiln-stats",
    "kiln-features",
    "kiln-charts",
    "kiln-model",
    "kiln-mlflow",
    "kiln-registry",
    "kiln-signing",
    "kiln-lineage",
    "kiln-serve",
    "kiln-prepare",
    "kiln-validate",
    "kiln-tune",
    "kiln-train",
    "kiln-evaluate",
    "kiln-fairness",
    "kiln-register",
    "kiln-slo",
    "kiln-rollout",
    "kiln-prometheus",
];

/// The normal (not build, not dev) dependencies of one package, one name per line.
fn dependencies(package: &str, features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "tree",
        "--locked",
        "--offline",
        "-p",
        package,
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    if features.is_empty() {
        command.arg("--no-default-features");
    } else {
        command.args(["--features", &features.join(",")]);
    }
    let out = command.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn no_library_links_a_terminal_crate() {
    let mut offenders = Vec::new();
    for library in LIBRARIES {
        let deps = dependencies(library, &[]);
        assert!(
            deps.iter().any(|d| d == library),
            "cargo tree -p {library} does not list {library} itself: {deps:?}"
        );
        for terminal in TERMINAL {
            if deps.iter().any(|d| d == terminal) {
                offenders.push(format!("{library} → {terminal}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "libraries linking terminal crates: {offenders:?}"
    );
}

#[test]
fn the_check_sees_a_terminal_crate_where_there_is_one() {
    // The `kiln` binary's crate links all three: the check above is not blind.
    let deps = dependencies("kiln-cli", &[]);
    for terminal in TERMINAL {
        assert!(
            deps.iter().any(|d| d == terminal),
            "kiln-cli without {terminal}?"
        );
    }
    // And a step's own binary feature brings clap back.
    let deps = dependencies("kiln-evaluate", &["cli"]);
    assert!(deps.iter().any(|d| d == "clap"));
}

/// Which workspace crates each layer may link (besides external ones). A layer that
/// reaches up (core linking the transform, the model server linking the charts) is a
/// layering error, and a chart edit would rebuild the optimised model crates.
#[test]
fn the_layers_point_one_way() {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "kiln-core",
            &["kiln-stats", "kiln-features", "kiln-charts", "kiln-model"],
        ),
        (
            "kiln-stats",
            &["kiln-features", "kiln-charts", "kiln-model"],
        ),
        ("kiln-features", &["kiln-charts", "kiln-model"]),
        ("kiln-charts", &["kiln-core", "kiln-stats", "kiln-features"]),
        ("kiln-model", &["kiln-charts"]),
        ("kiln-train", &["kiln-charts"]),
        ("kiln-tune", &["kiln-charts"]),
        ("kiln-serve", &["kiln-charts"]),
    ];
    let mut offenders = Vec::new();
    for (library, above) in forbidden {
        let deps = dependencies(library, &[]);
        for crate_above in *above {
            if deps.iter().any(|d| d == crate_above) {
                offenders.push(format!("{library} → {crate_above}"));
            }
        }
    }
    assert!(offenders.is_empty(), "layering errors: {offenders:?}");
    // Not blind: the model does stand on the transform, and the transform on stats.
    assert!(
        dependencies("kiln-model", &[])
            .iter()
            .any(|d| d == "kiln-features")
    );
    assert!(
        dependencies("kiln-features", &[])
            .iter()
            .any(|d| d == "kiln-stats")
    );
}

/// The SLO tools and the rollout controller work on Prometheus answers, registry
/// records and JSON files: neither they nor their binaries link Arrow, Parquet, burn or
/// DataFusion (kiln-core without its `tables` feature, the MLflow client without its
/// step tracking, the runtime without the step driver).
#[test]
fn slo_and_rollout_link_no_table_or_model_crate() {
    const HEAVY: &[&str] = &["arrow", "parquet", "burn", "datafusion", "kiln-model"];
    let mut offenders = Vec::new();
    for package in ["kiln-slo", "kiln-rollout"] {
        for features in [&[][..], &["cli"][..]] {
            for dep in dependencies(package, features) {
                if HEAVY
                    .iter()
                    .any(|h| dep == *h || dep.starts_with(&format!("{h}-")))
                {
                    offenders.push(format!("{package} {features:?} → {dep}"));
                }
            }
        }
    }
    offenders.dedup();
    assert!(offenders.is_empty(), "{offenders:?}");
    // Not blind: a step does link them.
    let evaluate = dependencies("kiln-evaluate", &["cli"]);
    assert!(evaluate.iter().any(|d| d == "arrow"), "{evaluate:?}");
    assert!(evaluate.iter().any(|d| d == "kiln-model"), "{evaluate:?}");
}

#[test]
fn a_steps_code_hash_covers_every_workspace_crate_it_links() {
    let root = kiln_testkit::workspace_root();
    // The steps of the DAG, each in its crate `crates/<name>` (package `kiln-<name>`).
    for name in kiln_cli::step_names() {
        let step = format!("kiln-{name}");
        // With its `cli` feature on, as the step binaries are built.
        let linked: BTreeSet<String> = dependencies(&step, &["cli"])
            .into_iter()
            .filter(|name| name.starts_with("kiln-"))
            .collect();
        let dir = root.join("crates").join(name);
        let covered: BTreeSet<String> = kiln_buildinfo::code_crates(&dir).into_keys().collect();
        assert_eq!(
            covered, linked,
            "{step}: the code hash covers the left set, cargo tree links the right one"
        );
        // Not blind: every step runs kiln-core, and prepare the transform fitter.
        assert!(covered.contains("kiln-core"), "{step}: {covered:?}");
    }
    let prepare = kiln_buildinfo::code_crates(&root.join("crates/prepare"));
    assert!(prepare.contains_key("kiln-features") && prepare.contains_key("kiln-stats"));
}
