//! A real canary on loopback: HAProxy in front of two kiln-serve processes (version 1
//! stable, version 2 canary), Prometheus scraping HAProxy's exporter and both servers,
//! open-loop traffic from oha through HAProxy, and `kiln rollout run` deciding. Each
//! scenario asserts the decision, the traffic split HAProxy ends with, the registry
//! alias, and the checks in `rollout.json`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testkit::{
    FaultProxy, Haproxy, MODEL, MlflowServer, Prometheus, Server, bin, free_port, http_request,
    oha_bin, pipeline, predict_path, run, stderr, two_versions, v1_body, workspace_root,
};
use serde_json::Value;

fn copy_dir(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg("-r").arg(from).arg(to));
    assert!(out.status.success(), "cp: {}", stderr(&out));
}

fn alias(registry: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(registry.join(MODEL).join("aliases.json")).ok()?;
    let aliases: Value = serde_json::from_str(&text).expect("aliases.json");
    aliases["aliases"][name].as_u64()
}

/// What sits between HAProxy and the canary.
enum Front {
    Direct,
    /// 500 for every inference request once armed.
    Failing,
    /// Every inference request's body 400 ms late.
    Slow,
    /// No canary at all: a closed port.
    Absent,
}

struct Canary {
    dir: tempfile::TempDir,
    registry: PathBuf,
    haproxy: Haproxy,
    prometheus: Option<Prometheus>,
    proxy: Option<FaultProxy>,
    _servers: Vec<Server>,
}

