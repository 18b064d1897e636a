//! # kiln-buildinfo
//!
//! Called from a crate's `build.rs`: hashes the code the crate is built from, its own
//! and that of every workspace library it depends on, and sets `KILN_CODE_HASH` for the
//! crate's compilation, so `env!("KILN_CODE_HASH")` names the code that was built. A
//! step's cache key includes it (see `kiln_core::step`): a code change in the step or in
//! any library it runs reruns the step even when the version number did not move.
//!
//! The libraries are found the way cargo finds them: the crate's `Cargo.toml` names its
//! normal dependencies (`[dependencies]` and `[target.….dependencies]`, optional ones
//! included; not dev- or build-dependencies), the workspace's `[workspace.dependencies]`
//! gives each `kiln-*` one's path, and so on down. `tests/layering.rs` checks the result
//! against `cargo tree`. For each crate the hash covers its `Cargo.toml` and every file
//! under its `src/` (paths and bytes, in path order); cargo reruns the build script when
//! any of them changes.

pub mod dependencies;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Emits `cargo:rustc-env=KILN_CODE_HASH=…` (and `KILN_CODE_CRATES`, the crates it
/// covers, comma-separated) and the `rerun-if-changed` lines.
// A build script talks to cargo on stdout.
#[allow(clippy::print_stdout)]
pub fn emit_code_hash() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let crates = code_crates(&dir);
    let mut hasher = Sha256::new();
    for (name, crate_dir) in &crates {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        let mut files = vec![crate_dir.join("Cargo.toml")];
        collect(&crate_dir.join("src"), &mut files);
        files.sort();
        for file in &files {
            let rel = file.strip_prefix(crate_dir).unwrap_or(file);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(std::fs::read(file).unwrap_or_default());
            hasher.update([0]);
        }
        println!(
            "cargo:rerun-if-changed={}",
            crate_dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", crate_dir.join("src").display());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let names: Vec<&str> = crates.keys().map(String::as_str).collect();
    println!("cargo:rustc-env=KILN_CODE_HASH={hex}");
    println!("cargo:rustc-env=KILN_CODE_CRATES={}", names.join(","));
}

/// The crate at `dir` and every workspace crate it depends on (normal dependencies,
/// transitively), by package name.
pub fn code_crates(dir: &Path) -> BTreeMap<String, PathBuf> {
    let manifest = read(&dir.join("Cargo.toml"));
    let name = package_name(&manifest).unwrap_or_else(|| dir.display().to_string());
    let Some(root) = dir.ancestors().skip(1).find(|d| {
        read(&d.join("Cargo.toml"))
            .lines()
            .any(|l| l.trim() == "[workspace]")
    }) else {
        return BTreeMap::from([(name, dir.to_path_buf())]);
    };
    let paths = workspace_paths(&read(&root.join("Cargo.toml")));
    let mut found = BTreeMap::new();
    let mut todo = vec![(name, dir.to_path_buf())];
    while let Some((name, crate_dir)) = todo.pop() {
        if found.contains_key(&name) {
            continue;
        }
        for dependency in normal_dependencies(&read(&crate_dir.join("Cargo.toml"))) {
            if let Some(path) = paths.get(&dependency) {
                todo.push((dependency, root.join(path)));
            }
        }
        found.insert(name, crate_dir);
    }
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `name = "…"` of the `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = assignment(line, "name") {
            return Some(value.trim_matches('"').to_string());
        }
    }
    None
}

/// `key = value` → `value` (trimmed), when the line assigns `key`.
fn assignment<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (left, right) = line.split_once('=')?;
    (left.trim() == key).then(|| right.trim())
}

/// The `path = "…"` of each entry of `[workspace.dependencies]` that has one.
fn workspace_paths(manifest: &str) -> BTreeMap<String, PathBuf> {
    let mut in_table = false;
    let mut paths = BTreeMap::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[workspace.dependencies]";
            continue;
        }
        if !in_table {
            continue;
        }
        let Some((name, spec)) = line.split_once('=') else {
            continue;
        };
        let Some((_, rest)) = spec.split_once("path = \"") else {
            continue;
        };
        if let Some((path, _)) = rest.split_once('"') {
            paths.insert(name.trim().to_string(), PathBuf::from(path));
        }
    }
    paths
}

/// The names of a manifest's normal dependencies: the keys of `[dependencies]` and of
/// `[target.<cfg>.dependencies]` (`name = …`, `name.workspace = true`).
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let mut in_table = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            let table = line.trim_matches(|c| c == '[' || c == ']');
            in_table = table == "dependencies"
                || (table.starts_with("target.") && table.ends_with(".dependencies"));
            continue;
        }
        if !in_table || line.starts_with('#') {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            let name = key.strip_suffix(".workspace").unwrap_or(key);
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    names
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_dependencies_leave_out_dev_and_build_ones() {
        let manifest = r#"
[package]
name = "kiln-x"

[dependencies]
kiln-core.workspace = true
# a comment = not a dependency
serde = { workspace = true }
kiln-runtime = { workspace = true, optional = true }

[target.'cfg(unix)'.dependencies]
libc.workspace = true

[dev-dependencies]
kiln-testkit.workspace = true

[build-dependencies]
kiln-buildinfo.workspace = true
"#;
        assert_eq!(package_name(manifest).as_deref(), Some("kiln-x"));
        assert_eq!(
            normal_dependencies(manifest),
            ["kiln-core", "serde", "kiln-runtime", "libc"]
        );
    }

    #[test]
    fn workspace_paths_come_from_workspace_dependencies() {
        let manifest = r#"
[workspace]
members = ["crates/*"]

[workspace.dependencies]
kiln-core = { path = "crates/core" }
kiln-train = { path = "crates/train", default-features = false }
serde = { version = "1", features = ["derive"] }
"#;
        let paths = workspace_paths(manifest);
        assert_eq!(paths.len(), 2);
        assert_eq!(paths["kiln-train"], PathBuf::from("crates/train"));
    }

    #[test]
    fn this_crate_covers_itself_alone() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let crates = code_crates(dir);
        assert_eq!(crates.keys().collect::<Vec<_>>(), ["kiln-buildinfo"]);
    }
}
