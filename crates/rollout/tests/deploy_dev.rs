//! `make deploy-dev`, `make canary-demo` and `make rollback` on a laptop, through the
//! scripts the targets run (on free ports, in a temporary folder): the model answers
//! through HAProxy at the printed URL, Prometheus is up, a canary of version 2 is
//! promoted by `kiln rollout`, and the rollback puts version 1 back (traffic and alias).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kiln_testkit::{
    MODEL, bin, free_port, http_request, oha_bin, prometheus_bin, run, stderr, stdout,
    two_versions, workspace_root,
};
use serde_json::Value;

struct Dev {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Dev {
    fn new() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        let out = run(Command::new("cp")
            .arg("-r")
            .arg(two_versions())
            .arg(&registry));
        assert!(out.status.success(), "{}", stderr(&out));
        // What a laptop has before the demo: version 1 on `staging`, version 2 just trained.
        let out = run(Command::new(bin("kiln"))
            .args([
                "promote",
                MODEL,
                "--version",
                "1",
                "--alias",
                "staging",
                "--registry",
            ])
            .arg(&registry)
            .env_remove("MLFLOW_TRACKING_URI"));
        assert!(out.status.success(), "{}", stderr(&out));
        // The demo's settings, faster: checks every 3 s over 6 s windows.
        let settings =
            std::fs::read_to_string(workspace_root().join("examples/rollout/local.yaml"))
                .unwrap()
                .replace("interval: 10s", "interval: 3s\nwindow: 6s")
                .replace("promote_after: 6", "promote_after: 2");
        let settings_path = dir.path().join("rollout.yaml");
        std::fs::write(&settings_path, settings).unwrap();
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let env = vec![
            ("KILN", path(&bin("kiln"))),
            ("KILN_REGISTRY", path(&registry)),
            ("KILN_DEV_DIR", path(&dir.path().join("deploy-dev"))),
            ("KILN_DEV_PORT", free_port().to_string()),
            ("KILN_DEV_STABLE_PORT", free_port().to_string()),
            ("KILN_DEV_CANARY_PORT", free_port().to_string()),
            ("KILN_DEV_STABLE_ADMIN_PORT", free_port().to_string()),
            ("KILN_DEV_CANARY_ADMIN_PORT", free_port().to_string()),
            ("KILN_DEV_ADMIN_PORT", free_port().to_string()),
            ("KILN_DEV_EXPORTER_PORT", free_port().to_string()),
            ("KILN_DEV_PROMETHEUS_PORT", free_port().to_string()),
            ("KILN_PROMETHEUS", path(&prometheus_bin())),
            ("KILN_OHA", path(&oha_bin())),
            ("KILN_ROLLOUT_SETTINGS", path(&settings_path)),
        ];
        Dev { dir, env }
    }

    fn script(&self, script: &str, args: &[&str]) -> Output {
        run(Command::new(workspace_root().join("scripts").join(script))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("MLFLOW_TRACKING_URI")
            .current_dir(self.dir.path()))
    }

    fn alias(&self, name: &str) -> Option<u64> {
        let registry = &self
            .env
            .iter()
            .find(|(k, _)| *k == "KILN_REGISTRY")
            .unwrap()
            .1;
        let text =
            std::fs::read_to_string(Path::new(registry).join(MODEL).join("aliases.json")).ok()?;
        serde_json::from_str::<Value>(&text).unwrap()["aliases"][name].as_u64()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.script("deploy-dev.sh", &["stop"]);
    }
}

/// The URL after `label:` in the printed block.
fn printed_url(text: &str, label: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in `{line}`"));
    url.trim_start_matches("http://").to_string()
}

fn split(url: &str) -> (String, String) {
    let (host, path) = url.split_once('/').unwrap_or((url, ""));
    (host.to_string(), format!("/{path}"))
}

#[test]
fn deploy_dev_serves_prints_working_urls_and_a_canary_rolls_out_and_back() {
    let dev = Dev::new();
    let out = dev.script("deploy-dev.sh", &["start"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let printed = stdout(&out);
    // Every printed URL answers.
    let (host, ready) = split(&printed_url(&printed, "Ready:"));
    assert_eq!(
        http_request(&host, "GET", &ready, b"", Duration::from_secs(5)).map(|r| r.0),
        Some(200)
    );
    let (host, infer) = split(&printed_url(&printed, "Model (through HAProxy):"));
    let body = serde_json::to_vec(&serde_json::json!({"inputs": [
        {"name": "age", "datatype": "INT64", "shape": [1], "data": [39]}
    ]}))
    .unwrap();
    let reply = http_request(&host, "POST", &infer, &body, Duration::from_secs(5)).expect("infer");
    // A partial request is refused by the model itself (through HAProxy), by name.
    assert_eq!(reply.0, 400, "{}", reply.1);
    let v1 = std::fs::read(workspace_root().join("examples/adult/request.json")).unwrap();
    let predict = format!("/v1/models/{MODEL}:predict");
    let reply =
        http_request(&host, "POST", &predict, &v1, Duration::from_secs(5)).expect("predict");
    assert_eq!(reply.0, 200, "{}", reply.1);
    for label in ["Prometheus:", "HAProxy metrics:"] {
        let (h, p) = split(&printed_url(&printed, label));
        let path = if label == "Prometheus:" {
            "/-/ready".to_string()
        } else {
            p
        };
        assert_eq!(
            http_request(&h, "GET", &path, b"", Duration::from_secs(5)).map(|r| r.0),
            Some(200),
            "{label}"
        );
    }
    assert!(printed.contains("(version 1"), "{printed}");
    // Starting again shows the same deployment.
    let again = dev.script("deploy-dev.sh", &["start"]);
    assert!(
        stdout(&again).contains("already running"),
        "{}",
        stdout(&again)
    );

    // The canary demo: version 2 at 10 %, promoted.
    let out = dev.script("deploy-dev.sh", &["canary", "2"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dev.dir.path().join("deploy-dev/rollout.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["decision"]["outcome"], "promoted", "{report:#}");
    assert_eq!(dev.alias("production"), Some(2));

    // `make rollback` (scripts/rollback.sh): version 1 has the traffic and the alias.
    let out = dev.script("rollback.sh", &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("alias `production` 2 → 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(dev.alias("production"), Some(1));
    // Through HAProxy, version 1 answers again.
    let out = run(Command::new(bin("kiln"))
        .args([
            "rollout",
            "smoke",
            "--url",
            &format!("http://{host}"),
            "--expect-version",
            "1",
        ])
        .arg("--request")
        .arg(workspace_root().join("examples/adult/request.json"))
        .args(["--timeout", "10s"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = dev.script("deploy-dev.sh", &["stop"]);
    assert!(stdout(&out).contains("stopped"));
    assert!(http_request(&host, "GET", &ready, b"", Duration::from_secs(2)).is_none());
}
