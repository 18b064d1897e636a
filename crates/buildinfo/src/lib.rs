//! # kiln-buildinfo
//!
//! Called from a crate's `build.rs`: hashes the crate's `Cargo.toml` and every file
//! under its `src/` (paths and bytes, in path order) and sets `KILN_CODE_HASH` for the
//! crate's compilation, so `env!("KILN_CODE_HASH")` names the code that was built. A
//! step's cache key includes the hashes of its own crate and the libraries it runs
//! (see `kiln_core::step`): a code change reruns the step even when the version number
//! did not move. Cargo reruns the build script only when those files change.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Emits `cargo:rustc-env=KILN_CODE_HASH=…` and the `rerun-if-changed` lines.
// A build script talks to cargo on stdout.
#[allow(clippy::print_stdout)]
pub fn emit_code_hash() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = vec![dir.join("Cargo.toml")];
    collect(&dir.join("src"), &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let rel = file.strip_prefix(&dir).unwrap_or(file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(file).unwrap_or_default());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=KILN_CODE_HASH={hex}");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=src");
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
