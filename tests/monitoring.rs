//! The monitoring stack end to end, with real processes on loopback: kiln-serve behind
//! a fault proxy, oha's open-loop load, Prometheus evaluating the committed SLO and
//! health rules, Alertmanager with the committed routing delivering to a webhook this
//! test runs, `kiln slo check`, and every query of the committed dashboards.
//!
//! Two Prometheus servers scrape the same kiln-serve. One evaluates the SLO rules
//! generated for a 12-hour period (`--windows`, Sloth's AlertWindows with every window
//! scaled by 1/60: page at 14.4x over 1 m and 5 s, ...), so budgets burn and alerts fire
//! in minutes; it alerts through Alertmanager and `kiln slo check` reads it. The other
//! evaluates the committed 30-day rules, and every query of the committed dashboards
//! runs against it: exactly what ships.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kiln_testkit::{
    Alertmanager, FaultProxy, Prometheus, Server, Webhook, bin, oha_bin, pipeline, predict_path,
    run, shifted, stderr, stdout, v1_body, workspace_root,
};
use serde_json::Value;

/// GPU and pipeline series in the shapes dcgm-exporter and Argo's template metrics
/// expose them (no GPU node or Argo controller runs here), growing at every scrape.
fn fixture_exporter() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let scrapes = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            let mut text = String::new();
            for (gpu, util) in [(0, 97.0), (1, 41.0)] {
                let labels =
                    format!("gpu=\"{gpu}\",Hostname=\"g5-node-a\",modelName=\"NVIDIA A10G\"");
                text.push_str(&format!(
                    "DCGM_FI_DEV_GPU_UTIL{{{labels}}} {util}\nDCGM_FI_DEV_FB_USED{{{labels}}} 10240\nDCGM_FI_DEV_POWER_USAGE{{{labels}}} 180.5\nDCGM_FI_DEV_GPU_TEMP{{{labels}}} 61\n"
                ));
            }
            for (step, exit_code) in [
                ("prepare", "0"),
                ("train", "0"),
                ("fairness", "3"),
                ("register", "75"),
            ] {
                let status = if exit_code == "0" {
                    "Succeeded"
                } else {
                    "Failed"
                };
                text.push_str(&format!(
                    "argo_workflows_kiln_step_results_total{{step=\"{step}\",status=\"{status}\",exit_code=\"{exit_code}\"}} {n}\n"
                ));
                let mut cumulative = 0;
                for le in ["10", "30", "60", "120", "300", "+Inf"] {
                    cumulative += if le == "60" { n } else { 0 };
                    text.push_str(&format!(
                        "argo_workflows_kiln_step_duration_seconds_bucket{{step=\"{step}\",status=\"{status}\",le=\"{le}\"}} {cumulative}\n"
                    ));
                }
                text.push_str(&format!(
                    "argo_workflows_kiln_step_duration_seconds_sum{{step=\"{step}\",status=\"{status}\"}} {}\nargo_workflows_kiln_step_duration_seconds_count{{step=\"{step}\",status=\"{status}\"}} {n}\n",
                    n * 45
                ));
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    addr
}

fn firing(prometheus: &Prometheus, alert: &str, severity: &str) -> bool {
    let Some((200, body)) = kiln_testkit::http_request(
        &prometheus.url,
        "GET",
        "/api/v1/alerts",
        b"",
        Duration::from_secs(5),
    ) else {
        return false;
    };
    let value: Value = serde_json::from_str(&body).unwrap_or_default();
    value["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| {
            a["labels"]["alertname"] == alert
                && a["labels"]["severity"] == severity
                && a["state"] == "firing"
        })
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

/// `kiln slo check` on the committed spec against `prometheus`, with `extra` flags.
fn slo_check(prometheus: &Prometheus, extra: &[&std::ffi::OsStr]) -> std::process::Output {
    run(Command::new(bin("kiln"))
        .args(["slo", "check", "--spec"])
        .arg(workspace_root().join("monitoring/slos.yaml"))
        .args(["--prometheus", &prometheus.url])
        .args(extra))
}

