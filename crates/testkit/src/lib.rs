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
        .env("MLFLOW_TRACKING_URI", "");
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

/// The Python of the Feast venv (`feast`, pinned in the Makefile).
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

/// The `mlflow` command of the test venv (`mlflow[auth]`, pinned in the Makefile).
pub fn mlflow_bin() -> PathBuf {
    tool(
        "KILN_TEST_MLFLOW",
        ".cache/mlflow-venv/bin/mlflow",
        "make test-deps",
    )
}

/// Credentials of the admin user of an [`MlflowServer`] started with authentication.
pub const MLFLOW_ADMIN: (&str, &str) = ("admin", "kiln-test-admin-password");

/// A real MLflow tracking server (sqlite backend, artifacts served by the server) on a
/// free loopback port, in its own process group so that stopping it (on drop) stops
/// its workers too.
pub struct MlflowServer {
    child: Child,
    pub root: tempfile::TempDir,
    pub uri: String,
}

impl MlflowServer {
    /// Runs `code` with MLflow's own Python client against this server and parses the
    /// last line it prints as JSON (what a user's notebook would see).
    pub fn python(&self, code: &str) -> serde_json::Value {
        let python = mlflow_bin().parent().expect("venv bin").join("python");
        let out = run(Command::new(python)
            .arg("-c")
            .arg(code)
            .env("MLFLOW_TRACKING_URI", &self.uri));
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(stdout(&out).lines().last().unwrap_or("null")).expect("JSON line")
    }

