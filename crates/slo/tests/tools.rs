//! The committed monitoring files against the real tools: the rules are what the spec
//! generates, promtool checks and unit-tests them (and fails a wrong expectation),
//! amtool accepts the Alertmanager routing (and rejects a broken copy), every alert has
//! its runbook, and `kiln-slo` fails with the documented exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_testkit::{amtool_bin, bin, promtool_bin, run, stderr, stdout, workspace_root};

fn root() -> PathBuf {
    workspace_root()
}

fn kiln_slo(args: &[&str]) -> std::process::Output {
    run(Command::new(bin("kiln-slo")).args(args).current_dir(root()))
}

/// `make slo-rules`, into a temp folder: the same bytes as the committed files.
#[test]
fn committed_rules_and_dashboards_are_what_the_spec_generates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (rules, pr, dash, cm) = (
        out("rules.yml"),
        out("pr.yaml"),
        out("dash"),
        out("cm.yaml"),
    );
    let generated = [
        (
            vec![
                "generate",
                "--spec",
                "monitoring/slos.yaml",
                "--out",
                &rules,
            ],
            vec![("rules.yml", "monitoring/rules/kiln-serve-slos.rules.yml")],
        ),
        (
            vec![
                "generate",
                "--spec",
                "monitoring/slos.yaml",
                "--format",
                "prometheus-rule",
                "--name",
                "kiln-serve-slos",
                "--namespace",
                "monitoring",
                "--resource-label",
                "release=kube-prometheus-stack",
                "--resource-label",
                "app.kubernetes.io/part-of=kiln",
                "--include",
                "monitoring/rules/kiln-serve-health.rules.yml",
                "--out",
                &pr,
            ],
            vec![("pr.yaml", "infra/k8s/monitoring/prometheusrule.yaml")],
        ),
        (
            vec![
                "dashboards",
                "--spec",
                "monitoring/slos.yaml",
                "--out-dir",
                &dash,
                "--config-maps",
                &cm,
            ],
            vec![
                ("cm.yaml", "infra/k8s/monitoring/dashboards.yaml"),
                (
                    "dash/kiln-serving.json",
                    "monitoring/grafana/dashboards/kiln-serving.json",
                ),
                (
                    "dash/kiln-slos.json",
                    "monitoring/grafana/dashboards/kiln-slos.json",
                ),
                (
                    "dash/kiln-pipeline.json",
                    "monitoring/grafana/dashboards/kiln-pipeline.json",
                ),
                (
                    "dash/kiln-gpu.json",
                    "monitoring/grafana/dashboards/kiln-gpu.json",
                ),
            ],
        ),
    ];
    for (args, files) in generated {
        let o = kiln_slo(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        for (fresh, committed) in files {
            let fresh = std::fs::read_to_string(tmp.path().join(fresh)).unwrap();
            let committed_text = std::fs::read_to_string(root().join(committed)).unwrap();
            assert!(
                fresh == committed_text,
                "{committed} is stale: run `make slo-rules` and commit the result"
            );
        }
    }
}

fn promtool(args: &[&str], dir: &Path) -> std::process::Output {
    run(Command::new(promtool_bin()).args(args).current_dir(dir))
}

