//! `make install`: every `kiln*` binary the workspace builds, found with `cargo
//! metadata` rather than a hand-kept list, so a new step's binary is installed the day
//! its crate exists.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// A workspace package with the `kiln*` binaries it builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryPackage {
    pub name: String,
    /// The folder of its `Cargo.toml`.
    pub dir: PathBuf,
    pub binaries: Vec<String>,
}

/// `cargo metadata --no-deps` of the workspace, parsed.
pub fn metadata(root: &Path) -> Result<Value> {
    let args = ["metadata", "--no-deps", "--format-version", "1", "--locked"];
    let stdout = crate::cargo_stdout(root, &args)?;
    serde_json::from_slice(&stdout).map_err(|e| Error::Command {
        command: format!("cargo {}", args.join(" ")),
        message: format!("unreadable output: {e}"),
    })
}

/// The workspace members that build a binary named `kiln*`, by package name.
pub fn binary_packages(metadata: &Value) -> Vec<BinaryPackage> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut packages: Vec<BinaryPackage> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
        .filter_map(|p| {
            let binaries: Vec<String> = p["targets"]
                .as_array()?
                .iter()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t["name"].as_str())
                .filter(|name| name.starts_with("kiln"))
                .map(str::to_string)
                .collect();
            let dir = Path::new(p["manifest_path"].as_str()?)
                .parent()?
                .to_path_buf();
            (!binaries.is_empty()).then(|| BinaryPackage {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                dir,
                binaries,
            })
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// The `cargo install` arguments that install one package's binaries.
pub fn install_args(package: &BinaryPackage, profile: &str, root: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "install".to_string(),
        "--locked".to_string(),
        "--profile".to_string(),
        profile.to_string(),
        "--path".to_string(),
        package.dir.display().to_string(),
    ];
    if let Some(root) = root {
        args.push("--root".to_string());
        args.push(root.display().to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_members_with_kiln_binaries_are_installed() {
        let metadata = json!({
            "workspace_members": ["a", "b", "c"],
            "packages": [
                {"id": "b", "name": "kiln-serve", "manifest_path": "/w/crates/serve/Cargo.toml",
                 "targets": [{"kind": ["lib"], "name": "kiln_serve"}, {"kind": ["bin"], "name": "kiln-serve"}]},
                {"id": "a", "name": "kiln-cli", "manifest_path": "/w/crates/cli/Cargo.toml",
                 "targets": [{"kind": ["bin"], "name": "kiln"}]},
                {"id": "c", "name": "xtask", "manifest_path": "/w/xtask/Cargo.toml",
                 "targets": [{"kind": ["bin"], "name": "xtask"}]},
                {"id": "d", "name": "oha", "manifest_path": "/r/oha/Cargo.toml",
                 "targets": [{"kind": ["bin"], "name": "kiln-not-ours"}]}
            ]
        });
        let packages = binary_packages(&metadata);
        assert_eq!(
            packages,
            vec![
                BinaryPackage {
                    name: "kiln-cli".into(),
                    dir: "/w/crates/cli".into(),
                    binaries: vec!["kiln".into()]
                },
                BinaryPackage {
                    name: "kiln-serve".into(),
                    dir: "/w/crates/serve".into(),
                    binaries: vec!["kiln-serve".into()]
                },
            ]
        );
        assert_eq!(
            install_args(&packages[1], "fast-release", Some(Path::new("/opt"))).join(" "),
            "install --locked --profile fast-release --path /w/crates/serve --root /opt"
        );
    }
}
