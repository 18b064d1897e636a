//! The canary's parts on loopback: two kiln-serve processes from a registry with two
//! versions, HAProxy in front (a fault proxy before the canary when asked), Prometheus
//! scraping them, oha for load, and `kiln rollout run` with the laptop settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testkit::{
    FaultProxy, Haproxy, MODEL, Prometheus, Server, bin, free_port, oha_bin, pipeline,
    predict_path, run, stderr, two_versions, v1_body, workspace_root,
};
use serde_json::Value;

pub fn copy_dir(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg("-r").arg(from).arg(to));
    assert!(out.status.success(), "cp: {}", stderr(&out));
}

pub fn alias(registry: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(registry.join(MODEL).join("aliases.json")).ok()?;
    let aliases: Value = serde_json::from_str(&text).expect("aliases.json");
    aliases["aliases"][name].as_u64()
}

/// What sits between HAProxy and the canary.
pub enum Front {
    Direct,
    /// 500 for every inference request once armed.
    Failing,
    /// Every inference request's body 400 ms late.
    Slow,
    /// No canary at all: a closed port.
    Absent,
}

pub struct Canary {
    pub dir: tempfile::TempDir,
    pub registry: PathBuf,
    pub haproxy: Haproxy,
    pub prometheus: Option<Prometheus>,
    pub proxy: Option<FaultProxy>,
    _servers: Vec<Server>,
}

