//! What operators see.

use super::harness::*;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_testkit::{FaultProxy, Prometheus, S3Op, S3Server};
use serde_json::{Value, json};

#[test]
fn prometheus_scrapes_every_metric_under_load_and_drift_rises_with_shifted_rows() {
    let p = pipeline();
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &[
            "--drift-window",
            "400",
            "--drift-min-rows",
            "200",
            "--log-predictions",
            logs.path().to_str().expect("path"),
            "--log-flush-ms",
            "200",
        ],
        &[],
    );
    let prometheus = Prometheus::start(&[("kiln-serve", vec![server.admin.clone()])], "1s", &[]);
    // Load: requests of 1 to 16 rows from two threads, bounded in count.
    let send = |rows: &[Value]| {
        std::thread::scope(|s| {
            for part in rows.chunks(rows.len().div_ceil(2)) {
                s.spawn(|| {
                    let mut at = 0;
                    let mut size = 1;
                    while at < part.len() {
                        let end = (at + size).min(part.len());
                        let (status, text) = server
                            .post(&predict_path(), &v1_body(&part[at..end]))
                            .expect("answer");
                        assert_eq!(status, 200, "{text}");
                        at = end;
                        size = size % 16 + 1;
                    }
                });
            }
        });
    };
    send(&p.rows[..600]);
    assert_eq!(server.post(&predict_path(), b"{").map(|r| r.0), Some(400));
    let wait_for = |promql: &str, ok: &dyn Fn(f64) -> bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let result = prometheus.query(promql);
            let value = result
                .first()
                .and_then(|r| r["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(v) = value
                && ok(v)
            {
                return v;
            }
            assert!(Instant::now() < deadline, "{promql}: {result:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let m = format!("model_name=\"{MODEL}\"");
    for (promql, ok) in [
        (
            format!(
                "sum(kiln_requests_total{{{m},protocol=\"v1\",code=\"200\",model_version=\"1\"}})"
            ),
            60.0,
        ),
        (format!("sum(kiln_requests_total{{{m},code=\"400\"}})"), 1.0),
        (
            format!("request_predict_seconds_bucket{{{m},le=\"0.3\"}}"),
            60.0,
        ),
        (format!("request_predict_seconds_count{{{m}}}"), 60.0),
        (format!("request_preprocess_seconds_count{{{m}}}"), 60.0),
        (format!("request_postprocess_seconds_count{{{m}}}"), 60.0),
        (
            format!("sum(kiln_request_duration_seconds_count{{{m}}})"),
            60.0,
        ),
        (format!("kiln_batch_rows_sum{{{m}}}"), 600.0),
        (format!("kiln_request_rows_sum{{{m}}}"), 600.0),
        (
            format!("sum(kiln_decisions_total{{{m},model_version=\"1\"}})"),
            600.0,
        ),
        (
            format!("sum(kiln_group_decisions_total{{{m},attribute=\"sex\"}})"),
            600.0,
        ),
        (format!("kiln_score_count{{{m}}}"), 600.0),
        (format!("kiln_model_info{{{m},model_version=\"1\"}}"), 1.0),
        (format!("kiln_model_ready{{{m}}}"), 1.0),
        (format!("kiln_drift_window_rows{{{m}}}"), 400.0),
        (format!("count(kiln_feature_drift_psi{{{m}}})"), 12.0),
        (
            format!("kiln_prediction_log_rows_total{{{m},outcome=\"written\"}}"),
            600.0,
        ),
        ("process_resident_memory_bytes".to_string(), 1.0),
    ] {
        wait_for(&promql, &|v| v >= ok);
    }
    for present in [
        format!("kiln_inflight_requests{{{m}}}"),
        format!("kiln_shed_requests_total{{{m},reason=\"concurrency\"}}"),
        format!("kiln_prediction_log_rows_total{{{m},outcome=\"dropped\"}}"),
    ] {
        wait_for(&present, &|v| v >= 0.0);
    }
    let sha = prometheus.query(&format!("kiln_model_info{{{m}}}"));
    assert_eq!(
        sha[0]["metric"]["bundle_sha256"].as_str().map(str::len),
        Some(64)
    );
    let before = wait_for(&format!("kiln_drifted_features_ratio{{{m}}}"), &|_| true);
    assert!(
        before <= 0.25,
        "test rows drift little from train: {before}"
    );
    let shifted_rows: Vec<Value> = p.rows[600..1100].iter().map(shifted).collect();
    send(&shifted_rows);
    let after = wait_for(&format!("kiln_drifted_features_ratio{{{m}}}"), &|v| {
        v >= 0.5
    });
    assert!(after > before, "drift share rose: {before} -> {after}");
    let age = wait_for(
        &format!("kiln_feature_drift_psi{{{m},feature=\"age\"}}"),
        &|v| v > 0.2,
    );
    assert!(age > 0.2);
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn the_prediction_log_reads_back_with_every_row_locally_and_over_s3() {
    let p = pipeline();
    let rows = &p.rows[..300];
    // A local folder.
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &[
            "--log-predictions",
            logs.path().to_str().expect("path"),
            "--log-batch-rows",
            "100",
        ],
        &[],
    );
    let (requests, sent) = send_and_log(&server, rows);
    assert_eq!(server.terminate().code(), Some(0));
    let log = read_log(logs.path());
    assert_eq!(log["rows"], sent, "{log}");
    assert_eq!(log["request_ids"], requests, "{log}");
    assert!(
        log["files"].as_u64().expect("files") >= 2,
        "batched into files: {log}"
    );
    assert_eq!(log["versions"], json!(["1"]));
    assert_eq!(log["probability_in_range"], true);
    for column in [
        "request_id",
        "served_at",
        "model_version",
        "age",
        "sex",
        "probability",
        "label",
    ] {
        assert!(
            log["columns"]
                .as_array()
                .expect("columns")
                .contains(&json!(column)),
            "{log}"
        );
    }
    // A real S3-protocol server.
    let s3 = S3Server::start(&["logs"]);
    let server = Server::start(
        &[
            "--log-predictions",
            "s3://logs/predictions",
            "--log-flush-ms",
            "100",
        ],
        &s3.env(),
    );
    let (requests, sent) = send_and_log(&server, rows);
    assert_eq!(server.terminate().code(), Some(0), "flushed and exited");
    let log = read_log(&s3.root.path().join("logs/predictions"));
    assert_eq!(log["rows"], sent, "{log}");
    assert_eq!(log["request_ids"], requests, "{log}");
}

#[test]
fn overload_is_shed_at_once_and_sigterm_loses_no_accepted_request() {
    let p = pipeline();
    // One scoring thread, four requests in flight at most, a short queue.
    let server = Server::start(
        &[
            "--threads",
            "1",
            "--max-concurrency",
            "4",
            "--queue-capacity",
            "2",
        ],
        &[],
    );
    let big = v1_body(&p.rows[..2000]);
    let shed = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    let slowest_shed = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..6 {
                    let started = Instant::now();
                    let (status, text) = server.post(&predict_path(), &big).expect("answer");
                    match status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        503 => {
                            assert!(text.contains("overloaded"), "{text}");
                            let took = started.elapsed();
                            let mut slowest = slowest_shed.lock().expect("lock");
                            *slowest = (*slowest).max(took);
                            shed.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("{other}: {text}"),
                    };
                }
            });
        }
    });
    let (shed, ok) = (shed.into_inner(), ok.into_inner());
    let slowest = slowest_shed.into_inner().expect("lock");
    assert!(shed > 0 && ok > 0, "some shed ({shed}), some served ({ok})");
    assert!(
        slowest < Duration::from_millis(500),
        "a shed request waited {slowest:?}"
    );
    let metrics = server.metrics();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("kiln_shed_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted as usize, shed, "every shed request is counted");
    drop(server);

    // SIGTERM during load: every request the server accepted is answered and logged.
    let logs = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        &["--log-predictions", logs.path().to_str().expect("path")],
        &[],
    );
    let answered_rows = AtomicUsize::new(0);
    let pid = server.child.as_ref().expect("child").id();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (answered_rows, server) = (&answered_rows, &server);
            s.spawn(move || {
                let mut i = t * 997;
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    let rows = &p.rows[i % 16_000..i % 16_000 + 5];
                    match server.post(&predict_path(), &v1_body(rows)) {
                        Some((200, _)) => {
                            answered_rows.fetch_add(5, Ordering::SeqCst);
                        }
                        Some((status, text)) => panic!("{status}: {text}"),
                        None => break, // the server stopped accepting
                    }
                    i += 5;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    });
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let log = read_log(logs.path());
    let answered = answered_rows.into_inner();
    assert!(answered > 100, "load was running: {answered} rows");
    assert_eq!(
        log["rows"], answered,
        "every answered row is in the log: {log}"
    );
}

