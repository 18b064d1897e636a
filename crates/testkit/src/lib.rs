//! Test support shared by Kiln's integration tests.
//!
//! The external tools the tests use are installed by `make test-deps` under `.cache/`
//! and found through `KILN_TEST_PYTHON` and `KILN_TEST_S3S_FS` (which `make test` sets),
//! or at their default places in the workspace. A missing tool fails the test with the
//! command that installs it: a test that silently skipped would prove nothing.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Copies a folder tree (a dataset into an S3-protocol server's bucket folder).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the target folder");
    for entry in std::fs::read_dir(from).expect("read the folder").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// A step's outputs, path → sha256, from its manifest file (`None` when there is none).
pub fn manifest_outputs(manifest: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    let bytes = std::fs::read(manifest).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest JSON");
    Some(
        manifest["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .map(|o| {
                (
                    o["path"].as_str().expect("path").to_string(),
                    o["sha256"].as_str().expect("sha256").to_string(),
                )
            })
            .collect(),
    )
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    // `cargo test` sets CARGO_MANIFEST_DIR for the test binary it runs (the crate
    // under test); prefer it to the path compiled into testkit, which a target
    // directory shared by two checkouts can leave pointing at the other one.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .map(Path::to_path_buf)
        .expect("the test runs inside the Kiln workspace")
}

/// A binary built from this workspace (`cargo build --bins` puts it beside the test's deps
/// folder). A binary older than any source file it was built from is refused: `cargo test
/// -p kiln-train` builds only kiln-train's own binaries, and an old kiln-prepare would
/// otherwise pass or fail a test for code that is no longer there.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (make test does)",
        path.display()
    );
    if let Some(newer) = newer_source(&path) {
        panic!(
            "{} is older than {}: run `cargo build --bins` (make test does)",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A source file the binary was built from (cargo's dep-info `<binary>.d`) that
/// changed after it was built, if any.
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let line = info.lines().next()?;
    let (_, deps) = line.split_once(": ")?;
    // Paths are separated by spaces; a space inside a path is written `\ `.
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => paths.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    paths.push(current);
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .find(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|changed| changed > built)
        })
}

/// `binary [subcommand] --spec examples/adult/spec.yaml --run <run_dir>` with the Adult
/// data and without MLflow (set `MLFLOW_TRACKING_URI` on it to track): how tests run a
/// step's binary or `kiln` on the example. Add arguments, then [`run`] it.
pub fn adult_command(binary: &Path, subcommand: Option<&str>, run_dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(subcommand)
        .arg("--spec")
        .arg(workspace_root().join("examples/adult/spec.yaml"))
        .arg("--run")
        .arg(run_dir)
        .env("KILN_ADULT_DIR", adult_dir())
        .env("MLFLOW_TRACKING_URI", "")
        .env_remove("KILN_SIGNING_KEY");
    cmd
}

fn tool(env: &str, default: &str, install: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    assert!(
        path.exists(),
        "{} not found ({env}); install it with `{install}`",
        path.display()
    );
    path
}

/// The Python of the test venv (with pyarrow).
pub fn python() -> PathBuf {
    tool(
        "KILN_TEST_PYTHON",
        ".cache/venv/bin/python",
        "make test-deps",
    )
}

/// The Python of the Feast venv (`feast`, pinned in scripts/deps/requirements-feast.in).
pub fn feast_python() -> PathBuf {
    tool(
        "KILN_TEST_FEAST_PYTHON",
        ".cache/feast-venv/bin/python",
        "make test-deps",
    )
}

/// The UCI Adult folder (adult.data, adult.test).
pub fn adult_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_ADULT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data/adult"));
    assert!(
        dir.join("adult.data").exists(),
        "Adult data not found at {}; run `make data` and set KILN_ADULT_DIR",
        dir.display()
    );
    dir
}

