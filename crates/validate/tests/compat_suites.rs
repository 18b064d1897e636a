//! The suites `make compat-ge` runs in Great Expectations and in Kiln use every
//! supported expectation type between them, so the comparison covers all of them.

use std::collections::BTreeSet;
use std::path::Path;

use kiln_validate::{SUPPORTED, Suite};

const SUITES: &[&str] = &[
    "examples/adult/expectations.json",
    "tests/compat/remaining-types.json",
];

#[test]
fn the_compat_suites_use_every_supported_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut used = BTreeSet::new();
    for file in SUITES {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let suite = Suite::parse(&text, file).unwrap_or_else(|e| panic!("{file}: {e}"));
        for expectation in &suite.expectations {
            assert!(
                SUPPORTED.contains(&expectation.kind.as_str()),
                "{file}: {} is not a supported type",
                expectation.kind
            );
            used.insert(expectation.kind.clone());
        }
    }
    let missing: Vec<&&str> = SUPPORTED
        .iter()
        .filter(|kind| !used.contains(**kind))
        .collect();
    assert!(missing.is_empty(), "no compat-ge case for {missing:?}");
}
