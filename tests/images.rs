//! Kiln's images, built and run with podman as a data scientist and a cluster would:
//! each step's container on Adult through a mounted folder and over S3 (non-root,
//! read-only root filesystem, no network where none is needed), compared with
//! `kiln run`; exit codes through the container; the serve image against the host
//! binary over V1, V2 REST and V2 gRPC (tritonclient); SIGTERM under load; and
//! `make publish` to a real OCI registry with GPG signatures, checked by a node-side
//! trust policy that must refuse unsigned, re-tagged and altered images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kiln_testkit::{
    MODEL, OciRegistry, S3Server, Server, adult_dir, bin, free_port, images, oha_bin, pipeline,
    podman, provenance_tool, run, serve_python, skopeo, stderr, stdout, v1_body, workspace_root,
};
use serde_json::Value;

/// The user every image runs as.
const NONROOT: &str = "65532:65532";

/// Steps in `kiln run`'s order, each its own image.
fn steps() -> Vec<&'static str> {
    kiln_cli::step_names()
}

/// A folder the container user may write: the mounted work folder.
fn work_folder(dir: &Path) -> PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    // As docs/steps.md tells a data scientist: `chmod a+rwx work`.
    let out = run(Command::new("chmod").arg("a+rwx").arg(&work));
    assert!(out.status.success(), "chmod: {}", stderr(&out));
    work
}

/// `podman run` of a step image as README tells a data scientist: non-root, read-only
/// root filesystem, the spec and Adult mounted read-only, the work folder read-write.
fn step_container(step: &str, work: &Path, network: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = podman();
    cmd.args(["run", "--rm", "--read-only", "--user", NONROOT])
        .args(["--network", network]);
    for (key, value) in env {
        cmd.args(["-e", &format!("{key}={value}")]);
    }
    cmd.arg("-v")
        .arg(format!(
            "{}:/spec:ro",
            workspace_root().join("examples/adult").display()
        ))
        .arg("-v")
        .arg(format!("{}:/data/adult:ro", adult_dir().display()))
        .arg("-v")
        .arg(format!("{}:/work", work.display()))
        .args(["-e", "KILN_ADULT_DIR=/data/adult"])
        .arg(format!("localhost/kiln-{step}:latest"))
        .args(["--spec", "/spec/spec.yaml"]);
    cmd
}

/// Each step's outputs (path → sha256) from its manifest under `run_dir` (tune writes
/// none when the spec has no `tune:` section).
fn outputs(run_dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for step in steps() {
        let Some(files) = kiln_testkit::manifest_outputs(&run_dir.join(step).join("manifest.json"))
        else {
            continue;
        };
        all.insert(step.to_string(), files);
    }
    all
}

/// The registered version's tags, from a local registry's folder.
fn version_tags(registry: &Path) -> BTreeMap<String, String> {
    let version: Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("{MODEL}/versions/1/version.json")))
            .expect("version.json"),
    )
    .expect("version JSON");
    serde_json::from_value(version["tags"].clone()).expect("tags")
}

/// Keys whose values are clocks: the only thing two runs of the same inputs may differ in.
const TIMES: [&str; 7] = [
    "seconds",
    "samples_per_second",
    "created_at",
    "decided_at",
    "validation_time",
    "timestamp",
    // The BOM's serial number is a name-based UUID of the bundle's location.
    "serialNumber",
];

/// A JSON artifact with its times dropped and each location (and each digest of
/// something that names a location) replaced by a placeholder.
fn normalised(bytes: &[u8], places: &[(String, &str)]) -> Value {
    fn walk(value: &mut Value, places: &[(String, &str)]) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| !TIMES.contains(&k.as_str()));
                map.values_mut().for_each(|v| walk(v, places));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, places)),
            Value::String(text) => {
                for (from, to) in places {
                    *text = text.replace(from.as_str(), to);
                }
            }
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_slice(bytes).expect("a JSON artifact");
    walk(&mut value, places);
    value
}

