//! Alias moves are compare-and-swap: sixteen `kiln promote` and eight `kiln rollback`
//! processes racing on one registry folder lose no move. Before, each move was a
//! read-modify-write of `aliases.json` and concurrent moves overwrote each other.
//!
//! On S3 the same moves go through If-None-Match creates of the revision log, which S3
//! applies atomically. s3s-fs, the S3-protocol server the tests can run, checks the
//! condition and then writes, so two racing creates can both succeed on it (seen: 15
//! revisions for 17 racing moves); its test runs the same moves one process after
//! another and checks the log and the view over the S3 protocol.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use kiln_core::store::ArtifactStore;
use kiln_registry::{Aliases, Registry};
use kiln_testkit::{S3Server, bin, stderr};

const VERSIONS: u64 = 9;

/// Registers versions 1..=VERSIONS of model `m` in the folder `root` (a tiny bundle).
fn registry_with_versions(root: &Path) {
    let bundle_dir = root.parent().expect("parent").join("bundle");
    std::fs::create_dir_all(&bundle_dir).expect("bundle");
    std::fs::write(bundle_dir.join("metadata.json"), b"{}").expect("bundle");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bundle = ArtifactStore::open(bundle_dir.to_str().expect("path")).expect("bundle");
        let registry =
            Registry::Local(ArtifactStore::open(root.to_str().expect("path")).expect("registry"));
        for run in 1..=VERSIONS {
            registry
                .create(
                    "m",
                    &bundle,
                    &format!("run-{run}"),
                    None,
                    &BTreeMap::new(),
                    &[],
                    None,
                )
                .await
                .expect("register");
        }
    });
}

/// The newest revision, read from the log (`aliases/<n>.json`), and the view.
fn state(root: &Path) -> (Aliases, Aliases) {
    let log = root.join("m/aliases");
    let newest = std::fs::read_dir(&log)
        .expect("revision log")
        .map(|e| e.expect("entry").path())
        .max()
        .expect("a revision");
    let read = |p: &Path| -> Aliases {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("aliases JSON")
    };
    (read(&newest), read(&root.join("m/aliases.json")))
}

fn kiln(args: &[String], registry: &str, env: &[(&'static str, String)]) -> std::process::Child {
    Command::new(bin("kiln"))
        .args(args)
        .args(["--registry", registry])
        .env_remove("MLFLOW_TRACKING_URI")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kiln")
}

/// Runs `kiln` once per argument list: all at once (`concurrent`) or one after another.
fn phase(
    commands: &[Vec<String>],
    uri: &str,
    env: &[(&'static str, String)],
    concurrent: bool,
) -> Vec<Output> {
    let finish = |child: std::process::Child| child.wait_with_output().expect("kiln");
    let outputs: Vec<Output> = if concurrent {
        let children: Vec<_> = commands.iter().map(|c| kiln(c, uri, env)).collect();
        children.into_iter().map(finish).collect()
    } else {
        commands.iter().map(|c| finish(kiln(c, uri, env))).collect()
    };
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    outputs
}

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// The moves, on a registry reached at `uri` whose objects live in the folder `root`.
fn race(root: &Path, uri: &str, env: &[(&'static str, String)], concurrent: bool) {
    registry_with_versions(root);
    phase(&[args("promote m --version 1")], uri, env, false);
    // Sixteen moves: production to each of 2..=9, and eight other aliases.
    let mut moves: Vec<Vec<String>> = (2..=VERSIONS)
        .map(|v| args(&format!("promote m --version {v}")))
        .collect();
    moves.extend((1..=8u64).map(|i| {
        args(&format!(
            "promote m --version {} --alias a{i}",
            i % VERSIONS + 1
        ))
    }));
    phase(&moves, uri, env, concurrent);
    let (newest, view) = state(root);
    assert_eq!(newest.revision, 1 + 16, "every move is one revision");
    assert_eq!(view, newest, "aliases.json shows the newest revision");
    for i in 1..=8u64 {
        assert_eq!(
            newest.aliases[&format!("a{i}")],
            i % VERSIONS + 1,
            "alias a{i}"
        );
    }
    let production = newest.aliases["production"];
    let history = &newest.history["production"];
    let earlier: BTreeSet<u64> = history.iter().copied().collect();
    assert_eq!(
        history.len(),
        8,
        "each promote left one version behind: {history:?}"
    );
    assert_eq!(
        earlier,
        (1..=VERSIONS).filter(|&v| v != production).collect(),
        "production's history holds every version it left, once"
    );
    assert_eq!(history[0], 1);

    // Eight rollbacks walk the whole history back.
    let rollbacks = vec![args("rollback m"); 8];
    phase(&rollbacks, uri, env, concurrent);
    let (newest, view) = state(root);
    assert_eq!(newest.revision, 1 + 16 + 8);
    assert_eq!(view, newest);
    assert_eq!(newest.aliases["production"], 1);
    assert!(newest.history["production"].is_empty(), "{newest:?}");
    // A ninth has nothing to go back to: exit 2, one line.
    let out = kiln(&args("rollback m"), uri, env)
        .wait_with_output()
        .expect("kiln");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no earlier version"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn concurrent_promotes_and_rollbacks_lose_no_move_on_a_folder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("registry");
    race(&root, root.to_str().expect("path"), &[], true);
}

#[test]
fn promotes_and_rollbacks_keep_the_revision_log_and_the_view_on_s3() {
    let s3 = S3Server::start(&["kiln"]);
    let root = s3.root.path().join("kiln/registry");
    race(&root, "s3://kiln/registry", &s3.env(), false);
}
