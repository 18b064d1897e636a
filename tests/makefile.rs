//! The Makefile reads as the list of user commands: `make help` groups every target,
//! and provisioning (version pins, venvs, apt, cargo install, npm) lives in
//! scripts/deps/, where Dependabot reads the pins.

use std::process::Command;

use kiln_testkit::{run, stderr, stdout, workspace_root};

fn makefile() -> String {
    std::fs::read_to_string(workspace_root().join("Makefile")).unwrap()
}

/// The targets with a `## help` text, in file order.
fn documented_targets(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(":") && l.contains(" ## ") && !l.starts_with('\t'))
        .filter_map(|l| l.split(':').next())
        .filter(|t| {
            t.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn make_help_lists_every_target_in_its_group() {
    let out = run(Command::new("make")
        .args(["--no-print-directory", "help"])
        .current_dir(workspace_root()));
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    let groups = [
        "Setup",
        "ML operations",
        "Infrastructure",
        "Deployment",
        "Monitoring",
        "Tools",
    ];
    let mut at = 0;
    for group in groups {
        let found = help[at..]
            .find(&format!("\n{group}"))
            .unwrap_or_else(|| panic!("group {group} missing or out of order:\n{help}"));
        at += found + 1;
    }
    let targets = documented_targets(&makefile());
    assert!(targets.len() > 40, "{targets:?}");
    for target in &targets {
        assert!(
            help.contains(&format!("  make {target} ")),
            "make help leaves out {target}:\n{help}"
        );
    }
    // The commands a newcomer needs first are under Setup.
    let setup = &help[help.find("\nSetup").unwrap()..help.find("\nML operations").unwrap()];
    for target in ["help", "build", "install", "test", "docs"] {
        assert!(setup.contains(&format!("  make {target} ")), "{setup}");
    }
}

#[test]
fn the_makefile_holds_no_pins_and_no_provisioning() {
    let text = makefile();
    let version = regex::Regex::new(r"\b\d+\.\d+(\.\d+)?\b").unwrap();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        // The loopback URL of a local Prometheus is an address, not a pin.
        let line_without_addresses = line.replace("127.0.0.1", "");
        assert!(
            !version.is_match(&line_without_addresses),
            "Makefile:{}: a version pin belongs in scripts/deps/: {line}",
            number + 1
        );
        for word in [
            "pip ",
            "pip3",
            "venv",
            "apt-get",
            "dpkg",
            "npm ",
            "cargo install",
            "python3 -m",
        ] {
            assert!(
                !line.contains(word),
                "Makefile:{}: `{word}` is provisioning; it belongs in scripts/deps/: {line}",
                number + 1
            );
        }
    }
    // The pins are where Dependabot and the installer read them.
    let deps = workspace_root().join("scripts/deps");
    for file in [
        "requirements-test.in",
        "requirements-test.txt",
        "cargo-tools.txt",
    ] {
        assert!(deps.join(file).is_file(), "scripts/deps/{file}");
    }
    let dependabot =
        std::fs::read_to_string(workspace_root().join(".github/dependabot.yml")).unwrap();
    assert!(dependabot.contains("/scripts/deps"), "{dependabot}");
}

#[test]
fn every_python_requirement_is_pinned_with_its_hash() {
    let deps = workspace_root().join("scripts/deps");
    let mut locks = 0;
    for entry in std::fs::read_dir(&deps).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("requirements-") && name.ends_with(".txt")) {
            continue;
        }
        locks += 1;
        assert!(
            deps.join(name.replace(".txt", ".in")).is_file(),
            "{name} has no .in file with its direct pins"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        // A requirement starts at column 0; its hashes follow on continuation lines.
        let mut current: Option<String> = None;
        let mut hashed = false;
        let check = |current: &Option<String>, hashed: bool| {
            if let Some(req) = current {
                assert!(req.contains("=="), "{name}: `{req}` is not pinned with ==");
                assert!(hashed, "{name}: `{req}` has no --hash");
            }
        };
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if !line.starts_with(' ') {
                check(&current, hashed);
                current = Some(line.trim_end_matches(['\\', ' ']).to_string());
                hashed = false;
            } else if line.trim_start().starts_with("--hash=sha256:") {
                hashed = true;
            }
        }
        check(&current, hashed);
    }
    assert!(locks >= 9, "only {locks} requirements files");
}