/// One run as the comparison sees it: its run folder on disk and the places it names.
struct RunView {
    run_dir: PathBuf,
    registry: PathBuf,
    /// (what the run's files say, placeholder): the run root and the data folder.
    places: Vec<(String, &'static str)>,
}

impl RunView {
    /// The places plus the digests that depend on them (the bundle's, the spec's).
    fn all_places(&self) -> Vec<(String, &'static str)> {
        let tags = version_tags(&self.registry);
        let mut places = self.places.clone();
        places.push((tags["kiln.bundle_sha256"].clone(), "<bundle>"));
        places.push((tags["kiln.spec_fingerprint"].clone(), "<spec>"));
        places
    }
}

/// Every step's outputs are byte for byte the same in both runs, or (JSON) the same but
/// for times and locations; the registered versions agree in every other tag.
fn assert_same_artifacts(expected: &RunView, produced: &RunView) {
    let (want, got) = (outputs(&expected.run_dir), outputs(&produced.run_dir));
    assert!(got.len() >= 6, "every step wrote its manifest: {got:?}");
    assert_eq!(
        want.iter()
            .map(|(s, f)| (s, f.keys().collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
        got.iter()
            .map(|(s, f)| (s, f.keys().collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
        "the same steps wrote the same files"
    );
    let (want_places, got_places) = (expected.all_places(), produced.all_places());
    let mut identical = 0;
    for (step, files) in &want {
        for (file, sha) in files {
            if got[step][file] == *sha {
                identical += 1;
                continue;
            }
            assert!(file.ends_with(".json"), "{step}/{file} differs");
            let read = |view: &RunView| {
                std::fs::read(view.run_dir.join(step).join(file)).expect("artifact")
            };
            assert_eq!(
                normalised(&read(expected), &want_places),
                normalised(&read(produced), &got_places),
                "{step}/{file} differs in more than times and locations"
            );
        }
    }
    assert!(identical >= 20, "only {identical} files are byte-identical");
    let (mut want_tags, mut got_tags) = (
        version_tags(&expected.registry),
        version_tags(&produced.registry),
    );
    for tags in [&mut want_tags, &mut got_tags] {
        for derived in [
            "kiln.bundle_sha256",
            "kiln.spec_fingerprint",
            "kiln.run_uri",
        ] {
            tags.remove(derived);
        }
    }
    assert_eq!(want_tags, got_tags, "the registered versions' tags");
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}{}",
        stdout(out),
        stderr(out)
    );
}

/// `kiln run` on the host with the same settings and the revision the images were
/// built from: what the containers must reproduce.
fn host_run(dir: &Path) -> RunView {
    let runs = dir.join("host/runs");
    let revision = stdout(&run(podman().args([
        "image",
        "inspect",
        "--format",
        "{{index .Labels \"org.opencontainers.image.revision\"}}",
        "localhost/kiln-train:latest",
    ])))
    .trim()
    .to_string();
    let out = run(
        kiln_testkit::adult_command(&bin("kiln"), Some("run"), &runs.join("adult"))
            .args(["--set", "train.epochs=2", "-q"])
            .env("KILN_SOURCE_REVISION", revision),
    );
    assert!(out.status.success(), "kiln run: {}", stderr(&out));
    RunView {
        run_dir: runs.join("adult"),
        registry: runs.join("registry"),
        places: vec![
            (runs.display().to_string(), "<runs>"),
            (adult_dir().display().to_string(), "<data>"),
        ],
    }
}

#[test]
fn the_step_containers_chain_on_adult_and_reproduce_kiln_run() {
    images();
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = host_run(dir.path());

    // Through a mounted folder, no network at all.
    let work = work_folder(dir.path());
    for step in steps() {
        let out = run(step_container(step, &work, "none", &[]).args([
            "--run",
            "/work/runs/adult",
            "--set",
            "train.epochs=2",
        ]));
        assert!(
            out.status.success(),
            "kiln-{step} container: {}",
            stderr(&out)
        );
    }
    let in_container = |run_dir: PathBuf, registry: PathBuf, runs: &str| RunView {
        run_dir,
        registry,
        places: vec![
            (runs.to_string(), "<runs>"),
            ("/data/adult".to_string(), "<data>"),
        ],
    };
    assert_same_artifacts(
        &expected,
        &in_container(
            work.join("runs/adult"),
            work.join("runs/registry"),
            "/work/runs",
        ),
    );
    // Written by the container's user, not root.
    let owner = run(Command::new("stat")
        .args(["-c", "%u"])
        .arg(work.join("runs/adult/train/manifest.json")));
    assert_eq!(stdout(&owner).trim(), "65532");

    // Over S3: s3s-fs on the host's loopback, the AWS variables passed in.
    let s3 = S3Server::start(&["kiln"]);
    let s3_work = work_folder(&dir.path().join("s3"));
    for step in steps() {
        let out = run(step_container(step, &s3_work, "host", &s3.env()).args([
            "--run",
            "s3://kiln/runs/adult",
            "--set",
            "train.epochs=2",
            "--set",
            "registry.local_uri=s3://kiln/runs/registry",
        ]));
        assert!(out.status.success(), "kiln-{step} on S3: {}", stderr(&out));
    }
    // s3s-fs keeps each object as a file: read the bucket's folder.
    let bucket = s3.root.path().join("kiln");
    assert_same_artifacts(
        &expected,
        &in_container(
            bucket.join("runs/adult"),
            bucket.join("runs/registry"),
            "s3://kiln/runs",
        ),
    );

    // Exit codes survive the container. A bad spec: 2.
    let out = run(step_container("validate", &work, "none", &[]).args([
        "--run",
        "/work/runs/adult",
        "--set",
        "validate.no_such_setting=1",
    ]));
    assert_code(&out, 2, "a bad spec");
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    // A failed gate: 3.
    let out = run(step_container("register", &work, "none", &[]).args([
        "--run",
        "/work/runs/adult",
        "--set",
        "train.epochs=2",
        "--set",
        "registry.min_metrics.roc_auc=0.999",
    ]));
    assert_code(&out, 3, "a failed gate");
    // An S3 endpoint nobody listens on: 75, retry later.
    let nobody: Vec<(&str, String)> = s3
        .env()
        .into_iter()
        .map(|(key, value)| match key {
            "AWS_ENDPOINT_URL" => (key, format!("http://127.0.0.1:{}", free_port())),
            _ => (key, value),
        })
        .collect();
    let out = run(step_container("prepare", &s3_work, "host", &nobody)
        .args(["--run", "s3://kiln/runs/elsewhere"]));
    assert_code(&out, 75, "an unreachable S3 endpoint");
}

/// kiln-serve's image on the host network, loopback ports, read-only, non-root.
fn serve_container(mounts: &[(PathBuf, &str)], env: &[(&str, String)], args: &[&str]) -> Server {
    let mounts = mounts.to_vec();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Server::launch_with(move |http, grpc, admin| {
        let mut cmd = podman();
        cmd.args([
            "run",
            "--rm",
            "--read-only",
            "--user",
            NONROOT,
            "--network",
            "host",
        ])
        .args(["--stop-timeout", "30"]);
        for (from, to) in &mounts {
            cmd.arg("-v").arg(format!("{}:{to}:ro", from.display()));
        }
        for (key, value) in &env {
            cmd.args(["-e", &format!("{key}={value}")]);
        }
        cmd.arg("localhost/kiln-serve:latest")
            .args(["--http", http, "--grpc", grpc, "--admin", admin])
            .args(&args);
        cmd
    })
}

/// tritonclient (V2 REST and gRPC) and plain V1 on every adult.test row against a
/// server: each protocol's scores beside evaluate's (crates/serve/tests/py/clients.py).
fn clients(server: &Server) -> Value {
    let out = run(Command::new(serve_python())
        .arg(workspace_root().join("crates/serve/tests/py/clients.py"))
        .arg(server.http.rsplit(':').next().expect("port"))
        .arg(server.grpc_port.to_string())
        .arg(MODEL)
        .arg(&pipeline().run)
        .arg("triton"));
    assert!(
        out.status.success(),
        "clients: {}\n{}",
        stderr(&out),
        server.stderr()
    );
    serde_json::from_str(stdout(&out).trim()).expect("summary JSON")
}

fn assert_scores_equal_evaluate(summary: &Value, what: &str) {
    for protocol in ["v1", "v2_rest_tritonclient", "v2_grpc_tritonclient"] {
        let result = &summary["protocols"][protocol];
        assert_eq!(result["rows"], 16_281, "{what} {protocol}: {result}");
        assert!(
            result["max_abs_diff"].as_f64().expect("compared") <= 1e-6,
            "{what} {protocol}: {result}"
        );
        assert_eq!(result["decision_mismatches"], 0, "{what} {protocol}");
    }
}

#[test]
fn the_serve_image_answers_like_the_host_binary_and_drains_on_sigterm() {
    images();
    let p = pipeline();
    let host = Server::start(&[], &[]);
    let container = serve_container(
        &[(p.registry.clone(), "/registry")],
        &[],
        &[
            "--model",
            &format!("{MODEL}@staging"),
            "--registry",
            "/registry",
        ],
    );
    assert_scores_equal_evaluate(&clients(&container), "the container");
    // Byte for byte the host binary's answers on the same rows.
    let body = v1_body(&p.rows[..200]);
    let path = kiln_testkit::predict_path();
    let (code, from_host) = host.post(&path, &body).expect("host answers");
    assert_eq!(code, 200);
    let (code, from_container) = container.post(&path, &body).expect("container answers");
    assert_eq!(code, 200, "{from_container}");
    assert_eq!(
        from_container, from_host,
        "the container scores as the host binary"
    );
    drop(host);

    // SIGTERM under load: drains and exits 0 within the grace period (20 s default).
    let load = Command::new(oha_bin())
        .args(["-z", "4s", "-c", "8", "--no-tui", "-m", "POST"])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(String::from_utf8(v1_body(&p.rows[..8])).expect("utf-8"))
        .arg(format!("http://{}{path}", container.http))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("oha");
    std::thread::sleep(Duration::from_secs(1));
    let log = container.stderr();
    let started = Instant::now();
    let status = container.terminate();
    let took = started.elapsed();
    let mut load = load;
    let _ = load.wait();
    assert_eq!(status.code(), Some(0), "the container's exit: {log}");
    assert!(took < Duration::from_secs(21), "exited in {took:?}");

    // The same version from a registry on S3 (s3s-fs).
    let s3 = S3Server::start(&["models"]);
    let out = run(Command::new("cp")
        .arg("-r")
        .arg(&p.registry)
        .arg(s3.root.path().join("models/registry")));
    assert!(out.status.success(), "{}", stderr(&out));
    let from_s3 = serve_container(
        &[],
        &s3.env(),
        &[
            "--model",
            &format!("{MODEL}@staging"),
            "--registry",
            "s3://models/registry",
        ],
    );
    let (code, answer) = from_s3.post(&path, &body).expect("answers");
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer, from_container, "the S3 copy scores the same");
    let (code, _) = from_s3.admin_get("/v2/health/ready").expect("ready");
    assert_eq!(code, 200);
    assert_eq!(from_s3.terminate().code(), Some(0));
}

/// A GPG key made as a user would, in its own keyring: (GNUPGHOME, fingerprint, the
/// public key file).
fn gpg_key(dir: &Path) -> (PathBuf, String, PathBuf) {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).expect("mkdir");
    let out = run(Command::new("chmod").arg("700").arg(&home));
    assert!(out.status.success());
    let gpg = || {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", &home).args(["--batch", "--quiet"]);
        cmd
    };
    let out = run(gpg().args([
        "--passphrase",
        "",
        "--quick-gen-key",
        "Kiln CI <ci@kiln.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    assert!(out.status.success(), "gpg: {}", stderr(&out));
    let out = run(gpg().args(["--with-colons", "--list-secret-keys"]));
    let fingerprint = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| f.len() == 40))
        .expect("a fingerprint")
        .to_string();
    let public = dir.join("kiln-ci.gpg");
    let out = run(gpg()
        .arg("--output")
        .arg(&public)
        .args(["--export", &fingerprint]));
    assert!(out.status.success(), "gpg export: {}", stderr(&out));
    (home, fingerprint, public)
}

/// The node policy (containers/policy.json) with the test registry in place of the
/// production prefix and the test key in place of the CI key's path.
fn node_policy(dir: &Path, scope: &str, public: &Path) -> PathBuf {
    let text = std::fs::read_to_string(workspace_root().join("containers/policy.json"))
        .expect("containers/policy.json");
    let text = text.replace("ghcr.io/kiln-mlops", scope).replace(
        "/etc/pki/containers/kiln-ci.gpg",
        &public.display().to_string(),
    );
    let path = dir.join("policy.json");
    std::fs::write(&path, text).expect("policy");
    path
}

/// `skopeo copy` under the policy, as a node's pull would be checked.
fn pull(policy: &Path, registries_d: &Path, reference: &str, dir: &Path) -> Output {
    let dest = dir.join(format!("pulled-{}", kiln_core::uuid::from_name(reference)));
    run(skopeo(policy, registries_d)
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dest.display())))
}

