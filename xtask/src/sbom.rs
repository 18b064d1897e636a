//! The SBOM of one image: a CycloneDX 1.6 JSON document listing exactly the crates
//! linked into a package's binary, with versions, licences, package URLs and the
//! registry's sha256.
//!
//! "Linked" is what `cargo tree -e normal,no-proc-macro` prints for the package on the
//! host target: the resolver's own answer for the build, so dev- and build-dependencies
//! and proc macros are left out. Which build matters: `cargo build -p PACKAGE` (the
//! Containerfiles' cargo stage) resolves features for that package alone, while
//! `cargo build --bins` (`make images`) unifies them across the workspace, which can
//! turn on an optional dependency or two; [`Build`] says which one made the binary. The checksums come from `Cargo.lock`
//! (kiln-buildinfo's reader, the one the model's ML-BOM uses).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kiln_buildinfo::dependencies::parse_lock;
use serde_json::{Value, json};

use crate::{Error, Result, cargo_stdout, read};

/// One crate of the build.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Linked {
    pub name: String,
    pub version: String,
    /// The SPDX expression from the crate's manifest, when it has one.
    pub license: Option<String>,
    /// A workspace crate (a path dependency), not one from the registry.
    pub local: bool,
}

/// How the binary was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `cargo build -p PACKAGE`: features resolved for the package alone.
    Package,
    /// `cargo build --bins` over the workspace: features unified across its members.
    Workspace,
}

/// One `{p}<TAB>{l}` line: the crate, or an error naming the line. cargo appends ` (*)`
/// to the whole line where a subtree repeats.
fn parse_line(line: &str) -> Result<Linked> {
    let line = line.trim_end();
    let line = line.strip_suffix(" (*)").unwrap_or(line);
    let (package, license) = line.split_once('\t').unwrap_or((line, ""));
    let mut words = package.split_whitespace();
    let (Some(name), Some(version)) = (words.next(), words.next()) else {
        return Err(Error::Invalid(format!(
            "cargo tree printed an unexpected line: `{line}`"
        )));
    };
    let version = version.strip_prefix('v').unwrap_or(version);
    let local = words.any(|w| w.starts_with('('));
    let license = license.trim();
    Ok(Linked {
        name: name.to_string(),
        version: version.to_string(),
        license: (!license.is_empty()).then(|| license.to_string()),
        local,
    })
}

/// The crates reachable from `package` in `cargo tree --workspace --prefix depth`
/// output (`{depth}{p}<TAB>{l}` lines; a subtree printed once and marked `(*)` where it
/// repeats, so the edges are collected from every line, then walked).
pub fn parse_workspace_tree(text: &str, package: &str) -> Result<BTreeSet<Linked>> {
    let mut children: BTreeMap<Linked, BTreeSet<Linked>> = BTreeMap::new();
    let mut path: Vec<Linked> = Vec::new();
    let mut root = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let depth: usize = line[..digits].parse().map_err(|_| {
            Error::Invalid(format!(
                "cargo tree printed a line without a depth: `{line}`"
            ))
        })?;
        let node = parse_line(&line[digits..])?;
        path.truncate(depth);
        match path.last() {
            Some(parent) => {
                children
                    .entry(parent.clone())
                    .or_default()
                    .insert(node.clone());
            }
            None if node.name == package && node.local => root = Some(node.clone()),
            None => {}
        }
        path.push(node);
    }
    let root =
        root.ok_or_else(|| Error::Invalid(format!("`{package}` is not a workspace package")))?;
    let mut seen = BTreeSet::from([root.clone()]);
    let mut queue = vec![root];
    while let Some(node) = queue.pop() {
        for child in children.get(&node).into_iter().flatten() {
            if seen.insert(child.clone()) {
                queue.push(child.clone());
            }
        }
    }
    Ok(seen)
}

/// Parses `cargo tree --prefix none --format '{p}\t{l}'` lines:
/// `name vX.Y.Z[ (path)]<TAB>licence[ (*)]`.
pub fn parse_tree(text: &str) -> Result<BTreeSet<Linked>> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.insert(parse_line(line)?);
    }
    Ok(out)
}

/// The crates linked into `package`'s binary with `features` (comma-separated), built
/// as `build` says.
pub fn linked(
    root: &Path,
    package: &str,
    features: Option<&str>,
    build: Build,
) -> Result<BTreeSet<Linked>> {
    let mut args = vec![
        "tree",
        "--locked",
        "--offline",
        "-e",
        "normal,no-proc-macro",
    ];
    match build {
        Build::Package => args.extend(["-p", package, "--prefix", "none"]),
        Build::Workspace => args.extend(["--workspace", "--prefix", "depth"]),
    }
    args.extend(["--format", "{p}\t{l}"]);
    let qualified = features.map(|f| {
        f.split(',')
            .map(|f| format!("{package}/{}", f.trim()))
            .collect::<Vec<_>>()
            .join(",")
    });
    if let Some(f) = &qualified {
        args.extend(["--features", f]);
    }
    let stdout = cargo_stdout(root, &args)?;
    let text = String::from_utf8_lossy(&stdout);
    match build {
        Build::Package => parse_tree(&text),
        Build::Workspace => parse_workspace_tree(&text, package),
    }
}

fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

/// A crate as a CycloneDX component of `kind` (`application`, `library`).
fn component(kind: &str, c: &Linked) -> Value {
    json!({
        "type": kind,
        "bom-ref": purl(&c.name, &c.version),
        "name": c.name,
        "version": c.version,
        "purl": purl(&c.name, &c.version),
        "licenses": licenses(c.license.as_deref()),
    })
}

fn licenses(license: Option<&str>) -> Value {
    match license {
        Some(expression) => json!([{ "expression": expression }]),
        None => json!([]),
    }
}

/// The CycloneDX document for `package` (the root component, an application) and the
/// crates it links (libraries), with checksums from `Cargo.lock`'s text.
pub fn document(package: &str, crates: &BTreeSet<Linked>, lock: &str) -> Result<Value> {
    let root = crates
        .iter()
        .find(|c| c.name == package && c.local)
        .ok_or_else(|| Error::Invalid(format!("`{package}` is not a workspace package")))?;
    let checksums: BTreeMap<(String, String), String> = parse_lock(lock)
        .into_iter()
        .filter_map(|p| p.checksum.map(|c| ((p.name, p.version), c)))
        .collect();
    let components: Vec<Value> = crates
        .iter()
        .filter(|c| *c != root)
        .map(|c| {
            let mut component = component("library", c);
            if let Some(sum) = checksums.get(&(c.name.clone(), c.version.clone())) {
                component["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
            }
            if c.local {
                component["properties"] =
                    json!([{ "name": "kiln:workspace-crate", "value": "true" }]);
            }
            component
        })
        .collect();
    let names: Vec<String> = crates
        .iter()
        .map(|c| format!("{}@{}", c.name, c.version))
        .collect();
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", kiln_core::uuid::from_name(&names.join("\n"))),
        "version": 1,
        "metadata": {
            "tools": { "components": [{ "type": "application", "name": "cargo xtask sbom" }] },
            "component": component("application", root),
        },
        "components": components,
    }))
}

/// Writes `package`'s SBOM to `out`.
pub fn write(
    root: &Path,
    package: &str,
    features: Option<&str>,
    build: Build,
    out: &Path,
) -> Result<usize> {
    let crates = linked(root, package, features, build)?;
    let lock = read(&root.join("Cargo.lock"))?;
    let doc = document(package, &crates, &lock)?;
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::Invalid(format!("the SBOM does not serialise: {e}")))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(out, text + "\n").map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(crates.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = "kiln-prepare v0.1.0 (/src/crates/prepare)\tApache-2.0
arrow v59.3.2\tApache-2.0
kiln-core v0.1.0 (/src/crates/core)\tApache-2.0
arrow v59.3.2\tApache-2.0 (*)
ring v0.17.14\tApache-2.0 AND ISC
odd v1.0.0\t
";

    #[test]
    fn tree_lines_become_unique_crates_without_paths() {
        let crates = parse_tree(TREE).unwrap();
        assert_eq!(crates.len(), 5);
        let core = crates.iter().find(|c| c.name == "kiln-core").unwrap();
        assert!(core.local);
        assert_eq!(core.version, "0.1.0");
        let arrow = crates.iter().find(|c| c.name == "arrow").unwrap();
        assert!(!arrow.local);
        assert_eq!(
            crates.iter().find(|c| c.name == "odd").unwrap().license,
            None
        );
        assert!(parse_tree("garbage\n").is_err());
    }

    #[test]
    fn the_document_names_the_root_and_its_libraries_with_checksums() {
        let crates = parse_tree(TREE).unwrap();
        let lock = "[[package]]\nname = \"arrow\"\nversion = \"59.3.2\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"abc\"\n";
        let doc = document("kiln-prepare", &crates, lock).unwrap();
        assert_eq!(doc["metadata"]["component"]["name"], "kiln-prepare");
        let components = doc["components"].as_array().unwrap();
        assert_eq!(components.len(), 4);
        let arrow = components.iter().find(|c| c["name"] == "arrow").unwrap();
        assert_eq!(arrow["hashes"][0]["content"], "abc");
        assert_eq!(arrow["purl"], "pkg:cargo/arrow@59.3.2");
        let text = doc.to_string();
        assert!(!text.contains("/src/"), "no build paths in the SBOM");
        assert!(document("kiln-serve", &crates, lock).is_err());
    }

    #[test]
    fn a_workspace_tree_is_walked_from_the_package_through_repeated_subtrees() {
        let tree = "0kiln-core v0.1.0 (/src/crates/core)\tApache-2.0
1arrow v59.3.2\tApache-2.0
2half v2.0.0\tMIT
0kiln-prepare v0.1.0 (/src/crates/prepare)\tApache-2.0
1kiln-core v0.1.0 (/src/crates/core)\tApache-2.0 (*)
1csv v1.0.0\tMIT
0kiln-serve v0.1.0 (/src/crates/serve)\tApache-2.0
1tonic v0.14.0\tMIT
";
        let crates = parse_workspace_tree(tree, "kiln-prepare").unwrap();
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["arrow", "csv", "half", "kiln-core", "kiln-prepare"]);
        assert!(parse_workspace_tree(tree, "kiln-nope").is_err());
    }
}