const SLOS: [&str; 5] = ["latency", "errors", "throughput", "gpu", "drift"];

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let dir = root().join("monitoring");
    let o = promtool(
        &[
            "check",
            "rules",
            "rules/kiln-serve-slos.rules.yml",
            "rules/kiln-serve-health.rules.yml",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // 5 SLOs × (8 SLI windows + 7 metadata rules + 2 alerts), and the 3 health alerts.
    assert!(
        stdout(&o).contains("SUCCESS: 85 rules found"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("SUCCESS: 3 rules found"),
        "{}",
        stdout(&o)
    );
    // One promtool per file, side by side: each evaluates every rule minute by minute.
    let files: Vec<String> = SLOS
        .iter()
        .map(|slo| format!("tests/slo-{slo}.test.yml"))
        .chain(["tests/health.test.yml".to_string()])
        .collect();
    let runs: Vec<_> = files
        .iter()
        .map(|file| {
            let (file, dir) = (file.clone(), dir.clone());
            std::thread::spawn(move || (file.clone(), promtool(&["test", "rules", &file], &dir)))
        })
        .collect();
    for handle in runs {
        let (file, o) = handle.join().unwrap();
        assert!(o.status.success(), "{file}: {}{}", stdout(&o), stderr(&o));
    }
}

/// One test group of a promtool test file, alone in a file of its own, changed by `edit`.
fn single_group(file: &str, group: usize, edit: impl Fn(&mut serde_norway::Value)) -> String {
    let text = std::fs::read_to_string(root().join("monitoring/tests").join(file)).unwrap();
    let mut doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut chosen = doc["tests"][group].clone();
    edit(&mut chosen);
    doc["tests"] = serde_norway::Value::Sequence(vec![chosen]);
    let rules = root().join("monitoring/rules");
    let list = doc["rule_files"].as_sequence_mut().unwrap();
    for entry in list.iter_mut() {
        let name = entry
            .as_str()
            .unwrap()
            .trim_start_matches("../rules/")
            .to_string();
        *entry = rules.join(name).to_str().unwrap().into();
    }
    serde_norway::to_string(&doc).unwrap()
}

/// Test groups with one expectation changed: promtool passes each group as committed
/// and fails it changed, so the tests are not vacuous.
#[test]
fn a_wrong_expectation_makes_promtool_fail() {
    type Edit = Box<dyn Fn(&mut serde_norway::Value)>;
    let page_labels = |v: &mut serde_norway::Value| {
        let labels = &mut v["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"];
        labels["severity"] = "page".into();
        labels["sloth_severity"] = "page".into();
    };
    let cases: Vec<(&str, &str, usize, Edit)> = vec![
        (
            "latency: the page expected 30 min into a 15x burn",
            "slo-latency.test.yml",
            0,
            Box::new(page_labels),
        ),
        (
            "latency: 0.6 of the budget left instead of 0.5",
            "slo-latency.test.yml",
            3,
            Box::new(|v| {
                let expr = v["promql_expr_test"][0]["expr"]
                    .as_str()
                    .unwrap()
                    .replace("(0.5)", "(0.6)");
                v["promql_expr_test"][0]["expr"] = expr.into();
            }),
        ),
        (
            "errors: a page claimed at 0.9x",
            "slo-errors.test.yml",
            1,
            Box::new(|v| {
                v["alert_rule_test"][0]["exp_alerts"] = serde_norway::from_str(
                "[{exp_labels: {severity: page, sloth_severity: page, sloth_id: kiln-serve-errors}}]",
            ).unwrap();
            }),
        ),
        (
            "gpu: series expected where dcgm-exporter is absent",
            "slo-gpu.test.yml",
            3,
            Box::new(|v| {
                v["promql_expr_test"][0]["exp_samples"] =
                    serde_norway::from_str("[{labels: '{}', value: 0}]").unwrap();
            }),
        ),
        (
            "drift: a ticket claimed at a drifted share of exactly 0.1",
            "slo-drift.test.yml",
            3,
            Box::new(|v| {
                v["alert_rule_test"][0]["exp_alerts"] = serde_norway::from_str(
                    "[{exp_labels: {severity: ticket, sloth_severity: ticket}}]",
                )
                .unwrap();
            }),
        ),
        (
            "health: KilnServeDown claimed with one pod still up",
            "health.test.yml",
            0,
            Box::new(|v| {
                v["alert_rule_test"][1]["exp_alerts"] = serde_norway::from_str(
                "[{exp_labels: {job: kiln/kiln-serve, severity: page, category: availability}}]",
            ).unwrap();
            }),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, file, group, edit)) in cases.iter().enumerate() {
        let original = single_group(file, *group, |_| {});
        let changed = single_group(file, *group, edit);
        assert!(original != changed, "{what}: the edit changed nothing");
        for (text, passes) in [(original, true), (changed, false)] {
            let path = tmp.path().join(format!("case-{i}-{passes}.test.yml"));
            std::fs::write(&path, text).unwrap();
            let o = promtool(&["test", "rules", path.to_str().unwrap()], tmp.path());
            assert_eq!(
                o.status.success(),
                passes,
                "{what} (as committed: {passes}): {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
    }
}

#[test]
fn amtool_accepts_the_routing_and_routes_by_severity() {
    let config = root().join("monitoring/alertmanager/alertmanager.yml");
    let o = run(Command::new(amtool_bin())
        .args(["check-config"])
        .arg(&config));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for (labels, receiver) in [
        (
            vec!["severity=page", "alertname=KilnServeErrorBudgetBurn"],
            "pager",
        ),
        (
            vec!["severity=ticket", "alertname=KilnServeErrorBudgetBurn"],
            "tickets",
        ),
        (vec!["alertname=SomethingElse"], "tickets"),
    ] {
        let o = run(Command::new(amtool_bin())
            .args(["config", "routes", "test", "--config.file"])
            .arg(&config)
            .args(&labels));
        assert_eq!(stdout(&o).trim(), receiver, "{labels:?}: {}", stderr(&o));
    }
    let text = std::fs::read_to_string(&config).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (what, from, to) in [
        (
            "a route to an undefined receiver",
            "receiver: pager\n",
            "receiver: pagr\n",
        ),
        ("a misspelled field", "group_wait: 30s", "group_wiat: 30s"),
        (
            "a wrong type",
            "repeat_interval: 12h",
            "repeat_interval: twelve hours",
        ),
    ] {
        let broken = tmp.path().join("broken.yml");
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let o = run(Command::new(amtool_bin()).arg("check-config").arg(&broken));
        assert!(!o.status.success(), "{what}: amtool accepted it");
    }
}

#[test]
fn every_alert_has_a_runbook_with_the_four_sections() {
    let base = "https://github.com/kiln-mlops/kiln/blob/main/";
    let mut alerts = std::collections::BTreeSet::new();
    for file in [
        "monitoring/rules/kiln-serve-slos.rules.yml",
        "monitoring/rules/kiln-serve-health.rules.yml",
    ] {
        let rules: kiln_slo::rules::RuleFile =
            serde_norway::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
        for rule in rules.groups.iter().flat_map(|g| &g.rules) {
            let Some(alert) = &rule.alert else { continue };
            let url = rule
                .annotations
                .get("runbook_url")
                .unwrap_or_else(|| panic!("{alert}: no runbook_url"));
            let page = url
                .strip_prefix(base)
                .unwrap_or_else(|| panic!("{alert}: {url} is not in this repository"));
            assert_eq!(page, format!("docs/runbooks/{alert}.md"), "{alert}");
            let text = std::fs::read_to_string(root().join(page))
                .unwrap_or_else(|_| panic!("{alert}: {page} is missing"));
            assert!(text.starts_with(&format!("# {alert}\n")), "{page}: title");
            for section in [
                "## What it means",
                "## User impact",
                "## Diagnose",
                "## What to do",
            ] {
                assert!(text.contains(section), "{page}: no `{section}`");
            }
            alerts.insert(alert.clone());
        }
    }
    assert_eq!(alerts.len(), 8, "{alerts:?}");
    let index = std::fs::read_to_string(root().join("docs/runbooks/README.md")).unwrap();
    for alert in &alerts {
        assert!(
            index.contains(&format!("[{alert}]({alert}.md)")),
            "runbook index lacks {alert}"
        );
    }
}

#[test]
fn bad_input_gets_one_line_and_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("slos.yaml");
    let good = std::fs::read_to_string(root().join("monitoring/slos.yaml")).unwrap();
    std::fs::write(
        &spec,
        good.replacen("objective: 99.9", "objective: 199.9", 1),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let out = tmp.path().join("rules.yml");
    for (args, code, message) in [
        (
            vec!["generate", "--spec", spec, "--out", out.to_str().unwrap()],
            2,
            "slos[1].objective: 199.9",
        ),
        (
            vec![
                "generate",
                "--spec",
                "monitoring/slos.yaml",
                "--period",
                "7d",
            ],
            2,
            "--period 7d",
        ),
        (
            vec![
                "generate",
                "--spec",
                "monitoring/slos.yaml",
                "--label",
                "novalue",
            ],
            2,
            "--label `novalue`",
        ),
        (
            vec![
                "check",
                "--spec",
                "monitoring/slos.yaml",
                "--prometheus",
                "127.0.0.1:9",
            ],
            75,
            "http://127.0.0.1:9 unreachable",
        ),
    ] {
        let o = kiln_slo(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert!(!out.exists(), "a failed generate writes nothing");
}

/// A real Prometheus without the rules: the check refuses to pass on nothing (exit 2);
/// with the rules and no traffic, every SLO reads "no data" and the check passes.
#[test]
fn slo_check_needs_the_rules_and_reads_no_traffic_as_no_data() {
    let bare = kiln_testkit::Prometheus::start(&[], "1s", &[]);
    let o = kiln_slo(&[
        "check",
        "--spec",
        "monitoring/slos.yaml",
        "--prometheus",
        &bare.url,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no rules for kiln-serve-latency"),
        "{}",
        stderr(&o)
    );
    drop(bare);
    let rules = [root().join("monitoring/rules/kiln-serve-slos.rules.yml")];
    let prometheus = kiln_testkit::Prometheus::start(&[], "1s", &rules);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while prometheus.query("sloth_slo_info").len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "rules never evaluated"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = kiln_slo(&[
        "check",
        "--spec",
        "monitoring/slos.yaml",
        "--prometheus",
        &prometheus.url,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert_eq!(table.matches("no data").count(), 5, "{table}");
    assert!(table.contains("ok: no budget exhausted"), "{table}");
}
