//! The generator against Sloth's own output: given Sloth's example spec, the rules
//! are Sloth's, rule by rule (same groups, names, labels, annotations; expressions
//! equal up to whitespace).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_slo::rules::{GenerateOptions, RuleFile, generate, render_rule_file};
use kiln_slo::spec::SloSpec;

fn sloth_dir() -> PathBuf {
    std::env::var_os("KILN_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| kiln_testkit::workspace_root().join("../shared/schemas"))
        .join("sloth")
}

fn squash(expr: &str) -> String {
    expr.split_whitespace().collect()
}

/// Sloth's example, generated with the flags Sloth's example script passes.
fn ours() -> String {
    let spec = SloSpec::load(&sloth_dir().join("getting-started.yml")).unwrap();
    let options = GenerateOptions {
        extra_labels: BTreeMap::from([("cmd".into(), "examplesgen.sh".into())]),
        version: "dev".into(),
        ..GenerateOptions::default()
    };
    render_rule_file(&generate(&spec, &options), "getting-started.yml")
}

#[test]
fn sloths_example_spec_gives_sloths_rules() {
    let golden_text = std::fs::read_to_string(sloth_dir().join("getting-started.gen.yml")).unwrap();
    let golden: RuleFile = serde_norway::from_str(&golden_text).unwrap();
    let ours: RuleFile = serde_norway::from_str(&ours()).unwrap();
    assert_eq!(ours.groups.len(), golden.groups.len(), "groups");
    let mut compared = 0;
    for (a, b) in ours.groups.iter().zip(&golden.groups) {
        assert_eq!(a.name, b.name, "group name");
        assert_eq!(a.rules.len(), b.rules.len(), "rules in {}", b.name);
        for (x, y) in a.rules.iter().zip(&b.rules) {
            let at = format!("{} / {}", b.name, y.name());
            assert_eq!(x.record, y.record, "{at}: record");
            assert_eq!(x.alert, y.alert, "{at}: alert");
            assert_eq!(squash(&x.expr), squash(&y.expr), "{at}: expr");
            assert_eq!(x.labels, y.labels, "{at}: labels");
            assert_eq!(x.annotations, y.annotations, "{at}: annotations");
            assert_eq!(x.for_, y.for_, "{at}: for");
            compared += 1;
        }
    }
    assert_eq!(compared, 17, "8 SLI windows, 7 metadata rules, 2 alerts");
}

#[test]
fn a_changed_expectation_is_caught() {
    // The comparison bites: Sloth's rules with one factor changed do not match ours.
    let golden_text = std::fs::read_to_string(sloth_dir().join("getting-started.gen.yml")).unwrap();
    let tampered: RuleFile =
        serde_norway::from_str(&golden_text.replacen("(14.4 *", "(14 *", 1)).unwrap();
    let ours: RuleFile = serde_norway::from_str(&ours()).unwrap();
    assert_ne!(ours, tampered);
    let alert = |f: &RuleFile| squash(&f.groups[2].rules[0].expr);
    assert_ne!(alert(&ours), alert(&tampered));
}
