//! The manual: the spec reference equals what `kiln spec schema` prints, the book builds
//! with mdBook, every internal link and anchor in it (and in the README) resolves, and a
//! broken link in a copy fails the check.

use std::path::Path;
use std::process::Command;

use kiln_testkit::{bin, mdbook_bin, run, stderr, stdout, workspace_root};
use xtask::{links, spec_reference};

fn build_book(src: &Path, out: &Path) {
    let output = run(Command::new(mdbook_bin())
        .arg("build")
        .arg(src)
        .arg("--dest-dir")
        .arg(out));
    assert!(
        output.status.success(),
        "mdbook build {}: {}",
        src.display(),
        stderr(&output)
    );
}

#[test]
fn the_spec_reference_is_current_and_lists_every_field_of_kiln_spec_schema() {
    let root = workspace_root();
    let committed = std::fs::read_to_string(root.join(spec_reference::PAGE)).unwrap();
    let generated = spec_reference::render(&spec_reference::schema()).unwrap();
    if let Some(difference) = spec_reference::diff(&committed, &generated) {
        panic!(
            "{} is stale ({difference}): run `cargo xtask spec-reference`",
            spec_reference::PAGE
        );
    }
    // What the binary prints, not the library function the page was rendered from.
    let out = run(Command::new(bin("kiln")).args(["spec", "schema"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = spec_reference::schema_fields(&schema);
    assert!(
        expected.len() > 100,
        "the spec has well over 100 fields; got {}",
        expected.len()
    );
    let listed = spec_reference::page_fields(&committed);
    let missing: Vec<_> = expected.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the page and `kiln spec schema` disagree: missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn the_manual_builds_and_every_internal_link_and_anchor_resolves() {
    let root = workspace_root();
    let out = tempfile::tempdir().unwrap();
    build_book(&root.join("docs"), out.path());
    let (broken, checked) = links::check_book(out.path()).unwrap();
    assert!(
        broken.is_empty(),
        "broken links in the manual:\n{}",
        broken
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every chapter links the others through the sidebar: far more than 100 links.
    assert!(checked > 500, "only {checked} internal links checked");
    assert!(out.path().join("spec-reference.html").is_file());
    assert!(out.path().join("runbooks/README.html").is_file());
    let (broken, _) = links::check_markdown(&root.join("README.md"), &root).unwrap();
    assert!(broken.is_empty(), "README.md: {broken:?}");
}

#[test]
fn the_readme_fits_on_two_screens_and_links_only_inside_the_repository() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 200, "README.md has {lines} lines (at most 200)");
    // It starts with the two commands.
    let start: Vec<&str> = readme.lines().take(5).collect();
    assert!(
        start.iter().any(|l| l.starts_with("make run"))
            && start.iter().any(|l| l.starts_with("make test")),
        "{start:?}"
    );
    let (broken, checked) = links::check_markdown(&root.join("README.md"), &root).unwrap();
    assert!(checked > 10, "{checked}");
    assert!(broken.is_empty(), "{broken:?}");
    assert!(
        !readme.contains("http://") && !readme.contains("https://"),
        "README.md names an address outside the repository"
    );
}

#[test]
fn a_broken_link_or_anchor_in_a_copy_fails_the_check() {
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("docs");
    copy_dir(&root.join("docs"), &copy);
    let page = copy.join("getting-started.md");
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.contains("(spec.md)") && text.contains("(benchmarks.md#"));
    let text = text
        .replacen("(spec.md)", "(spec-that-moved.md)", 1)
        .replacen("(benchmarks.md#", "(benchmarks.md#no-such-heading-", 1);
    std::fs::write(&page, text).unwrap();
    let out = tmp.path().join("book");
    build_book(&copy, &out);

    let (broken, _) = links::check_book(&out).unwrap();
    let found: Vec<String> = broken.iter().map(ToString::to_string).collect();
    // The page itself, and the print page that holds every chapter, show both.
    for page in ["getting-started.html", "print.html"] {
        let on_page: Vec<&String> = found
            .iter()
            .filter(|b| b.starts_with(&format!("{page}: ")))
            .collect();
        assert_eq!(on_page.len(), 2, "{page}: {found:#?}");
        assert!(
            on_page
                .iter()
                .any(|b| b.contains("link `spec-that-moved.html`: no such page or file")),
            "{found:#?}"
        );
        assert!(
            on_page
                .iter()
                .any(|b| b.contains("no anchor `#no-such-heading-cold-build")),
            "{found:#?}"
        );
    }
    assert_eq!(found.len(), 4, "{found:#?}");

    // The command `make docs` runs fails on it too, naming the link.
    let result = run(Command::new(bin("xtask")).arg("linkcheck").arg(&out));
    assert_eq!(result.status.code(), Some(1), "{}", stdout(&result));
    assert!(
        stderr(&result).contains("spec-that-moved.html"),
        "{}",
        stderr(&result)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}