#[test]
fn sigterm_with_stuck_connections_exits_within_the_grace_period_and_logs_every_answered_row() {
    use std::io::Write;
    let p = pipeline();
    let logs = tempfile::tempdir().expect("temp dir");
    let grace = Duration::from_secs(2);
    let server = Server::start(
        &[
            "--shutdown-grace",
            "2",
            "--log-predictions",
            logs.path().to_str().expect("path"),
        ],
        &[],
    );
    let mut answered = 0;
    for chunk in p.rows[..120].chunks(6) {
        let (status, text) = server
            .post(&predict_path(), &v1_body(chunk))
            .expect("answer");
        assert_eq!(status, 200, "{text}");
        answered += chunk.len();
    }
    // Three clients that announce a 100 kB body, send one byte of it and then nothing.
    let stuck: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut socket = std::net::TcpStream::connect(&server.http).expect("connect");
            write!(
                socket,
                "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
                predict_path()
            )
            .expect("send");
            socket
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = server.terminate();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took <= grace + Duration::from_secs(1),
        "exited {took:?} after SIGTERM with stuck connections (grace {grace:?})"
    );
    assert!(took >= grace, "it waited for the grace period: {took:?}");
    drop(stuck);
    let log = read_log(logs.path());
    assert_eq!(
        log["rows"], answered,
        "every answered row is in the log: {log}"
    );
}

