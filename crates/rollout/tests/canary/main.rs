//! A real canary on loopback: HAProxy in front of two kiln-serve processes (version 1
//! stable, version 2 canary), Prometheus scraping HAProxy's exporter and both servers,
//! open-loop traffic from oha through HAProxy, and `kiln rollout run` deciding. Each
//! scenario asserts the decision, the traffic split HAProxy ends with, the registry
//! alias, and the checks in `rollout.json`.

mod harness;
mod mlflow;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Canary, Front, alias, assert_checks_have_numbers, checks, failing, finish};
use kiln_testkit::{Haproxy, MODEL, bin, free_port, run, stderr};

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
    c.wait_canary_weight(10);
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
    let failing = failing(&report);
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
    let failing = failing(&report);
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
    c.wait_canary_weight(10);
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