/// Runs a command and returns its output (stdout, stderr, status).
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// stderr of an output, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout of an output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a Parquet file with pyarrow (an independent reader) and returns
/// `{"rows": n, "schema": {name: type}, "nulls": {name: count}, "sums": {name: sum}}`.
pub fn pyarrow_describe(path: &Path) -> serde_json::Value {
    let script = r#"
import json, sys
import pyarrow.parquet as pq
import pyarrow.compute as pc
t = pq.read_table(sys.argv[1])
out = {"rows": t.num_rows,
       "schema": {f.name: str(f.type) for f in t.schema},
       "nulls": {c: t.column(c).null_count for c in t.column_names},
       "sums": {c: pc.sum(t.column(c)).as_py() for c in t.column_names
                if str(t.schema.field(c).type).startswith(("int", "double"))}}
print(json.dumps(out))
"#;
    let out = run(Command::new(python()).arg("-c").arg(script).arg(path));
    assert!(out.status.success(), "pyarrow failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("pyarrow output is JSON")
}

/// Checks a JSON file against a JSON Schema with the `jsonschema` package (an
/// independent validator); `Err` holds its messages, one per violation.
pub fn check_json_schema(schema: &Path, instance: &Path) -> Result<(), String> {
    let script = "import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\ninstance = json.load(open(sys.argv[2]))\ncls = jsonschema.validators.validator_for(schema)\ncls.check_schema(schema)\nerrors = [f\"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}\" for e in cls(schema).iter_errors(instance)]\nprint('\\n'.join(errors))\nsys.exit(1 if errors else 0)";
    let out = run(Command::new(python())
        .args(["-c", script])
        .arg(schema)
        .arg(instance));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", stdout(&out), stderr(&out)))
    }
}

/// Parses an SVG (XML) file with Python's standard library parser — an independent
/// reader — and returns the root tag and the number of elements.
pub fn parse_svg(path: &Path) -> (String, usize) {
    let script = "import sys, xml.etree.ElementTree as ET\nroot = ET.parse(sys.argv[1]).getroot()\nprint(root.tag, sum(1 for _ in root.iter()))";
    let out = run(Command::new(python()).arg("-c").arg(script).arg(path));
    assert!(
        out.status.success(),
        "{} is not well-formed XML: {}",
        path.display(),
        stderr(&out)
    );
    let text = stdout(&out);
    let (tag, count) = text.trim().rsplit_once(' ').expect("tag and count");
    (tag.to_string(), count.parse().expect("a count"))
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// mdBook, which builds the manual (`cargo install`ed under `.cache/tools/bin` by `make
/// test-deps`; pinned in scripts/deps/cargo-tools.txt).
pub fn mdbook_bin() -> PathBuf {
    tool(
        "KILN_TEST_MDBOOK",
        ".cache/tools/bin/mdbook",
        "make test-deps",
    )
}

/// The provenance venv's tool `name` (`model_signing`, or `python` with
/// cyclonedx-python-lib), pinned in scripts/deps/requirements-provenance.in.
pub fn provenance_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("KILN_TEST_PROVENANCE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/provenance-venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} not found (KILN_TEST_PROVENANCE_VENV); install it with `make test-deps`",
        path.display()
    );
    path
}

/// The Python of the serving-clients venv (tritonclient, kserve, schemathesis, pyarrow).
pub fn serve_python() -> PathBuf {
    tool(
        "KILN_TEST_SERVE_PYTHON",
        ".cache/serve-venv/bin/python",
        "make test-deps",
    )
}

mod containers;
mod faults;
mod http;
pub mod manifests;
mod monitoring;
mod routing;
mod servers;
mod serving;
pub mod tables;
pub use containers::*;
pub use faults::*;
pub use http::*;
pub use monitoring::*;
pub use routing::*;
pub use servers::*;
pub use serving::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_older_than_a_source_it_was_built_from_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("my src.rs");
        let other = dir.path().join("lib.rs");
        std::fs::write(&source, "fn main() {}").unwrap();
        std::fs::write(&other, "").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let binary = dir.path().join("tool");
        std::fs::write(&binary, "").unwrap();
        let escaped = source.display().to_string().replace(' ', "\\ ");
        std::fs::write(
            binary.with_extension("d"),
            format!("{}: {escaped} {}\n", binary.display(), other.display()),
        )
        .unwrap();
        assert_eq!(newer_source(&binary), None);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&source, "fn main() { changed() }").unwrap();
        assert_eq!(newer_source(&binary), Some(source));
    }
}