#[test]
fn published_images_are_signed_carry_their_sbom_and_the_policy_refuses_the_rest() {
    images();
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = OciRegistry::start();
    let (gnupg, fingerprint, public) = gpg_key(dir.path());
    let sigstore = dir.path().join("sigstore");
    let lock = dir.path().join("images.lock");
    let scope = format!("{}/kiln", registry.host);
    let out = run(Command::new(workspace_root().join("scripts/images.sh"))
        .args(["publish", &scope, &fingerprint])
        .env("GNUPGHOME", &gnupg)
        .env("KILN_SIGSTORE", format!("file://{}", sigstore.display()))
        .env("KILN_IMAGES_LOCK", &lock));
    assert!(out.status.success(), "make publish: {}", stderr(&out));
    let pinned = xtask_lock(&lock);
    let expected: Vec<String> = kiln_testkit_images();
    assert_eq!(
        pinned.keys().cloned().collect::<Vec<_>>(),
        expected,
        "images.lock names every image"
    );

    // A node's view: the policy and the lookaside where the signatures are.
    let registries_d = dir.path().join("registries.d");
    std::fs::create_dir_all(&registries_d).expect("mkdir");
    std::fs::write(
        registries_d.join("kiln.yaml"),
        format!(
            "docker:\n  {}:\n    lookaside: file://{}\n",
            registry.host,
            sigstore.display()
        ),
    )
    .expect("registries.d");
    let policy = node_policy(dir.path(), &scope, &public);
    for (image, digest) in &pinned {
        let out = pull(
            &policy,
            &registries_d,
            &format!("{scope}/{image}@{digest}"),
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{image}@{digest} refused: {}",
            stderr(&out)
        );
        // The SBOM it carries names the crates its binary links, with licences.
        let sbom = sbom_of(image, dir.path());
        let components = sbom["components"].as_array().expect("components");
        assert!(
            components.len() > 50,
            "{image}: {} crates",
            components.len()
        );
        assert!(
            components
                .iter()
                .all(|c| c["licenses"].as_array().is_some_and(|l| !l.is_empty())),
            "{image}: a crate without a licence"
        );
        let names: Vec<&str> = components
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let package = if image == "kiln-train-cuda" {
            "kiln-train"
        } else {
            image.as_str()
        };
        assert_eq!(sbom["metadata"]["component"]["name"], package);
        // Per binary, not the workspace's union: gRPC only in the server, burn not in
        // prepare.
        match image.as_str() {
            "kiln-serve" => assert!(names.contains(&"tonic"), "{image}"),
            "kiln-train" => assert!(
                names.contains(&"burn") && !names.contains(&"tonic"),
                "{image}"
            ),
            "kiln-prepare" => assert!(
                names.contains(&"arrow") && !names.contains(&"burn") && !names.contains(&"tonic"),
                "{image}"
            ),
            _ => {}
        }
        let sbom_file = dir.path().join(format!("{image}.cdx.json"));
        std::fs::write(&sbom_file, sbom.to_string()).expect("sbom");
        let out = run(Command::new(provenance_tool("python"))
            .arg(workspace_root().join("tests/provenance/validate_bom.py"))
            .arg(&sbom_file));
        assert!(
            out.status.success(),
            "{image}'s SBOM: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }

    // An unsigned image in the same repository prefix.
    let unsigned = format!("{scope}/kiln-unsigned:1");
    let anything = dir.path().join("accept-anything.json");
    std::fs::write(
        &anything,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let out = run(skopeo(&anything, &registries_d)
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg("containers-storage:localhost/kiln-prepare:latest")
        .arg(format!("docker://{unsigned}")));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = pull(&policy, &registries_d, &unsigned, dir.path());
    assert!(!out.status.success(), "an unsigned image was accepted");
    assert!(
        stderr(&out).contains("A signature was required, but no signature exists"),
        "{}",
        stderr(&out)
    );

    // Re-tagged: kiln-prepare's signed manifest pushed as kiln-serve, its signature
    // copied along: the signature names kiln-prepare, so kiln-serve refuses it.
    let prepare = &pinned["kiln-prepare"];
    let retagged = format!("{scope}/kiln-serve:evil");
    let out = run(skopeo(&anything, &registries_d)
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{scope}/kiln-prepare@{prepare}"))
        .arg(format!("docker://{retagged}")));
    assert!(out.status.success(), "{}", stderr(&out));
    copy_signatures(
        &sigstore,
        "kiln/kiln-prepare",
        prepare,
        "kiln/kiln-serve",
        prepare,
    );
    let out = pull(&policy, &registries_d, &retagged, dir.path());
    assert!(!out.status.success(), "a re-tagged image was accepted");
    assert!(stderr(&out).contains("not accepted"), "{}", stderr(&out));

    // Altered in the registry after signing: a manifest with one annotation more, put
    // under the signed tag, with the old signatures copied to its digest.
    let manifest_path = format!("/v2/kiln/kiln-prepare/manifests/{prepare}");
    let manifest = registry_get(&registry.host, &manifest_path);
    let mut altered: Value = serde_json::from_str(&manifest).expect("manifest JSON");
    altered["annotations"] = serde_json::json!({"org.example.altered": "yes"});
    let altered_text = serde_json::to_string(&altered).expect("JSON");
    let media_type = altered["mediaType"]
        .as_str()
        .expect("mediaType")
        .to_string();
    let version = stdout(&run(Command::new("cargo").args(["xtask", "version"])))
        .trim()
        .to_string();
    let tag_path = format!("/v2/kiln/kiln-prepare/manifests/{version}");
    let out = run(Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
        ])
        .args(["--data-binary", &altered_text])
        .arg(format!("http://{}{tag_path}", registry.host)));
    assert!(out.status.success(), "PUT manifest: {}", stderr(&out));
    let altered_digest = format!(
        "sha256:{}",
        kiln_core::store::sha256_hex(altered_text.as_bytes())
    );
    copy_signatures(
        &sigstore,
        "kiln/kiln-prepare",
        prepare,
        "kiln/kiln-prepare",
        &altered_digest,
    );
    let out = pull(
        &policy,
        &registries_d,
        &format!("{scope}/kiln-prepare:{version}"),
        dir.path(),
    );
    assert!(!out.status.success(), "an altered image was accepted");
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
}

/// The lock `make publish` wrote: image → digest.
fn xtask_lock(lock: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(lock)
        .expect("images.lock")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, digest) = l.split_once(' ').expect("NAME DIGEST");
            (name.to_string(), digest.trim().to_string())
        })
        .collect()
}

