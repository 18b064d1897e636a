//! `make install` installs every `kiln*` binary the workspace builds: checked against
//! `cargo metadata`, read here on its own, not through the code under test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use kiln_testkit::{bin, run, stderr, stdout, workspace_root};

/// Every `kiln*` binary target of a workspace member, from `cargo metadata`.
fn kiln_binaries_of_the_workspace() -> BTreeSet<(PathBuf, String)> {
    let out = run(Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root()));
    assert!(out.status.success(), "{}", stderr(&out));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut binaries = BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        let dir = PathBuf::from(package["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .to_path_buf();
        for target in package["targets"].as_array().unwrap() {
            let name = target["name"].as_str().unwrap();
            if target["kind"] == serde_json::json!(["bin"]) && name.starts_with("kiln") {
                binaries.insert((dir.clone(), name.to_string()));
            }
        }
    }
    binaries
}

#[test]
fn make_install_installs_every_kiln_binary_the_workspace_builds() {
    let expected = kiln_binaries_of_the_workspace();
    let names: BTreeSet<&str> = expected.iter().map(|(_, n)| n.as_str()).collect();
    // Not blind: the CLI, the server and the deploy workflow's rollout are among them.
    for name in [
        "kiln",
        "kiln-prepare",
        "kiln-serve",
        "kiln-rollout",
        "kiln-slo",
    ] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }

    // What `cargo xtask install` would run.
    let out = run(Command::new(bin("xtask")).args(["install", "--dry-run"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let dirs: BTreeSet<PathBuf> = stdout(&out)
        .lines()
        .map(|line| {
            assert!(
                line.starts_with("cargo install --locked --profile fast-release --path "),
                "{line}"
            );
            PathBuf::from(line.rsplit_once(" --path ").unwrap().1)
        })
        .collect();
    let installed: BTreeSet<&str> = expected
        .iter()
        .filter(|(dir, _)| dirs.contains(dir))
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(installed, names, "binaries `make install` leaves out");
    // Nothing but packages with kiln binaries.
    let with_binaries: BTreeSet<&PathBuf> = expected.iter().map(|(d, _)| d).collect();
    assert_eq!(dirs.iter().collect::<BTreeSet<_>>(), with_binaries);

    // And `make install` is that command.
    let out = run(Command::new("make")
        .args(["-n", "--no-print-directory", "install"])
        .current_dir(workspace_root()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cargo xtask install --profile fast-release"),
        "{}",
        stdout(&out)
    );
}
