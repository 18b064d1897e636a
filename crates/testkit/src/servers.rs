//! Real servers the tests start on loopback and stop when dropped: an S3-protocol
//! server (s3s-fs) and an MLflow tracking server.

use super::*;

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

/// The `mlflow` command of the test venv (`mlflow[auth]`, pinned in scripts/deps/requirements-mlflow.in).
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