/// A 12-hour SLO period with Sloth's 30-day windows scaled by 1/60 (same factors).
const SHORT_WINDOWS: &str = "apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 12h
  page:
    quick: {errorBudgetPercent: 2, shortWindow: 5s, longWindow: 1m}
    slow: {errorBudgetPercent: 5, shortWindow: 30s, longWindow: 6m}
  ticket:
    quick: {errorBudgetPercent: 10, shortWindow: 2m, longWindow: 24m}
    slow: {errorBudgetPercent: 10, shortWindow: 6m, longWindow: 72m}
";

fn scalar(prometheus: &Prometheus, promql: &str) -> Option<f64> {
    prometheus
        .query(promql)
        .first()
        .and_then(|s| s["value"][1].as_str()?.parse().ok())
}

#[test]
fn a_fault_burns_the_budget_pages_through_alertmanager_and_fails_the_slo_check() {
    let root = workspace_root();
    let p = pipeline();
    // Room for four request bodies in memory, so the slowed requests crowd out the rest
    // (503s), and a short drift window, so a few hundred shifted rows fill it.
    let rows: Vec<Value> = p.rows[..10].iter().map(shifted).collect();
    let request = v1_body(&rows);
    let room = (4 * request.len().div_ceil(1024) * 1024).to_string();
    let server = Server::start(
        &[
            "--max-inflight-bytes",
            &room,
            "--drift-window",
            "200",
            "--drift-min-rows",
            "50",
        ],
        &[],
    );

    let webhook = Webhook::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root.join("monitoring/alertmanager/alertmanager.yml"))
        .unwrap()
        .replace("http://pager.example.invalid", &webhook.url)
        .replace("http://tickets.example.invalid", &webhook.url);
    let config_path = tmp.path().join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap();
    let alertmanager = Alertmanager::start(&config_path);

    // The short period's rules, generated by the same command the committed ones were.
    let windows = tmp.path().join("windows-12h.yaml");
    std::fs::write(&windows, SHORT_WINDOWS).unwrap();
    let short_rules = tmp.path().join("slos-12h.rules.yml");
    let generate = run(Command::new(bin("kiln"))
        .args(["slo", "generate", "--spec"])
        .arg(root.join("monitoring/slos.yaml"))
        .arg("--windows")
        .arg(&windows)
        .arg("--out")
        .arg(&short_rules));
    assert!(generate.status.success(), "{}", stderr(&generate));
    let exporter = fixture_exporter();
    let targets = [
        ("kiln-serve", vec![server.admin.clone()]),
        ("fixtures", vec![exporter]),
    ];
    let health = root.join("monitoring/rules/kiln-serve-health.rules.yml");
    let prometheus = Prometheus::start_alerting(
        &targets,
        "1s",
        &[short_rules, health.clone()],
        Some(&alertmanager.addr),
    );
    let shipped = Prometheus::start(
        &targets,
        "1s",
        &[
            root.join("monitoring/rules/kiln-serve-slos.rules.yml"),
            health,
        ],
    );
    for p in [&prometheus, &shipped] {
        wait_for("rules evaluated", Duration::from_secs(30), || {
            p.query("sloth_slo_info").len() == 5
        });
    }
    wait_for(
        "kiln-serve and the fixtures scraped",
        Duration::from_secs(30),
        || {
            prometheus.query("up == 1").len() == 2
                && scalar(&prometheus, "max(kiln_drifted_features_ratio)").is_some()
        },
    );
    // Before traffic there is no reading: NaN, no data, never a good 0.
    let before = scalar(&prometheus, "max(kiln_drifted_features_ratio)");
    assert!(
        before.is_some_and(f64::is_nan),
        "no drift reading before traffic: {before:?}"
    );

    // The fault: every 4th request's body reaches kiln-serve 400 ms late (over the
    // 300 ms objective), holding the memory it declared meanwhile (never a scoring
    // slot); requests beyond the memory limit are shed with 503. The rows are shifted
    // far from training.
    let proxy = FaultProxy::slow_bodies(&server.http, 4, Duration::from_millis(400));
    let body = tmp.path().join("body.json");
    std::fs::write(&body, &request).unwrap();
    let fault_start = Instant::now();
    let oha = Command::new(oha_bin())
        .args([
            "-z",
            "40s",
            "-q",
            "100",
            "-c",
            "32",
            "--latency-correction",
            "--disable-keepalive",
        ])
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "-m",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-D",
        ])
        .arg(&body)
        .arg(format!("{}{}", proxy.uri, predict_path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oha");

    let to_page = wait_for(
        "the error-budget page firing in Prometheus",
        Duration::from_secs(90),
        || {
            let done = firing(&prometheus, "KilnServeErrorBudgetBurn", "page");
            if !done && fault_start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "no page 30 s into the fault: requests {:?}; SLI {:?}; alerts {:?}; shed {:?}; injected {}",
                    prometheus.query("sum by (code) (kiln_requests_total)"),
                    prometheus.query("slo:sli_error:ratio_rate5s"),
                    prometheus.query("ALERTS"),
                    prometheus.query("kiln_shed_requests_total"),
                    proxy.injected.load(Ordering::SeqCst),
                );
            }
            done
        },
    );
    wait_for("the latency page firing", Duration::from_secs(60), || {
        firing(&prometheus, "KilnServeLatencyBudgetBurn", "page")
    });
    let delivered = |alert: &str| {
        webhook.received().iter().any(|(path, body)| {
            path == "/kiln/page"
                && body["status"] == "firing"
                && body["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["labels"]["alertname"] == alert)
        })
    };
    let to_delivery = wait_for(
        "Alertmanager delivering the page to the webhook",
        Duration::from_secs(60),
        || delivered("KilnServeErrorBudgetBurn"),
    );
    wait_for("the drift SLI rising", Duration::from_secs(60), || {
        scalar(
            &prometheus,
            "slo:sli_error:ratio_rate5s{sloth_id=\"kiln-serve-drift\"}",
        )
        .is_some_and(|v| v > 0.0)
    });
    // The ticket of the same SLO is inhibited by its page: never delivered as a ticket.
    assert!(
        !webhook
            .received()
            .iter()
            .any(|(path, body)| path == "/kiln/ticket"
                && body["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["labels"]["alertname"] == "KilnServeErrorBudgetBurn")),
        "the errors ticket was delivered although its page fires"
    );

    // `kiln slo check` reads the burned budgets and fails with exit 3.
    let report_path = tmp.path().join("check.json");
    let check = slo_check(
        &prometheus,
        &[
            "--windows".as_ref(),
            windows.as_os_str(),
            "--report".as_ref(),
            report_path.as_os_str(),
        ],
    );
    assert_eq!(
        check.status.code(),
        Some(3),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    assert!(
        stdout(&check).contains("(period 12h)"),
        "{}",
        stdout(&check)
    );
    assert!(
        stdout(&check).contains("FAILED: kiln-serve-errors: the page alert is firing"),
        "{}",
        stdout(&check)
    );
    assert!(
        stderr(&check).starts_with("error: SLO check failed: "),
        "{}",
        stderr(&check)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let errors = report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slo"] == "errors")
        .unwrap();
    assert!(
        errors["budget_remaining"].as_f64().unwrap() < 0.0,
        "{errors}"
    );
    assert!(
        errors["firing"]
            .as_array()
            .unwrap()
            .contains(&"page".into()),
        "{errors}"
    );
    let gpu = report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slo"] == "gpu")
        .unwrap();
    assert!(
        gpu["firing"].as_array().unwrap().is_empty() || gpu["sli"].is_number(),
        "{gpu}"
    );

    // Every query of every committed dashboard returns data from this Prometheus.
    let mut queries = 0;
    for name in ["kiln-serving", "kiln-slos", "kiln-pipeline", "kiln-gpu"] {
        let path = root.join(format!("monitoring/grafana/dashboards/{name}.json"));
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m")
                    .replace("$model", ".*")
                    .replace("$node", ".*");
                let result = shipped.query(&expr);
                let finite = result.iter().any(|s| {
                    s["value"][1]
                        .as_str()
                        .and_then(|v| v.parse::<f64>().ok())
                        .is_some_and(f64::is_finite)
                });
                assert!(
                    finite,
                    "{name}: panel `{}`: `{expr}` returned no data: {result:?}",
                    panel["title"]
                );
                queries += 1;
            }
        }
    }
    assert!(queries > 40, "{queries} queries");

    let out = oha.wait_with_output().expect("oha");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("oha JSON");
    let codes = summary["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let total: u64 = codes.values().filter_map(Value::as_u64).sum();
    let failed: u64 = codes
        .iter()
        .filter(|(c, _)| c.starts_with('5'))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    assert!(total > 1000, "{summary}");
    assert!(
        failed > 0 && proxy.injected.load(Ordering::SeqCst) > 0,
        "{codes:?}"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "fault start to page firing {:.1} s, page delivered {:.1} s later; {failed} of {total} requests 5xx ({:.1} %)",
            to_page.as_secs_f64(),
            to_delivery.as_secs_f64(),
            failed as f64 * 100.0 / total as f64
        );
    }
}

/// The throughput SLO's capacity check against a real kiln-serve: 100 requests/s for a
/// few seconds pass within 300 ms; the same load through a proxy that holds every
/// second body 400 ms fails on p99, with exit 3.
#[test]
fn the_throughput_probe_passes_a_healthy_server_and_fails_a_slow_one() {
    let root = workspace_root();
    pipeline();
    let server = Server::start(&[], &[]);
    let rules = [root.join("monitoring/rules/kiln-serve-slos.rules.yml")];
    let prometheus = Prometheus::start(&[("kiln-serve", vec![server.admin.clone()])], "1s", &rules);
    wait_for("rules evaluated", Duration::from_secs(30), || {
        prometheus.query("sloth_slo_info").len() == 5
    });
    let body = root.join("examples/adult/request.json");
    let check = |url: &str| {
        let flags = [
            "--probe",
            url,
            "--probe-rate",
            "100",
            "--probe-duration",
            "5s",
        ];
        let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
        args.extend(["--probe-body".as_ref(), body.as_os_str()]);
        slo_check(&prometheus, &args)
    };
    let healthy = check(&format!("http://{}{}", server.http, predict_path()));
    assert!(
        healthy.status.success(),
        "{}{}",
        stdout(&healthy),
        stderr(&healthy)
    );
    let text = stdout(&healthy);
    assert!(
        text.contains("500 requests at 100 rps") && text.contains(": pass"),
        "{text}"
    );

    let proxy = FaultProxy::slow_bodies(&server.http, 2, Duration::from_millis(400));
    let slow = check(&format!("{}{}", proxy.uri, predict_path()));
    assert_eq!(
        slow.status.code(),
        Some(3),
        "{}{}",
        stdout(&slow),
        stderr(&slow)
    );
    assert!(
        stdout(&slow).contains("FAILED: throughput probe failed: p99"),
        "{}",
        stdout(&slow)
    );
}

/// Every kiln-serve metric the monitoring files, the Argo templates and the manifests
/// name is one kiln-serve registers (kiln_core::metric_names): a rename there fails
/// here until every reader follows. Argo's own step metrics (`kiln_step_*`, exposed as
/// `argo_workflows_kiln_step_*`) are Argo's, not the server's.
#[test]
fn every_serving_metric_the_yaml_and_dashboards_name_is_one_the_server_registers() {
    let known = kiln_core::metric_names::ALL;
    let pattern =
        regex::Regex::new(r"(argo_workflows_)?\b(kiln_[a-z_]+|request_[a-z]+_seconds)[a-z_]*")
            .unwrap();
    let mut files = Vec::new();
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(path);
            }
        }
    }
    for dir in ["monitoring", "infra/k8s", "argo"] {
        walk(&workspace_root().join(dir), &mut files);
    }
    let mut seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for found in pattern.find_iter(&text) {
            let token = found.as_str();
            if token.starts_with("argo_workflows_") || token.starts_with("kiln_step_") {
                continue;
            }
            let name = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| token.strip_suffix(s))
                .unwrap_or(token);
            assert!(
                known.contains(&name),
                "{}: `{token}` is not a metric kiln-serve registers (kiln_core::metric_names)",
                file.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 200, "only {seen} metric references found");
}
