//! The offline manifest checkers the deployment tests share: Argo's schema, and
//! `tests/manifests/lint.sh` with the tools `make test-deps` installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{python, run, workspace_root};

/// The schemas of ../shared/schemas (or `KILN_SCHEMAS_DIR`).
pub fn schemas() -> PathBuf {
    let dir = std::env::var_os("KILN_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/schemas"));
    assert!(
        dir.join("argo-workflows/schema.json").exists(),
        "no Argo schema under {}",
        dir.display()
    );
    dir
}

/// `tests/manifests/check_argo.py` against Argo's schema, unknown fields rejected.
pub fn check_argo(files: &[PathBuf]) -> Output {
    run(Command::new(python())
        .arg(workspace_root().join("tests/manifests/check_argo.py"))
        .arg(schemas().join("argo-workflows/schema.json"))
        .args(files))
}

/// Runs `tests/manifests/lint.sh KIND ARGS...`.
pub fn lint(kind: &str, args: &[&Path]) -> Output {
    let mut cmd = Command::new(workspace_root().join("tests/manifests/lint.sh"));
    cmd.arg(kind).args(args).env("PYTHON", python());
    if let Some(dir) = std::env::var_os("KILN_SCHEMAS_DIR") {
        cmd.env("SCHEMAS", dir);
    }
    run(&mut cmd)
}
