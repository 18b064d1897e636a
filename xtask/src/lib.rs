//! # xtask
//!
//! Kiln's own automation, in Rust rather than in the Makefile (rust-analyzer's habit):
//!
//! - [`spec_reference`]: the manual's spec reference page, rendered from the JSON
//!   Schema that `kiln spec schema` prints, so the page cannot drift from the types;
//! - [`links`]: the manual's link check (every internal link and anchor of the built
//!   book, and the README's links) that `make test` runs;
//! - [`install`]: every `kiln*` binary of the workspace, found with `cargo metadata`;
//! - [`sbom`]: an image's CycloneDX SBOM, the crates linked into its binary;
//! - [`images`]: the manifests' image references pinned to `images.lock`'s digests.
//!
//! `cargo xtask help` lists the commands; the binary only parses arguments.

pub mod images;
pub mod install;
pub mod links;
pub mod sbom;
pub mod spec_reference;

use std::path::{Path, PathBuf};

/// What can go wrong in a task; each message names the file or command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `cargo ARGS` in `root` and returns its standard output; a failure names the
/// command and carries cargo's own message.
pub fn cargo_stdout(root: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let command = format!("cargo {}", args.join(" "));
    let output =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(args)
            .current_dir(root)
            .output()
            .map_err(|e| Error::Command {
                command: command.clone(),
                message: e.to_string(),
            })?;
    if !output.status.success() {
        return Err(Error::Command {
            command,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

/// Reads a file as text, naming it on failure.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The workspace root (where `Cargo.lock` is), from this crate's own location.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}