fn log_rows(server: &Server, outcome: &str) -> u64 {
    let series =
        format!("kiln_prediction_log_rows_total{{model_name=\"{MODEL}\",outcome=\"{outcome}\"}}");
    server
        .metrics()
        .lines()
        .find(|l| l.starts_with(&series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {series}"))
}

fn spilled_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn the_prediction_log_survives_a_store_outage_with_every_row_written_once_it_is_back() {
    let p = pipeline();
    let s3 = S3Server::start(&["logs"]);
    // Every upload fails from the start: the store is down.
    let outage = FaultProxy::s3(&s3.endpoint, S3Op::Upload, 1);
    let spill = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&'static str, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| match k {
            "AWS_ENDPOINT_URL" => (k, outage.uri.clone()),
            _ => (k, v),
        })
        .collect();
    env.push(("KILN_S3_RETRY_TIMEOUT_SECS", "1".into()));
    let server = Server::start(
        &[
            "--log-predictions",
            "s3://logs/predictions",
            "--log-flush-ms",
            "200",
            "--log-spill-dir",
            spill.path().to_str().expect("path"),
        ],
        &env,
    );
    let (requests, sent) = send_and_log(&server, &p.rows[..400]);
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: {}", server.stderr());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("every row spilled to local disk", &|| {
        log_rows(&server, "spilled") == sent as u64
    });
    assert!(spilled_files(spill.path()) > 0);
    assert_eq!(log_rows(&server, "written"), 0, "the store took nothing");
    assert!(
        !s3.root.path().join("logs/predictions").exists(),
        "nothing reached the store during the outage"
    );
    // The store is back: the spilled files are re-sent, oldest first.
    outage.disarm();
    wait("every spilled row re-sent", &|| {
        log_rows(&server, "resent") == sent as u64
    });
    assert_eq!(
        spilled_files(spill.path()),
        0,
        "the spill folder is empty again"
    );
    assert_eq!(log_rows(&server, "dropped"), 0);
    assert_eq!(server.terminate().code(), Some(0));
    let log = read_log(&s3.root.path().join("logs/predictions"));
    assert_eq!(log["rows"], sent, "every row, once: {log}");
    assert_eq!(log["request_ids"], requests, "{log}");
    assert_eq!(log["partitions_match"], true, "{log}");
}
