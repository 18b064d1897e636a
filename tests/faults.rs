//! An object store that fails mid-step: every data step exits 75 (Argo retries it),
//! leaves the previous result exactly as it was, and completes when retried.
//!
//! The steps run against a real S3-protocol server through a proxy that answers
//! `503 SlowDown` from the Nth ranged read or upload on, for longer than the client's
//! own bounded retries last: an outage, not a blip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_testkit::{FaultProxy, S3Op, S3Server, adult_dir, bin, run, stderr, workspace_root};

const RUN: &str = "s3://kiln/runs/faults";

struct World {
    s3: S3Server,
}

impl World {
    fn new() -> World {
        let s3 = S3Server::start(&["kiln"]);
        let data = s3.root.path().join("kiln/data");
        std::fs::create_dir_all(&data).unwrap();
        for file in ["adult.data", "adult.test"] {
            std::fs::copy(adult_dir().join(file), data.join(file)).unwrap();
        }
        World { s3 }
    }

    /// Runs one step's binary against `endpoint` (the server or a proxy in front of it).
    fn step(&self, step: &str, endpoint: &str, force: bool) -> Output {
        let mut cmd = Command::new(bin(&format!("kiln-{step}")));
        cmd.arg("--spec")
            .arg(workspace_root().join("examples/adult/spec.yaml"))
            .args(["--run", RUN, "--set", "train.epochs=1", "-q"]);
        if force {
            cmd.arg("--force");
        }
        for (key, value) in self.s3.env() {
            cmd.env(key, value);
        }
        cmd.env("AWS_ENDPOINT_URL", endpoint)
            .env("KILN_ADULT_DIR", "s3://kiln/data")
            .env("KILN_S3_RETRY_TIMEOUT_SECS", "3")
            .env("MLFLOW_TRACKING_URI", "");
        run(&mut cmd)
    }

    /// Every committed object of a step's folder and its bytes (staged files aside).
    fn committed(&self, step: &str) -> BTreeMap<String, Vec<u8>> {
        let root = self.s3.root.path().join("kiln/runs/faults").join(step);
        let mut files = BTreeMap::new();
        collect(&root, &root, &mut files);
        files
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with(".staging") {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            files.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn an_outage_mid_step_exits_75_keeps_the_previous_result_and_the_retry_completes() {
    let world = World::new();
    let direct = world.s3.endpoint.clone();
    for step in ["prepare", "validate", "train", "evaluate"] {
        let out = world.step(step, &direct, false);
        assert!(out.status.success(), "{step}: {}", stderr(&out));
    }
    // Each step's reads of Parquet are ranged; prepare reads CSV with plain GETs.
    let faults = [
        ("prepare", S3Op::Read, 1),
        ("prepare", S3Op::Upload, 2),
        ("validate", S3Op::ReadRange, 2),
        ("validate", S3Op::Upload, 1),
        ("train", S3Op::ReadRange, 3),
        ("train", S3Op::Upload, 2),
        ("evaluate", S3Op::ReadRange, 4),
        ("evaluate", S3Op::Upload, 1),
    ];
    for (step, op, nth) in faults {
        let before = world.committed(step);
        assert!(before.contains_key("manifest.json"), "{step}: {before:?}");
        let proxy = FaultProxy::s3(&direct, op, nth);
        let out = world.step(step, &proxy.uri, true);
        let text = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(75),
            "{step} with {op:?} #{nth} failing: {text}"
        );
        assert!(
            proxy.injected.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "{step}: the fault never fired"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{step}, {op:?} #{nth} failing: {}", text.trim_end());
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{step}: one line: {text}");
        assert!(lines[0].starts_with("error: "), "{step}: {text}");
        assert!(
            lines[0].contains("s3://kiln/") && lines[0].contains("503"),
            "{step}: the line names the object and the status: {text}"
        );
        assert_eq!(
            world.committed(step),
            before,
            "{step}: the previous result changed after {op:?} #{nth} failed"
        );
        // Argo's retry: the outage is over, the same command completes.
        proxy.disarm();
        let retried = world.step(step, &proxy.uri, true);
        assert!(
            retried.status.success(),
            "{step} retry: {}",
            stderr(&retried)
        );
        // The same files as before, the manifest among them.
        let after = world.committed(step);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{step}: the retry wrote the same files"
        );
    }
}

/// A full disk under a step: the run folder on a small tmpfs (in a mount namespace of
/// the test's own, `unshare -rm`), filled to the last 200 KiB, then `prepare --force`.
/// The step fails with exit 1 and one line naming what it could not write, and the
/// previous result stays byte for byte: outputs are staged and moved into place only
/// when the step succeeds.
#[test]
fn a_full_disk_under_a_step_fails_in_one_line_and_keeps_the_previous_result() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let script = r#"
set -e
mount -t tmpfs -o size=64m tmpfs "$MNT"
"$PREPARE" --spec "$SPEC" --run "$MNT/run" -q
digest() { (cd "$MNT/run" && find . -type f -not -path '*/.staging/*' | sort | xargs sha256sum); }
digest > "$OUT/before"
free=$(df --output=avail -k "$MNT" | tail -1)
dd if=/dev/zero of="$MNT/filler" bs=1k count=$((free - 200)) 2> /dev/null || true
set +e
"$PREPARE" --spec "$SPEC" --run "$MNT/run" -q --force 2> "$OUT/stderr"
echo $? > "$OUT/code"
digest > "$OUT/after"
"#;
    let result = run(Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .env("MNT", &mnt)
        .env("OUT", &out)
        .env("PREPARE", bin("kiln-prepare"))
        .env("SPEC", workspace_root().join("examples/adult/spec.yaml"))
        .env("KILN_ADULT_DIR", adult_dir())
        .env("MLFLOW_TRACKING_URI", ""));
    assert!(result.status.success(), "{}", stderr(&result));
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let text = read("stderr");
    assert_eq!(read("code").trim(), "1", "a full disk is exit 1: {text}");
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    assert!(
        text.contains("No space left on device") && text.contains("prepare"),
        "names the cause and what was written: {text}"
    );
    let before = read("before");
    assert!(before.contains("manifest.json"), "{before}");
    assert_eq!(read("after"), before, "the previous result is untouched");
}
