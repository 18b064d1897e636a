//! The packages a crate links, from the workspace's `Cargo.lock`: what the ML-BOM
//! lists as the libraries that trained a model.
//!
//! The walk starts at the crate and follows `Cargo.lock`'s dependency edges. For a
//! workspace crate only its normal dependencies count (the lock also records dev- and
//! build-dependencies, which are not linked); for a registry crate every recorded edge
//! counts, so build-only helpers of third-party crates (a few code generators) are
//! listed too. `Cargo.lock` resolves every feature of the workspace at once, so the
//! subgraphs of features this build leaves off are pruned by name (`prune`): burn's
//! CUDA backend unless `--features cuda`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::{normal_dependencies, read, workspace_paths};

/// One package of `Cargo.lock`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// `registry+…`, `git+…`; `None` for a workspace crate.
    pub source: Option<String>,
    /// The registry's sha256 of the `.crate` file.
    pub checksum: Option<String>,
    /// The lock's edges: `name`, `name version` or `name version (source)`.
    dependencies: Vec<String>,
}

/// Reads `Cargo.lock`'s `[[package]]` tables (the format cargo writes: one key per
/// line, `dependencies` as a bracketed list of strings, one per line).
pub fn parse_lock(text: &str) -> Vec<LockedPackage> {
    let mut packages = Vec::new();
    let mut current: Option<LockedPackage> = None;
    let mut in_list = false;
    let unquote = |s: &str| s.trim().trim_end_matches(',').trim_matches('"').to_string();
    for line in text.lines().map(str::trim) {
        if line == "[[package]]" {
            packages.extend(current.take());
            current = Some(LockedPackage {
                name: String::new(),
                version: String::new(),
                source: None,
                checksum: None,
                dependencies: Vec::new(),
            });
            in_list = false;
            continue;
        }
        let Some(p) = current.as_mut() else { continue };
        if in_list {
            if line.starts_with(']') {
                in_list = false;
            } else if !line.is_empty() {
                p.dependencies.push(unquote(line));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "name" => p.name = unquote(value),
            "version" => p.version = unquote(value),
            "source" => p.source = Some(unquote(value)),
            "checksum" => p.checksum = Some(unquote(value)),
            "dependencies" => {
                let inner = value.trim_start_matches('[');
                if let Some(one_line) = inner.strip_suffix(']') {
                    p.dependencies.extend(
                        one_line
                            .split(',')
                            .filter(|s| !s.trim().is_empty())
                            .map(unquote),
                    );
                } else {
                    in_list = true;
                }
            }
            _ => {}
        }
    }
    packages.extend(current);
    packages
}

/// Every package the crate at `dir` links (itself included), sorted by name and
/// version. `lock` is the workspace's `Cargo.lock`; packages named in `prune` are left
/// out with everything only they pull in.
pub fn linked_packages(dir: &Path, lock: &str, prune: &[&str]) -> Vec<LockedPackage> {
    let packages = parse_lock(lock);
    let Some(root_dir) = dir.ancestors().find(|d| d.join("Cargo.lock").exists()) else {
        return Vec::new();
    };
    let paths = workspace_paths(&read(&root_dir.join("Cargo.toml")));
    let Some(name) = crate::package_name(&read(&dir.join("Cargo.toml"))) else {
        return Vec::new();
    };
    let find = |reference: &str| -> Option<usize> {
        let mut parts = reference.splitn(3, ' ');
        let (name, version) = (parts.next()?, parts.next());
        packages
            .iter()
            .position(|p| p.name == name && version.is_none_or(|v| p.version == v))
    };
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = find(&name).into_iter().collect();
    while let Some(i) = todo.pop() {
        if !seen.insert(i) {
            continue;
        }
        let package = &packages[i];
        // A workspace crate: only the normal dependencies its manifest names.
        let normal: Option<BTreeSet<String>> = package.source.is_none().then(|| {
            let crate_dir = if package.name == name {
                dir.to_path_buf()
            } else {
                paths
                    .get(&package.name)
                    .map(|p| root_dir.join(p))
                    .unwrap_or_default()
            };
            normal_dependencies(&read(&crate_dir.join("Cargo.toml")))
                .into_iter()
                .collect()
        });
        for reference in &package.dependencies {
            let dep_name = reference.split(' ').next().unwrap_or_default();
            if prune.contains(&dep_name) || normal.as_ref().is_some_and(|n| !n.contains(dep_name)) {
                continue;
            }
            if let Some(j) = find(reference) {
                todo.push(j);
            }
        }
    }
    let mut out: Vec<LockedPackage> = seen.into_iter().map(|i| packages[i].clone()).collect();
    out.sort();
    out
}

/// Writes `$OUT_DIR/dependencies.json` (`[{name, version, source, checksum}]`) for the
/// crate being built, pruning `prune_unless_feature`'s packages whose feature is off
/// (`("cuda", "burn-cuda")`: burn's CUDA backend unless `CARGO_FEATURE_CUDA`;
/// `("cuda", "cubecl-cuda")`: the CUDA runtime of cubecl that it turns on).
// A build script talks to cargo on stdout.
#[allow(clippy::print_stdout)]
pub fn emit_dependencies(prune_unless_feature: &[(&str, &str)]) {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let lock_path = dir
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.exists());
    let lock = lock_path.as_deref().map(read).unwrap_or_default();
    if let Some(path) = &lock_path {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let prune: Vec<&str> = prune_unless_feature
        .iter()
        .filter(|(feature, _)| {
            let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
            std::env::var_os(var).is_none()
        })
        .map(|(_, package)| *package)
        .collect();
    let mut json = String::from("[\n");
    let packages = linked_packages(&dir, &lock, &prune);
    let quoted = |s: &Option<String>| match s {
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        None => "null".to_string(),
    };
    let by_key: BTreeMap<(String, String), &LockedPackage> = packages
        .iter()
        .map(|p| ((p.name.clone(), p.version.clone()), p))
        .collect();
    for (i, p) in by_key.values().enumerate() {
        json.push_str(&format!(
            "  {{\"name\": \"{}\", \"version\": \"{}\", \"source\": {}, \"checksum\": {}}}{}\n",
            p.name,
            p.version,
            quoted(&p.source),
            quoted(&p.checksum),
            if i + 1 < by_key.len() { "," } else { "" }
        ));
    }
    json.push_str("]\n");
    std::fs::write(out.join("dependencies.json"), json).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_read_with_one_line_and_multi_line_dependency_lists() {
        let lock = r#"
version = 4

[[package]]
name = "a"
version = "1.0.0"
source = "registry+https://example.invalid/index"
checksum = "ab"
dependencies = [
 "b",
 "c 0.2.0",
]

[[package]]
name = "b"
version = "0.1.0"
dependencies = ["c 0.2.0"]

[[package]]
name = "c"
version = "0.2.0"
"#;
        let packages = parse_lock(lock);
        assert_eq!(packages.len(), 3);
        assert_eq!(packages[0].dependencies, ["b", "c 0.2.0"]);
        assert_eq!(packages[0].checksum.as_deref(), Some("ab"));
        assert_eq!(packages[1].dependencies, ["c 0.2.0"]);
        assert_eq!(packages[1].source, None);
        assert!(packages[2].dependencies.is_empty());
    }

    #[test]
    fn the_train_crate_links_burn_but_not_its_tests_kit_nor_cuda_without_the_feature() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../train");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = read(&root.join("Cargo.lock"));
        let names = |prune: &[&str]| -> BTreeSet<String> {
            linked_packages(&dir, &lock, prune)
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        let cpu = names(&["burn-cuda", "cubecl-cuda"]);
        for linked in [
            "kiln-train",
            "kiln-model",
            "burn",
            "burn-ndarray",
            "arrow",
            "serde",
        ] {
            assert!(cpu.contains(linked), "{linked} in {cpu:?}");
        }
        for not_linked in [
            "kiln-testkit",
            "tempfile",
            "burn-cuda",
            "cudarc",
            "kiln-serve",
        ] {
            assert!(!cpu.contains(not_linked), "{not_linked} is not linked");
        }
        let cuda = names(&[]);
        assert!(cuda.contains("burn-cuda") && cuda.contains("cudarc"));
    }
}