impl Canary {
    pub fn start(front: Front) -> Canary {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        copy_dir(two_versions(), &registry);
        let out = run(Command::new(bin("kiln"))
            .args([
                "promote",
                MODEL,
                "--version",
                "1",
                "--alias",
                "production",
                "--registry",
            ])
            .arg(&registry)
            .env_remove("MLFLOW_TRACKING_URI"));
        assert!(out.status.success(), "promote: {}", stderr(&out));
        let registry_arg = registry.to_str().unwrap().to_string();
        let serve = |version: &str| {
            let model = format!("{MODEL}/{version}");
            Server::launch(
                &[
                    "--model",
                    &model,
                    "--registry",
                    &registry_arg,
                    "--no-grpc",
                    "--threads",
                    "1",
                ],
                &[],
            )
        };
        let stable = serve("1");
        let mut servers = vec![];
        let (canary_addr, proxy) = match front {
            Front::Absent => (format!("127.0.0.1:{}", free_port()), None),
            front => {
                let canary = serve("2");
                let proxy = match front {
                    Front::Failing => Some(FaultProxy::armable(&canary.http, ":predict")),
                    Front::Slow => Some(FaultProxy::slow_bodies(
                        &canary.http,
                        1,
                        Duration::from_millis(400),
                    )),
                    _ => None,
                };
                let addr = proxy.as_ref().map_or(canary.http.clone(), |p| {
                    p.uri.trim_start_matches("http://").to_string()
                });
                servers.push(canary);
                (addr, proxy)
            }
        };
        let haproxy = Haproxy::start(&stable.http, &canary_addr, 0);
        // Until its first health check HAProxy counts a server as up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while ["", "INI"].contains(
            &haproxy
                .stat("kiln", "canary", "check_status")
                .trim_start_matches("* "),
        ) {
            assert!(
                Instant::now() < deadline,
                "HAProxy never checked the canary"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut kiln_targets = vec![stable.admin.clone()];
        kiln_targets.extend(servers.iter().map(|s| s.admin.clone()));
        servers.push(stable);
        let prometheus = Prometheus::start(
            &[
                ("kiln-serve", kiln_targets),
                ("haproxy", vec![haproxy.metrics.clone()]),
            ],
            "1s",
            &[],
        );
        Canary {
            dir,
            registry,
            haproxy,
            prometheus: Some(prometheus),
            proxy,
            _servers: servers,
        }
    }

    /// oha at `rate` requests/s through HAProxy for `seconds`.
    /// Stopped when the returned guard drops, even if the test fails first.
    pub fn load(&self, rate: u32, seconds: u32) -> Load {
        let body = self.dir.path().join("body.json");
        std::fs::write(&body, v1_body(&pipeline().rows[..4])).unwrap();
        Command::new(oha_bin())
            .args([
                "-z",
                &format!("{seconds}s"),
                "-q",
                &rate.to_string(),
                "-c",
                "16",
            ])
            .args(["--latency-correction", "--no-tui", "-m", "POST"])
            .args(["-H", "Content-Type: application/json", "-D"])
            .arg(&body)
            .arg(format!("http://{}{}", self.haproxy.url, predict_path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oha")
            .into()
    }

    /// Waits until Prometheus has scraped HAProxy's count of the stable version's
    /// responses twice, so the first check has a window to measure.
    pub fn warm(&self) {
        let prometheus = self.prometheus.as_ref().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        while prometheus
            .query(r#"increase(haproxy_server_http_responses_total{proxy="kiln",server="stable",code="2xx"}[4s]) > 0"#)
            .is_empty()
        {
            assert!(Instant::now() < deadline, "Prometheus never saw the load");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `kiln rollout run` of version 2 with the laptop settings, checks every 3 s;
    /// `overrides` replace flags by name.
    pub fn rollout(&self, prometheus: &str, overrides: &[(&str, &str)]) -> Child {
        self.rollout_tracked(prometheus, overrides, None)
    }

    /// As [`Canary::rollout`], registry and tracking in MLflow when `mlflow` is given.
    pub fn rollout_tracked(
        &self,
        prometheus: &str,
        overrides: &[(&str, &str)],
        mlflow: Option<&str>,
    ) -> Child {
        let mut flags = vec![
            ("--interval", "3s"),
            ("--window", "4s"),
            ("--promote-after", "3"),
            ("--ready-timeout", "15s"),
        ];
        for (flag, value) in overrides {
            flags.retain(|(f, _)| f != flag);
            flags.push((flag, value));
        }
        Command::new(bin("kiln"))
            .args(["rollout", "run", MODEL, "--version", "2", "--registry"])
            .arg(&self.registry)
            .arg("--settings")
            .arg(workspace_root().join("examples/rollout/local.yaml"))
            .args(flags.iter().flat_map(|(f, v)| [*f, *v]))
            .args(["--prometheus", prometheus])
            .args([
                "--router",
                "haproxy",
                "--haproxy-admin",
                &self.haproxy.admin,
            ])
            .arg("--out")
            .arg(self.report_path())
            .env("MLFLOW_TRACKING_URI", mlflow.unwrap_or(""))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiln rollout")
    }

    pub fn prometheus_url(&self) -> String {
        self.prometheus.as_ref().expect("running").url.clone()
    }

    pub fn report_path(&self) -> PathBuf {
        self.dir.path().join("rollout.json")
    }

    pub fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).expect("rollout.json written");
        serde_json::from_str(&text).expect("rollout.json is JSON")
    }

    /// Waits up to 20 s for the rollout to give the canary `weight`.
    pub fn wait_canary_weight(&self, weight: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.haproxy.weight("canary") != weight {
            assert!(
                Instant::now() < deadline,
                "the canary never got weight {weight}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn weights(&self) -> (u32, u32) {
        (self.haproxy.weight("stable"), self.haproxy.weight("canary"))
    }
}

pub fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("kiln rollout");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn checks(report: &Value) -> &Vec<Value> {
    report["checks"].as_array().expect("checks")
}

/// Every check names both versions' numbers, as the report promises.
pub fn assert_checks_have_numbers(report: &Value) {
    for check in checks(report) {
        for role in ["canary", "stable"] {
            let m = &check[role];
            assert!(m["version"].is_string(), "{check}");
            for field in ["requests", "errors", "error_ratio", "p99_seconds"] {
                assert!(m.get(field).is_some(), "{role}.{field} missing in {check}");
            }
        }
        assert!(
            check["verdict"].is_string() && check["at"].is_string(),
            "{check}"
        );
    }
}

/// oha running; killed when dropped.
pub struct Load(Child);

impl From<Child> for Load {
    fn from(child: Child) -> Load {
        Load(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The checks the analysis failed.
pub fn failing(report: &Value) -> Vec<&Value> {
    checks(report)
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect()
}