/// The images `make images` builds here, by name.
fn kiln_testkit_images() -> Vec<String> {
    let out = run(Command::new(workspace_root().join("scripts/images.sh")).arg("list"));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<String> = stdout(&out).lines().map(|n| format!("kiln-{n}")).collect();
    names.sort();
    names
}

/// The SBOM an image carries at /usr/share/kiln/sbom.cdx.json (its label says where).
fn sbom_of(image: &str, dir: &Path) -> Value {
    let reference = format!("localhost/{image}:latest");
    let out = run(podman().args([
        "image",
        "inspect",
        "--format",
        "{{index .Labels \"org.kiln.sbom\"}}",
        &reference,
    ]));
    let inside = stdout(&out).trim().to_string();
    assert_eq!(inside, "/usr/share/kiln/sbom.cdx.json", "{image}'s label");
    let out = run(podman().args(["create", &reference]));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let dest = dir.join(format!("{image}.sbom.json"));
    let out = run(podman().args(["cp", &format!("{id}:{inside}")]).arg(&dest));
    let _ = run(podman().args(["rm", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&std::fs::read(&dest).expect("sbom")).expect("SBOM JSON")
}

/// Copies the lookaside signatures of `repo@digest` to `to_repo@to_digest`.
fn copy_signatures(sigstore: &Path, repo: &str, digest: &str, to_repo: &str, to_digest: &str) {
    let from = sigstore.join(format!("{repo}@{}", digest.replace(':', "=")));
    let to = sigstore.join(format!("{to_repo}@{}", to_digest.replace(':', "=")));
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn registry_get(host: &str, path: &str) -> String {
    let out = run(Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"])
        .arg(format!("http://{host}{path}")));
    assert!(out.status.success(), "GET {path}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_changed_digest_fails_the_manifest_lint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = workspace_root();
    let copy = |from: &str| {
        let out = run(Command::new("cp")
            .args(["-r", "--parents", from])
            .arg(dir.path())
            .current_dir(&root));
        assert!(out.status.success(), "{}", stderr(&out));
    };
    for path in ["argo", "infra/k8s", "images.lock"] {
        copy(path);
    }
    let check = |root: &Path| {
        run(Command::new("cargo")
            .args(["xtask", "pin-images", "--check", "--root"])
            .arg(root)
            .current_dir(workspace_root()))
    };
    let out = check(dir.path());
    assert!(
        out.status.success(),
        "the committed manifests: {}",
        stderr(&out)
    );
    let lock = xtask_lock(&dir.path().join("images.lock"));
    let serve = &lock["kiln-serve"];
    let file = dir
        .path()
        .join("infra/k8s/serving/base/inferenceservice.yaml");
    let text = std::fs::read_to_string(&file).expect("isvc");
    assert!(
        text.contains(serve.as_str()),
        "the InferenceService runs images.lock's kiln-serve"
    );
    let other = format!("sha256:{}", "1".repeat(64));
    std::fs::write(&file, text.replace(serve.as_str(), &other)).expect("write");
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("infra/k8s/serving/base/inferenceservice.yaml:")
            && stderr(&out).contains("kiln-serve is pinned to"),
        "{}",
        stderr(&out)
    );
    // `make pin-images` puts it back.
    let out = run(Command::new("cargo")
        .args(["xtask", "pin-images", "--root"])
        .arg(dir.path())
        .current_dir(workspace_root()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(check(dir.path()).status.success());
}
