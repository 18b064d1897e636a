//! A model to serve and the kiln-serve process: one pipeline run per test binary (the
//! Adult example, few epochs), kiln-serve on free loopback ports, request helpers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{bin, free_port, http_request, run, serve_python, stderr};

pub const MODEL: &str = "adult-income";

/// One pipeline run shared by every test of this binary.
pub struct Pipeline {
    pub run: PathBuf,
    pub registry: PathBuf,
    /// The prepared test rows' inputs, as V1 records.
    pub rows: Vec<Value>,
}

pub fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let run_dir = dir.join("runs/adult");
        // The Adult example with one derived feature: capital-loss's slot reads
        // `capital_net` = capital-gain − capital-loss, which the server computes from
        // the raw fields of each request (the inputs stay the 12 raw columns). The
        // example's expectation suite pins the table's exact columns, so it is off here.
        let out = run(crate::adult_command(&bin("kiln"), Some("run"), &run_dir).args([
            "--set",
            "train.epochs=4",
            "-q",
            "--set",
            r#"transform.derived=[{name: capital_net, expr: '"capital-gain" - "capital-loss"'}]"#,
            "--set",
            "transform.numeric.4={column: capital_net, standardize: true}",
            "--set",
            "validation=null",
        ]));
        assert!(out.status.success(), "kiln run failed: {}", stderr(&out));
        let rows = v1_rows(&run_dir);
        Pipeline {
            registry: dir.join("runs/registry"),
            run: run_dir,
            rows,
        }
    })
}

/// A run's prepared test rows as V1 records: the columns the trained bundle takes, in
/// test order (`null` where a value is missing).
pub fn v1_rows(run_dir: &Path) -> Vec<Value> {
    let script = "import json, sys, pyarrow.parquet as pq\nrows = pq.read_table(sys.argv[1]).to_pylist()\nprint(json.dumps(rows, default=str))";
    let out = run(Command::new(serve_python())
        .args(["-c", script])
        .arg(run_dir.join("prepare/test.parquet")));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("rows");
    let metadata: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("train/model/metadata.json")).expect("metadata"),
    )
    .expect("metadata JSON");
    let inputs: Vec<String> = metadata["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect();
    for row in &mut rows {
        let record = row.as_object_mut().expect("record");
        record.retain(|k, _| inputs.contains(k));
    }
    rows
}

/// The shared pipeline's registry with a second version of the model (a second
/// `kiln run`, 2 epochs, into the same registry): version 1 and version 2.
pub fn two_versions() -> &'static Path {
    static REGISTRY: OnceLock<PathBuf> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let p = pipeline();
        kiln_run(&p.run.with_file_name("adult-second"), 2, None);
        assert!(
            p.registry
                .join(MODEL)
                .join("versions/2/version.json")
                .exists(),
            "the second run registered version 2"
        );
        p.registry.clone()
    })
}

/// `kiln run` of the Adult example (registering in MLflow when a tracking URI is given).
pub fn kiln_run(run_dir: &Path, epochs: u32, mlflow: Option<&str>) {
    kiln_run_with(run_dir, epochs, mlflow, &[]);
}

/// [`kiln_run`] with more environment (`KILN_SIGNING_KEY`, ...).
pub fn kiln_run_with(run_dir: &Path, epochs: u32, mlflow: Option<&str>, env: &[(&str, &Path)]) {
    let out = run(crate::adult_command(&bin("kiln"), Some("run"), run_dir)
        .args(["--set", &format!("train.epochs={epochs}"), "-q"])
        .env("MLFLOW_TRACKING_URI", mlflow.unwrap_or(""))
        .envs(env.iter().copied()));
    assert!(out.status.success(), "kiln run failed: {}", stderr(&out));
}

/// A kiln-serve process on free loopback ports. Killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub http: String,
    pub grpc_port: u16,
    /// Health and `/metrics` (`host:port`).
    pub admin: String,
    log: PathBuf,
}

impl Server {
    /// The model `kiln run` registered locally, by alias.
    pub fn start(extra: &[&str], env: &[(&'static str, String)]) -> Server {
        let p = pipeline();
        let registry = p.registry.to_str().expect("path").to_string();
        let model = format!("{MODEL}@staging");
        let mut args = vec!["--model", &model, "--registry", &registry];
        args.extend_from_slice(extra);
        Server::launch(&args, env)
    }

    pub fn launch(args: &[&str], env: &[(&'static str, String)]) -> Server {
        Server::launch_with(|http, grpc, admin| {
            let mut cmd = Command::new(bin("kiln-serve"));
            cmd.args(["--http", http, "--grpc", grpc, "--admin", admin])
                .args(args)
                .env_remove("MLFLOW_TRACKING_URI")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            cmd
        })
    }

    /// A server started by the command `build` makes from the HTTP, gRPC and admin
    /// addresses (free loopback ports): kiln-serve itself, or a container running it.
    /// Waits until it reports ready.
    pub fn launch_with(build: impl FnOnce(&str, &str, &str) -> Command) -> Server {
        let (http_port, grpc_port, admin_port) = (free_port(), free_port(), free_port());
        let log = tempfile::NamedTempFile::new()
            .expect("log file")
            .into_temp_path()
            .keep()
            .expect("keep");
        let http = format!("127.0.0.1:{http_port}");
        let admin = format!("127.0.0.1:{admin_port}");
        let child = build(&http, &format!("127.0.0.1:{grpc_port}"), &admin)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start kiln-serve");
        let server = Server {
            child: Some(child),
            http,
            grpc_port,
            admin,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.admin_get("/v2/health/ready").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "kiln-serve did not become ready: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_request(&self.http, "GET", path, b"", Duration::from_secs(10))
    }

    /// A GET on the admin listener (health, `/metrics`).
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        http_request(&self.admin, "GET", path, b"", Duration::from_secs(10))
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        self.admin_get("/metrics").expect("metrics").1
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Option<(u16, String)> {
        http_request(&self.http, "POST", path, body, Duration::from_secs(30))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "kiln-serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn v1_body(rows: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "instances": rows })).expect("JSON")
}

pub fn predict_path() -> String {
    format!("/v1/models/{MODEL}:predict")
}

/// Shifted rows: every numeric input far outside training, unseen categories.
pub fn shifted(row: &Value) -> Value {
    let mut row = row.clone();
    for (column, value) in [
        ("age", json!(95)),
        ("hours-per-week", json!(99)),
        ("capital-gain", json!(99_999)),
        ("capital-loss", json!(4_000)),
        ("education-num", json!(1)),
        ("workclass", json!("Space-agency")),
        ("occupation", json!("Astronaut")),
        ("native-country", json!("Atlantis")),
    ] {
        row[column] = value;
    }
    row
}
