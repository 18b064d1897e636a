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

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("testkit lives at crates/testkit")
}

/// A binary built from this workspace (`cargo build --bins` puts it beside the test's deps folder).
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
    path
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

/// A real S3-protocol server (s3s-fs) on loopback, serving a temporary folder.
/// Each bucket is a sub-folder. Stopped when dropped.
pub struct S3Server {
    child: Child,
    pub root: tempfile::TempDir,
    pub endpoint: String,
}

/// Credentials the test server accepts.
pub const S3_ACCESS_KEY: &str = "kiln-test-access";
pub const S3_SECRET_KEY: &str = "kiln-test-secret";

impl S3Server {
    /// Starts the server with the given buckets and waits until it accepts connections.
    pub fn start(buckets: &[&str]) -> S3Server {
        let binary = tool(
            "KILN_TEST_S3S_FS",
            ".cache/tools/bin/s3s-fs",
            "make test-deps",
        );
        let root = tempfile::tempdir().expect("temp dir");
        for bucket in buckets {
            std::fs::create_dir_all(root.path().join(bucket)).expect("bucket folder");
        }
        let port = free_port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let server = S3Server {
            child,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The environment a client needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
