//! `kiln rollout smoke` against a real kiln-serve: passes when the expected version
//! answers a V2 request built from V1 records, fails (3) when another version keeps
//! answering, and is a transient failure (75) when nothing answers at all.

use std::process::Command;

use kiln_testkit::{Server, bin, free_port, run, stderr, stdout, workspace_root};

fn smoke(url: &str, version: &str, timeout: &str) -> std::process::Output {
    run(Command::new(bin("kiln"))
        .args([
            "rollout",
            "smoke",
            "--url",
            url,
            "--expect-version",
            version,
        ])
        .arg("--request")
        .arg(workspace_root().join("examples/adult/request.json"))
        .args(["--timeout", timeout]))
}

#[test]
fn the_smoke_test_waits_for_the_new_version() {
    let server = Server::start(&["--no-grpc"], &[]);
    let url = format!("http://{}", server.http);
    let out = smoke(&url, "1", "10s");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("smoke test passed: adult-income version 1"),
        "{}",
        stdout(&out)
    );
    let out = smoke(&url, "9", "3s");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("version 1 answered, waiting for 9"),
        "{}",
        stderr(&out)
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = smoke(&closed, "1", "2s");
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
}
