//! What an attacker and a careless operator meet: slow clients, missing tokens, plain
//! listeners off loopback; and TLS with tokens through real clients.

use super::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_testkit::{bin, free_port, run, serve_python, stderr, stdout, workspace_root};
use serde_json::Value;

/// Reads until the peer closes or `within` passes: what was read, and when it ended
/// (`None`: still open).
fn read_until_closed(socket: &mut TcpStream, within: Duration) -> (String, Option<Instant>) {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match socket.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), Some(Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into(), Some(Instant::now())),
        }
    }
    (String::from_utf8_lossy(&got).into(), None)
}

fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[test]
fn slow_clients_are_cut_after_their_timeouts_while_every_other_request_is_answered() {
    let p = pipeline();
    let timeout = Duration::from_secs(2);
    // Four scoring slots: before, six dawdling uploads held all of them.
    let server = Server::start(
        &[
            "--max-concurrency",
            "4",
            "--header-timeout",
            "2",
            "--body-timeout",
            "2",
            "--min-body-rate",
            "10000",
        ],
        &[],
    );
    let opened = Instant::now();
    // A connection that sends `text` and then nothing.
    let stalled = |text: String| {
        let mut socket = TcpStream::connect(&server.http).expect("connect");
        socket.write_all(text.as_bytes()).expect("send");
        socket
    };
    // Six uploads that announce 100 kB and send one byte; six clients that never finish
    // their request head; six idle connections.
    let path = predict_path();
    let mut uploads: Vec<TcpStream> = (0..6)
        .map(|_| stalled(format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{")))
        .collect();
    let mut heads: Vec<TcpStream> = (0..6)
        .map(|_| stalled(format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Le")))
        .collect();
    let mut idle: Vec<TcpStream> = (0..6).map(|_| stalled(String::new())).collect();
    // Meanwhile every normal request is answered.
    let mut answered = 0;
    for chunk in p.rows[..60].chunks(5) {
        let (status, text) = server
            .post(&predict_path(), &v1_body(chunk))
            .expect("answer");
        assert_eq!(status, 200, "{text}");
        answered += 1;
    }
    assert!(
        opened.elapsed() < timeout,
        "the normal requests were answered while the slow clients held their connections"
    );
    assert_eq!(answered, 12);
    let limit = timeout + Duration::from_millis(1500);
    for socket in &mut uploads {
        let (text, closed) = read_until_closed(socket, Duration::from_secs(6));
        let closed = closed.expect("the slow upload was cut") - opened;
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "a slow upload gets 408: {text}"
        );
        assert!(text.contains("too slow"), "{text}");
        assert!(
            closed >= timeout && closed <= limit,
            "cut after {closed:?} (body timeout {timeout:?})"
        );
    }
    for socket in heads.iter_mut().chain(idle.iter_mut()) {
        let (_, closed) = read_until_closed(socket, Duration::from_secs(6));
        let closed = closed.expect("the connection was closed") - opened;
        assert!(
            closed >= timeout && closed <= limit,
            "closed after {closed:?} (header timeout {timeout:?})"
        );
    }
    let metrics = server.metrics();
    assert_eq!(
        metric(
            &metrics,
            "kiln_client_timeouts_total{model_name=\"adult-income\",stage=\"body\"}"
        ),
        6.0
    );
    // And the server still serves.
    let (status, _) = server
        .post(&predict_path(), &v1_body(&p.rows[..3]))
        .expect("answer");
    assert_eq!(status, 200);
}

#[test]
fn a_listener_off_loopback_without_tls_or_tokens_is_refused_unless_insecure() {
    let p = pipeline();
    let model = format!("{MODEL}@staging");
    let registry = p.registry.to_str().expect("path").to_string();
    let port = free_port().to_string();
    let exposed = format!("0.0.0.0:{port}");
    let out = run(Command::new(bin("kiln-serve")).args([
        "--model",
        &model,
        "--registry",
        &registry,
        "--http",
        &exposed,
        "--no-grpc",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("refusing to serve --http {exposed} off loopback"))
            && e.contains("--insecure"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    // Told --insecure (a sidecar in front), it serves.
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin("kiln-serve"))
        .args([
            "--model",
            &model,
            "--registry",
            &registry,
            "--http",
            &exposed,
        ])
        .args(["--no-grpc", "--insecure", "--admin", &admin])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kiln-serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let answer = kiln_testkit::http_request(
            &format!("127.0.0.1:{port}"),
            "GET",
            "/v2/health/ready",
            b"",
            Duration::from_secs(5),
        );
        if answer.as_ref().map(|a| a.0) == Some(200) || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready.map(|a| a.0), Some(200));
}

fn pki(dir: &Path) {
    let out = run(Command::new(serve_python())
        .arg(workspace_root().join("crates/serve/tests/py/tls_fixture.py"))
        .arg(dir));
    assert!(out.status.success(), "{}", stderr(&out));
}

fn secure_clients(server: &Server, https: &str, pki: &Path, tokens: &Path, family: &str) -> Value {
    let p = pipeline();
    let out = run(Command::new(serve_python())
        .arg(workspace_root().join("crates/serve/tests/py/secure_clients.py"))
        .arg(https.rsplit(':').next().expect("port"))
        .arg(server.grpc_port.to_string())
        .arg(MODEL)
        .arg(&p.run)
        .arg(pki)
        .arg(tokens)
        .arg(family));
    assert!(
        out.status.success(),
        "{family}: {}\n{}",
        stderr(&out),
        server.stderr()
    );
    serde_json::from_str(stdout(&out).trim()).expect("summary JSON")
}

#[test]
fn tritonclient_and_kserve_work_over_tls_with_a_token_and_nothing_works_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    pki(dir.path());
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "first-token\n").expect("tokens");
    let file = |name: &str| dir.path().join(name).to_str().expect("path").to_string();
    let server = Server::start(
        &[
            "--tls-cert",
            &file("server.pem"),
            "--tls-key",
            &file("server.key"),
            "--auth-token-file",
            tokens.to_str().expect("path"),
        ],
        &[],
    );
    // Plain HTTP to the TLS listener gets no answer.
    assert_eq!(server.post(&predict_path(), b"{}"), None);

    let kserve = secure_clients(&server, &server.http, dir.path(), &tokens, "kserve");
    assert_eq!(kserve["kserve_live_without_token"], true, "{kserve}");
    assert_eq!(kserve["kserve_without_token"], 401, "{kserve}");
    assert!(
        kserve["kserve_max_abs_diff"].as_f64().expect("diff") <= 1e-6,
        "{kserve}"
    );

    let triton = secure_clients(&server, &server.http, dir.path(), &tokens, "triton");
    assert_eq!(triton["health_without_token"], true, "{triton}");
    let rest = triton["rest_without_token"].as_str().expect("refused");
    assert!(rest.contains("authentication required"), "{triton}");
    let grpc = triton["grpc_without_token"].as_str().expect("refused");
    assert!(
        grpc.starts_with("StatusCode.UNAUTHENTICATED") && grpc.contains("authentication required"),
        "{triton}"
    );
    for key in ["rest_max_abs_diff", "grpc_max_abs_diff"] {
        assert!(
            triton[key].as_f64().expect("diff") <= 1e-6,
            "{key}: {triton}"
        );
    }
    assert_eq!(triton["token_rotated"], true, "{triton}");
    assert_eq!(triton["certificate_before"], "kiln-serve", "{triton}");
    assert_eq!(triton["certificate_rotated"], true, "{triton}");
    let metrics = server.metrics();
    assert!(
        metric(
            &metrics,
            "kiln_unauthenticated_requests_total{model_name=\"adult-income\",protocol=\"rest\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &metrics,
            "kiln_unauthenticated_requests_total{model_name=\"adult-income\",protocol=\"grpc\"}"
        ) >= 1.0
    );
    drop(server);

    // Mutual TLS: a client without a certificate signed by the client CA is refused.
    pki(dir.path());
    std::fs::write(&tokens, "first-token\n").expect("tokens");
    let server = Server::start(
        &[
            "--tls-cert",
            &file("server.pem"),
            "--tls-key",
            &file("server.key"),
            "--tls-client-ca",
            &file("ca.pem"),
            "--auth-token-file",
            tokens.to_str().expect("path"),
        ],
        &[],
    );
    let mtls = secure_clients(&server, &server.http, dir.path(), &tokens, "mtls");
    assert_eq!(
        mtls["mtls_without_certificate"], "StatusCode.UNAVAILABLE",
        "{mtls}"
    );
    assert!(
        mtls["mtls_max_abs_diff"].as_f64().expect("diff") <= 1e-6,
        "{mtls}"
    );
}

#[test]
fn a_pinned_bundle_is_served_and_a_changed_one_is_refused_at_load() {
    let p = pipeline();
    let version = p.registry.join(format!("{MODEL}/versions/1"));
    let record: Value =
        serde_json::from_slice(&std::fs::read(version.join("version.json")).expect("record"))
            .expect("JSON");
    let pinned = record["tags"]["kiln.bundle_sha256"]
        .as_str()
        .expect("the registry records the bundle's digest")
        .to_string();
    // The digest is what coreutils computes over the bundle's files, in name order.
    let files = "decision_policy.json metadata.json model.bin model_config.json reference_profile.json training_config.json transform.json";
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sha256sum $(ls {files} 2>/dev/null) | sha256sum | cut -d' ' -f1"
        ))
        .current_dir(version.join("model")));
    assert_eq!(stdout(&out).trim(), pinned, "{}", stderr(&out));

    let server = Server::start(&["--bundle-sha256", &pinned], &[]);
    let (status, _) = server
        .post(&predict_path(), &v1_body(&p.rows[..2]))
        .expect("answer");
    assert_eq!(status, 200);
    let metrics = server.metrics();
    assert!(metrics.contains(&format!("bundle_sha256=\"{pinned}\"")));
    drop(server);

    // One byte more in the decision policy (still valid JSON): refused, exit 2, one line.
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(version.join("model")).expect("bundle") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
    }
    let policy = copy.path().join("decision_policy.json");
    let mut text = std::fs::read(&policy).expect("policy");
    text.push(b'\n');
    std::fs::write(&policy, text).expect("tamper");
    let out = run(Command::new(bin("kiln-serve"))
        .arg("--model")
        .arg(copy.path())
        .args(["--bundle-sha256", &pinned, "--no-grpc"])
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin", &format!("127.0.0.1:{}", free_port())]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("not the pinned") && e.contains(&pinned), "{e}");
}