    /// Starts a server; with `auth`, MLflow's basic-auth app (admin: [`MLFLOW_ADMIN`]).
    pub fn start(auth: bool) -> MlflowServer {
        use std::os::unix::process::CommandExt;
        let root = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut command = Command::new(mlflow_bin());
        command.arg("server");
        if auth {
            command.args(["--app-name", "basic-auth"]);
        }
        command
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                root.path().join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(root.path().join("artifacts"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("MLFLOW_AUTH_ADMIN_PASSWORD", MLFLOW_ADMIN.1)
            .env("MLFLOW_FLASK_SERVER_SECRET_KEY", "kiln-test-secret")
            .env("MLFLOW_AUTH_CONFIG_PATH", root.path().join("auth.ini"))
            .current_dir(root.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.path().join("server.log")).expect("log file"))
            .process_group(0);
        std::fs::write(
            root.path().join("auth.ini"),
            format!(
                "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\nadmin_username = {}\nadmin_password = {}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                root.path().join("auth.db").display(),
                MLFLOW_ADMIN.0,
                MLFLOW_ADMIN.1
            ),
        )
        .expect("auth config");
        let child = command.spawn().expect("start mlflow server");
        let server = MlflowServer {
            child,
            uri: format!("http://127.0.0.1:{port}"),
            root,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server did not start on port {port}: {}",
                std::fs::read_to_string(server.root.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The whole process group: the server and the workers it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
enum Fault {
    FailFirst {
        pattern: String,
        failures: usize,
    },
    SlowBody {
        every: usize,
        delay: Duration,
    },
    /// Every request whose request line contains `pattern` fails once
    /// [`FaultProxy::arm`] was called.
    FailWhenArmed {
        pattern: String,
    },
    /// The first `failures` requests whose request line contains `pattern` reach the
    /// server, which acts on them, but their replies are dropped.
    LoseReply {
        pattern: String,
        failures: usize,
    },
    /// While armed, the `nth` S3 request of kind `op` and every later one fail.
    S3 {
        op: S3Op,
        nth: usize,
    },
}

/// The kinds of S3 request a [`FaultProxy::s3`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Op {
    /// A ranged read of an object (`GET` with a `Range` header): Parquet reads.
    ReadRange,
    /// Any read of an object's bytes (`GET` of a key, ranged or not; not a listing).
    Read,
    /// An upload: `PUT` of an object or of a multipart part (not a server-side copy).
    Upload,
}

impl S3Op {
    fn matches(self, request_line: &str, head: &str) -> bool {
        let lower = head.to_ascii_lowercase();
        let target = request_line.split_whitespace().nth(1).unwrap_or_default();
        let object = target.trim_start_matches('/').contains('/');
        match self {
            S3Op::ReadRange => {
                request_line.starts_with("GET ") && object && lower.contains("\r\nrange:")
            }
            S3Op::Read => request_line.starts_with("GET ") && object,
            S3Op::Upload => {
                request_line.starts_with("PUT ")
                    && object
                    && !lower.contains("\r\nx-amz-copy-source:")
            }
        }
    }
}

/// An HTTP proxy in front of a server that answers `500` to the first `failures`
/// requests whose request line contains `pattern`, and forwards everything else.
pub struct FaultProxy {
    pub uri: String,
    pub injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: &str, pattern: &str, failures: usize) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::FailFirst {
                pattern: pattern.into(),
                failures,
            },
        )
    }

    /// A proxy that forwards every request, but for every `every`-th one with a body sends the
    /// upstream the head at once and the body only after `delay`: a slow client as the
    /// server sees it (its request timer and its concurrency slot both run meanwhile).
    /// `injected` counts the slowed requests.
    pub fn slow_bodies(upstream: &str, every: usize, delay: Duration) -> FaultProxy {
        FaultProxy::with_fault(upstream, Fault::SlowBody { every, delay })
    }

    /// A proxy that forwards everything until [`FaultProxy::arm`], then answers `500` to
    /// every request whose request line contains `pattern` (a release whose inference
    /// breaks under traffic while its health checks still pass).
    pub fn armable(upstream: &str, pattern: &str) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::FailWhenArmed {
                pattern: pattern.into(),
            },
        )
    }

    /// From now on, [`FaultProxy::armable`]'s proxy fails every request.
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A proxy in front of an S3-protocol server that, from the start, answers
    /// `503 SlowDown` to the `nth` request of kind `op` (1-based) and to every later
    /// one, so the client's own retries give up too; everything else is forwarded.
    /// [`FaultProxy::disarm`] ends the outage (what an Argo retry finds).
    pub fn s3(upstream: &str, op: S3Op, nth: usize) -> FaultProxy {
        let proxy = FaultProxy::with_fault(upstream, Fault::S3 { op, nth });
        proxy.arm();
        proxy
    }

    /// A proxy that forwards every request, but for the first `failures` whose request
    /// line contains `pattern` closes the connection once the server has answered,
    /// without passing the answer on: a create call that timed out after the server
    /// completed it, as the client sees it. `injected` counts the lost replies.
    pub fn lose_replies(upstream: &str, pattern: &str, failures: usize) -> FaultProxy {
        FaultProxy::with_fault(
            upstream,
            Fault::LoseReply {
                pattern: pattern.into(),
                failures,
            },
        )
    }

    /// Forwards everything from now on.
    pub fn disarm(&self) {
        self.armed.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn with_fault(upstream: &str, fault: Fault) -> FaultProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let uri = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let injected = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = injected.clone();
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let armed_here = armed.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, fault, counter, seen, armed) = (
                    upstream.clone(),
                    fault.clone(),
                    counter.clone(),
                    seen.clone(),
                    armed_here.clone(),
                );
                std::thread::spawn(move || {
                    let mut client = stream;
                    // Read the head, then the body by Content-Length.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let request_line = head.lines().next().unwrap_or_default().to_string();
                    let lose_reply = match &fault {
                        Fault::LoseReply { pattern, failures } => {
                            let lose = request_line.contains(pattern.as_str())
                                && seen.fetch_add(1, Ordering::SeqCst) < *failures;
                            if lose {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                            lose
                        }
                        _ => false,
                    };
                    // `None`: answer 500 here; `Some(d)`: forward, the body `d` late.
                    let stall = match &fault {
                        Fault::LoseReply { .. } => Some(Duration::ZERO),
                        Fault::FailFirst { pattern, failures } => (!(request_line
                            .contains(pattern.as_str())
                            && counter.fetch_add(1, Ordering::SeqCst) < *failures))
                            .then_some(Duration::ZERO),
                        Fault::FailWhenArmed { pattern } => {
                            if armed.load(Ordering::SeqCst)
                                && request_line.contains(pattern.as_str())
                            {
                                counter.fetch_add(1, Ordering::SeqCst);
                                None
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                        Fault::S3 { op, nth } => {
                            if armed.load(Ordering::SeqCst)
                                && op.matches(&request_line, &head)
                                && seen.fetch_add(1, Ordering::SeqCst) + 1 >= *nth
                            {
                                counter.fetch_add(1, Ordering::SeqCst);
                                None
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                        // A request without a body (a health check) cannot be slow in it.
                        Fault::SlowBody { .. } if length == 0 => Some(Duration::ZERO),
                        Fault::SlowBody { every, delay } => {
                            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                            if n.is_multiple_of(*every) {
                                counter.fetch_add(1, Ordering::SeqCst);
                                Some(*delay)
                            } else {
                                Some(Duration::ZERO)
                            }
                        }
                    };
                    let Some(stall) = stall else {
                        if let Fault::S3 { .. } = fault {
                            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>";
                            let _ = write!(
                                client,
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            return;
                        }
                        let body = r#"{"error_code": "INTERNAL_ERROR", "message": "injected by the test proxy"}"#;
                        let _ = write!(
                            client,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    };
                    // Forward with `Connection: close`, so the reply ends at EOF.
                    let mut forwarded = String::new();
                    for line in head[..head_end].split("\r\n").filter(|l| !l.is_empty()) {
                        if !line.to_ascii_lowercase().starts_with("connection:") {
                            forwarded.push_str(line);
                            forwarded.push_str("\r\n");
                        }
                    }
                    forwarded.push_str("Connection: close\r\n\r\n");
                    let Ok(mut server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    let _ = server.write_all(forwarded.as_bytes());
                    if !stall.is_zero() {
                        let _ = server.flush();
                        std::thread::sleep(stall);
                    }
                    let _ = server.write_all(&buf[head_end..]);
                    let mut reply = Vec::new();
                    let _ = server.read_to_end(&mut reply);
                    if lose_reply {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = client.write_all(&reply);
                });
            }
        });
        FaultProxy {
            uri,
            injected,
            armed,
        }
    }
}

/// The Python of the serving-clients venv (tritonclient, kserve, schemathesis, pyarrow).
pub fn serve_python() -> PathBuf {
    tool(
        "KILN_TEST_SERVE_PYTHON",
        ".cache/serve-venv/bin/python",
        "make test-deps",
    )
}

/// One HTTP/1.1 request on a fresh connection: `(status, body)`. `None` when the
/// server refused the connection or closed it without an answer.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    Some((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_string()
        },
    ))
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// Percent-encodes a query-string value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub mod manifests;
mod monitoring;
mod routing;
mod serving;
pub use monitoring::*;
pub use routing::*;
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