impl Canary {
    fn start(front: Front) -> Canary {
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
        let mut kiln_targets = vec![stable.http.clone()];
        kiln_targets.extend(servers.iter().map(|s| s.http.clone()));
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
    fn load(&self, rate: u32, seconds: u32) -> Child {
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
    }

    /// Waits until Prometheus has scraped HAProxy's count of the stable version's
    /// responses twice, so the first check has a window to measure.
    fn warm(&self) {
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
    fn rollout(&self, prometheus: &str, overrides: &[(&str, &str)]) -> Child {
        self.rollout_tracked(prometheus, overrides, None)
    }

    /// As [`Canary::rollout`], registry and tracking in MLflow when `mlflow` is given.
    fn rollout_tracked(
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

    fn prometheus_url(&self) -> String {
        self.prometheus.as_ref().expect("running").url.clone()
    }

    fn report_path(&self) -> PathBuf {
        self.dir.path().join("rollout.json")
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).expect("rollout.json written");
        serde_json::from_str(&text).expect("rollout.json is JSON")
    }

    fn weights(&self) -> (u32, u32) {
        (self.haproxy.weight("stable"), self.haproxy.weight("canary"))
    }
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("kiln rollout");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn checks(report: &Value) -> &Vec<Value> {
    report["checks"].as_array().expect("checks")
}

/// Every check names both versions' numbers, as the report promises.
fn assert_checks_have_numbers(report: &Value) {
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

#[test]
fn a_healthy_canary_is_promoted_after_the_passing_checks() {
    let c = Canary::start(Front::Direct);
    let load = c.load(100, 30);
    c.warm();
    let (code, log) = finish(c.rollout(&c.prometheus_url(), &[]));
    drop(load);
    assert_eq!(code, 0, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "promoted", "{report:#}");
    assert_eq!(report["decision"]["exit_code"], 0);
    assert_eq!(report["stable_version"], "1");
    assert_eq!(report["canary_version"], "2");
    let checks = checks(&report);
    assert_eq!(checks.len(), 3, "three passing checks promote: {report:#}");
    for check in checks {
        assert_eq!(check["verdict"], "pass", "{check}");
        let canary = &check["canary"];
        assert!(canary["requests"].as_f64().unwrap() >= 20.0, "{check}");
        assert_eq!(canary["error_ratio"], 0.0, "{check}");
        assert!(canary["p99_seconds"].as_f64().unwrap() < 0.3, "{check}");
        // About 9 in 10 requests went to the stable version.
        let (s, k) = (
            check["stable"]["requests"].as_f64().unwrap(),
            canary["requests"].as_f64().unwrap(),
        );
        assert!(
            (0.05..0.2).contains(&(k / (s + k))),
            "canary share {} in {check}",
            k / (s + k)
        );
    }
    assert_checks_have_numbers(&report);
    let traffic: Vec<u64> = report["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["canary_percent"].as_u64().unwrap())
        .collect();
    assert_eq!(traffic, vec![10, 100]);
    assert_eq!(
        c.weights(),
        (0, 100),
        "HAProxy sends everything to the canary"
    );
    assert_eq!(alias(&c.registry, "production"), Some(2));
    assert_eq!(report["alias_change"]["from"], "1");
    assert_eq!(report["alias_change"]["to"], "2");

    // `kiln rollout revert` (what `make rollback` runs): traffic and alias back on 1.
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "revert", MODEL, "--registry"])
        .arg(&c.registry)
        .args(["--router", "haproxy", "--haproxy-admin", &c.haproxy.admin])
        .env_remove("MLFLOW_TRACKING_URI"));
    assert!(out.status.success(), "revert: {}", stderr(&out));
    assert_eq!(c.weights(), (100, 0));
    assert_eq!(alias(&c.registry, "production"), Some(1));
}

#[test]
fn a_canary_answering_5xx_is_rolled_back_and_the_alias_stays() {
    let c = Canary::start(Front::Failing);
    let load = c.load(100, 40);
    c.warm();
    let rollout = c.rollout(&c.prometheus_url(), &[]);
    // The fault starts once the canary takes its 10 %.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.haproxy.weight("canary") != 10 {
        assert!(Instant::now() < deadline, "the canary never got traffic");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let requests_at = |h: &Haproxy| {
        h.stat("kiln", "FRONTEND", "req_tot")
            .parse::<f64>()
            .unwrap()
    };
    let before = requests_at(&c.haproxy);
    let fault_start = Instant::now();
    c.proxy.as_ref().unwrap().arm();
    while c.haproxy.weight("canary") != 0 {
        assert!(
            fault_start.elapsed() < Duration::from_secs(30),
            "never rolled back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let to_rollback = fault_start.elapsed();
    let failed = c
        .proxy
        .as_ref()
        .unwrap()
        .injected
        .load(std::sync::atomic::Ordering::SeqCst) as f64;
    let total = requests_at(&c.haproxy) - before;
    let (code, log) = finish(rollout);
    drop(load);
    // The figures the issue asks for, in the test's output (`--nocapture`).
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "fault to rollback: {:.1} s; {failed} of {total} requests failed meanwhile ({:.1} %)",
            to_rollback.as_secs_f64(),
            100.0 * failed / total
        );
    }
    assert_eq!(code, 3, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "rolled_back", "{report:#}");
    let failing: Vec<&Value> = checks(&report)
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert_eq!(failing.len(), 2, "max_failures 2: {report:#}");
    for check in &failing {
        assert!(
            check["canary"]["error_ratio"].as_f64().unwrap() > 0.01,
            "{check}"
        );
        let reasons = check["reasons"].to_string();
        assert!(reasons.contains("max_error_ratio"), "{reasons}");
        assert!(
            check["stable"]["error_ratio"].as_f64().unwrap() < 0.01,
            "{check}"
        );
    }
    assert_checks_have_numbers(&report);
    assert_eq!(
        c.weights(),
        (100, 0),
        "all traffic back on the stable version"
    );
    assert_eq!(alias(&c.registry, "production"), Some(1));
    assert!(
        report["alias_change"].is_null(),
        "the alias never left version 1"
    );
    // Two 3 s checks must see the errors; the share that failed is the canary's 10 %.
    assert!(to_rollback < Duration::from_secs(12), "{to_rollback:?}");
    assert!(failed / total < 0.15, "{failed} of {total}");
}

#[test]
fn a_slow_canary_is_rolled_back_on_p99() {
    let c = Canary::start(Front::Slow);
    let load = c.load(100, 30);
    c.warm();
    let (code, log) = finish(c.rollout(&c.prometheus_url(), &[]));
    drop(load);
    assert_eq!(code, 3, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "rolled_back", "{report:#}");
    let failing: Vec<&Value> = checks(&report)
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert_eq!(failing.len(), 2, "{report:#}");
    for check in &failing {
        assert!(
            check["canary"]["p99_seconds"].as_f64().unwrap() > 0.3,
            "{check}"
        );
        assert!(
            check["stable"]["p99_seconds"].as_f64().unwrap() < 0.3,
            "{check}"
        );
        assert_eq!(
            check["canary"]["error_ratio"], 0.0,
            "slow, not failing: {check}"
        );
        assert!(
            check["reasons"].to_string().contains("max_p99_seconds"),
            "{check}"
        );
    }
    assert_eq!(c.weights(), (100, 0));
    assert_eq!(alias(&c.registry, "production"), Some(1));
}

#[test]
fn prometheus_unreachable_halts_with_exit_75_and_never_promotes() {
    // Unreachable from the start: no traffic moves at all.
    let mut c = Canary::start(Front::Direct);
    let closed = format!("127.0.0.1:{}", free_port());
    let (code, log) = finish(c.rollout(&closed, &[]));
    assert_eq!(code, 75, "{log}");
    assert!(log.contains("unreachable"), "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "halted");
    assert_eq!(report["decision"]["exit_code"], 75);
    assert!(
        report["traffic"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(c.weights(), (100, 0));

    // Lost during the analysis: halted, and the canary's share back to 0.
    let load = c.load(50, 30);
    c.warm();
    let rollout = c.rollout(&c.prometheus_url(), &[("--promote-after", "50")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.haproxy.weight("canary") != 10 {
        assert!(Instant::now() < deadline, "the canary never got traffic");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(4));
    c.prometheus = None;
    let (code, log) = finish(rollout);
    drop(load);
    assert_eq!(code, 75, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "halted", "{report:#}");
    assert!(
        report["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot read its metrics")
    );
    assert_eq!(c.weights(), (100, 0), "an unwatched canary gets no traffic");
    assert_eq!(alias(&c.registry, "production"), Some(1));
}

#[test]
fn a_canary_without_traffic_is_halted_not_promoted() {
    let c = Canary::start(Front::Direct);
    // No load at all: every check lacks data.
    let (code, log) = finish(c.rollout(&c.prometheus_url(), &[]));
    assert_eq!(code, 3, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "halted", "{report:#}");
    let checks = checks(&report);
    assert_eq!(checks.len(), 3, "max_inconclusive 3: {report:#}");
    for check in checks {
        assert_eq!(check["verdict"], "inconclusive");
        assert!(
            check["reasons"]
                .to_string()
                .contains("under min_requests 20"),
            "{check}"
        );
    }
    assert_eq!(c.weights(), (100, 0));
    assert_eq!(alias(&c.registry, "production"), Some(1));
}

#[test]
fn a_canary_that_never_becomes_ready_is_rolled_back() {
    let c = Canary::start(Front::Absent);
    let (code, log) = finish(c.rollout(&c.prometheus_url(), &[("--ready-timeout", "3s")]));
    assert_eq!(code, 3, "{log}");
    let report = c.report();
    assert_eq!(report["decision"]["outcome"], "rolled_back", "{report:#}");
    assert!(
        report["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("not ready after 3s"),
        "{report:#}"
    );
    assert!(checks(&report).is_empty());
    assert_eq!(c.weights(), (100, 0));
    assert_eq!(alias(&c.registry, "production"), Some(1));
}

#[test]
fn bad_settings_are_one_line_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("bad.yaml");
    std::fs::write(&settings, "thresholds:\n  max_error_ratio: lots\n").unwrap();
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "run", MODEL, "--version", "2", "--settings"])
        .arg(&settings)
        .args(["--router", "haproxy", "--haproxy-admin", "127.0.0.1:1"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml: thresholds.max_error_ratio"),
        "{err}"
    );
    let out = run(Command::new(bin("kiln")).args([
        "rollout",
        "run",
        MODEL,
        "--version",
        "2",
        "--router",
        "haproxy",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--router haproxy needs --haproxy-admin"),
        "{}",
        stderr(&out)
    );
}

/// One MLflow REST call on loopback; the JSON answer.
fn mlflow(server: &MlflowServer, method: &str, path: &str, body: Value) -> Value {
    let addr = server.uri.trim_start_matches("http://");
    let (status, text) = http_request(
        addr,
        method,
        &format!("/api/2.0/mlflow/{path}"),
        body.to_string().as_bytes(),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|| panic!("MLflow {path}: no answer"));
    assert_eq!(status, 200, "MLflow {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn a_rollout_with_mlflow_moves_its_alias_and_is_logged_as_a_run() {
    let server = MlflowServer::start(false);
    mlflow(
        &server,
        "POST",
        "registered-models/create",
        serde_json::json!({"name": MODEL}),
    );
    for n in 1..=2 {
        let source = format!("s3://kiln-test/{MODEL}/{n}");
        mlflow(
            &server,
            "POST",
            "model-versions/create",
            serde_json::json!({"name": MODEL, "source": source}),
        );
    }
    mlflow(
        &server,
        "POST",
        "registered-models/alias",
        serde_json::json!({"name": MODEL, "alias": "production", "version": "1"}),
    );
    let c = Canary::start(Front::Direct);
    let load = c.load(100, 30);
    c.warm();
    let (code, log) = finish(c.rollout_tracked(&c.prometheus_url(), &[], Some(&server.uri)));
    drop(load);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("logged to MLflow run"), "{log}");
    let alias = mlflow(
        &server,
        "GET",
        &format!("registered-models/alias?name={MODEL}&alias=production"),
        Value::Null,
    );
    assert_eq!(alias["model_version"]["version"], "2");
    let version = mlflow(
        &server,
        "GET",
        &format!("model-versions/get?name={MODEL}&version=2"),
        Value::Null,
    );
    let tags = version["model_version"]["tags"].to_string();
    assert!(
        tags.contains(r#""key":"kiln.rollout","value":"promoted""#),
        "{tags}"
    );
    let experiment = mlflow(
        &server,
        "GET",
        "experiments/get-by-name?experiment_name=kiln-rollouts",
        Value::Null,
    );
    let id = experiment["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = mlflow(
        &server,
        "POST",
        "runs/search",
        serde_json::json!({"experiment_ids": [id]}),
    );
    let run = &runs["runs"][0];
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    let data = run["data"].to_string();
    assert!(
        data.contains(r#""key":"kiln.rollout.outcome","value":"promoted""#),
        "{data}"
    );
    assert!(
        data.contains(r#""key":"canary_version","value":"2""#),
        "{data}"
    );
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let history = mlflow(
        &server,
        "GET",
        &format!("metrics/get-history?run_id={run_id}&metric_key=canary_requests"),
        Value::Null,
    );
    assert_eq!(
        history["metrics"].as_array().map(Vec::len),
        Some(3),
        "{history}"
    );
    let artifacts = mlflow(
        &server,
        "GET",
        &format!("artifacts/list?run_id={run_id}"),
        Value::Null,
    );
    assert!(
        artifacts.to_string().contains("rollout.json"),
        "{artifacts}"
    );
}
