//! Signed models with provenance, end to end: `kiln run` with a signing key registers
//! a version whose OMS signature the reference implementation (`model_signing`, from
//! PyPI) accepts, whose ML-BOM cyclonedx-python-lib validates as CycloneDX 1.6, and
//! which `kiln verify` and `kiln serve --verify-with` accept — and refuse once one file
//! changes, is added or is removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_testkit::{
    Server, adult_command, bin, provenance_tool, run, stderr, stdout, workspace_root,
};
use serde_json::Value;

/// Changes a copy of a bundle.
type Tamper = fn(&Path);

struct Keys {
    private: PathBuf,
    public: PathBuf,
    other_public: PathBuf,
}

/// Two P-256 key pairs made with OpenSSL, as a user would make them.
fn keys(dir: &Path) -> Keys {
    for name in ["key", "other"] {
        let private = dir.join(format!("{name}.pem"));
        let out = run(Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&private));
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run(Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(dir.join(format!("{name}.pub.pem"))));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    Keys {
        private: dir.join("key.pem"),
        public: dir.join("key.pub.pem"),
        other_public: dir.join("other.pub.pem"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn model_signing(args: &[&str], paths: &[&Path]) -> Output {
    run(Command::new(provenance_tool("model_signing"))
        .args(args)
        .args(paths))
}

/// `model_signing verify key` of a bundle folder.
fn reference_verify(bundle: &Path, public: &Path) -> Output {
    let signature = bundle.join("model.sig");
    run(Command::new(provenance_tool("model_signing"))
        .args(["verify", "key", "--signature"])
        .arg(&signature)
        .arg("--public_key")
        .arg(public)
        .arg(bundle))
}

fn kiln_verify(model: &str, registry: &Path, public: &Path) -> Output {
    run(Command::new(bin("kiln"))
        .args(["verify", model, "--json", "--registry"])
        .arg(registry)
        .arg("--public-key")
        .arg(public))
}

/// kiln-serve loading `model` with `--verify-with public` on free ports (for the
/// cases that must refuse at load).
fn serve_verifying(model: &str, public: &str) -> Command {
    let mut cmd = Command::new(bin("kiln-serve"));
    cmd.args(["--model", model, "--verify-with", public]).args([
        "--http",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--no-grpc",
    ]);
    cmd
}

fn one_line(out: &Output) -> String {
    let text = stderr(out);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {text}");
    lines[0].to_string()
}

fn sha256_file(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    stdout(&out)
        .split_whitespace()
        .next()
        .expect("sha256")
        .to_string()
}

#[test]
fn a_signed_version_verifies_with_model_signing_and_kiln_and_any_change_is_refused_by_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = keys(dir.path());
    let run_dir = dir.path().join("runs/adult");
    let registry = dir.path().join("runs/registry");
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2"])
        .env("KILN_SIGNING_KEY", &keys.private));
    assert!(out.status.success(), "kiln run: {}", stderr(&out));
    let bundle = registry.join("adult-income/versions/1/model");
    assert!(bundle.join("model.sig").exists(), "the version is signed");

    // The reference implementation accepts what Kiln signed; so does `kiln verify`.
    let out = reference_verify(&bundle, &keys.public);
    assert!(out.status.success(), "model_signing: {}", stderr(&out));
    let out = kiln_verify("adult-income@staging", &registry, &keys.public);
    assert!(out.status.success(), "kiln verify: {}", stderr(&out));
    let verified: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(verified["method"], "key");
    assert_eq!(verified["curve"], "P-256");
    let files: Vec<&str> = verified["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in [
        "model.bin",
        "metadata.json",
        "transform.json",
        "decision_policy.json",
    ] {
        assert!(files.contains(&file), "{file} is signed: {files:?}");
    }
    // Another key is refused.
    let out = kiln_verify("adult-income@staging", &registry, &keys.other_public);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("signed by another key"));

    // One changed, added or removed file: both verifiers refuse, Kiln naming it.
    let cases: [(&str, &str, Tamper); 3] = [
        ("changed", "model.bin", |b| {
            let mut bytes = std::fs::read(b.join("model.bin")).expect("read");
            bytes[100] ^= 1;
            std::fs::write(b.join("model.bin"), bytes).expect("write");
        }),
        ("added", "notes.txt", |b| {
            std::fs::write(b.join("notes.txt"), "hello").expect("write");
        }),
        ("removed", "metadata.json", |b| {
            std::fs::remove_file(b.join("metadata.json")).expect("remove");
        }),
    ];
    for (what, file, tamper) in cases {
        let copy = dir.path().join(format!("tampered-{what}"));
        copy_dir(&bundle, &copy);
        tamper(&copy);
        let out = reference_verify(&copy, &keys.public);
        assert!(
            !out.status.success(),
            "model_signing accepted a {what} file"
        );
        let out = kiln_verify(copy.to_str().expect("path"), &registry, &keys.public);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let line = one_line(&out);
        assert!(
            line.contains(&format!("{file} was {what}"))
                || line.contains(&format!("{file} {what}")),
            "{what}: {line}"
        );
    }

    // A bundle signed by `model_signing sign key` is accepted by `kiln verify`.
    let theirs = dir.path().join("signed-by-model-signing");
    copy_dir(&bundle, &theirs);
    std::fs::remove_file(theirs.join("model.sig")).expect("remove");
    let signature = theirs.join("model.sig");
    let out = model_signing(
        &[
            "sign",
            "key",
            "--signature",
            signature.to_str().expect("path"),
            "--private_key",
            keys.private.to_str().expect("path"),
        ],
        &[&theirs],
    );
    assert!(out.status.success(), "model_signing sign: {}", stderr(&out));
    let out = kiln_verify(theirs.to_str().expect("path"), &registry, &keys.public);
    assert!(
        out.status.success(),
        "kiln verify of model_signing's signature: {}",
        stderr(&out)
    );

    // kiln serve --verify-with: serves the signed version; refuses a tampered one
    // and an unsigned bundle at load, in one line naming the file.
    let public = keys.public.to_str().expect("path").to_string();
    let registry_arg = registry.to_str().expect("path").to_string();
    let server = Server::launch(
        &[
            "--model",
            "adult-income@staging",
            "--registry",
            &registry_arg,
            "--verify-with",
            &public,
        ],
        &[],
    );
    let (status, _) = server.get("/v2/models/adult-income/ready").expect("ready");
    assert_eq!(status, 200);
    assert_eq!(server.terminate().code(), Some(0));
    let refused = |model: &Path| run(&mut serve_verifying(model.to_str().expect("path"), &public));
    let out = refused(&dir.path().join("tampered-changed"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("model.bin changed since it was signed"));
    let out = refused(&run_dir.join("train/model"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("unsigned: no model.sig"));

    // The ML-BOM: valid CycloneDX 1.6, with the data, metrics, fairness results and
    // signature of this version.
    let bom_path = registry.join("adult-income/versions/1/bom.cdx.json");
    let out = run(Command::new(provenance_tool("python"))
        .arg(workspace_root().join("tests/provenance/validate_bom.py"))
        .arg(&bom_path));
    assert!(
        out.status.success(),
        "CycloneDX 1.6: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&bom_path).expect("bom"),
        std::fs::read(run_dir.join("register/bom.cdx.json")).expect("the run's copy"),
        "the run keeps a copy of the registered BOM"
    );
    let bom: Value = serde_json::from_slice(&std::fs::read(&bom_path).expect("bom")).expect("JSON");
    let components = bom["components"].as_array().expect("components");
    let model = &components[0];
    assert_eq!(model["type"], "machine-learning-model");
    assert_eq!(model["version"], "1");
    let adult = kiln_testkit::adult_dir();
    for file in ["adult.data", "adult.test"] {
        let data = components
            .iter()
            .find(|c| c["type"] == "data" && c["name"] == file)
            .unwrap_or_else(|| panic!("{file} is a dataset of the BOM"));
        assert_eq!(
            data["hashes"][0]["content"],
            sha256_file(&adult.join(file)),
            "{file}"
        );
        assert!(
            model["modelCard"]["modelParameters"]["datasets"]
                .as_array()
                .expect("datasets")
                .iter()
                .any(|d| d["ref"] == data["bom-ref"]),
            "the model card names {file}"
        );
    }
    let metrics: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("evaluate/metrics.json")).expect("metrics"),
    )
    .expect("JSON");
    let auc = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["type"] == "roc_auc")
        .expect("roc_auc");
    let reported: f64 = auc["value"]
        .as_str()
        .expect("value")
        .parse()
        .expect("number");
    assert!((reported - metrics["roc_auc"].as_f64().expect("auc")).abs() < 1e-12);
    let groups: Vec<&str> = model["modelCard"]["considerations"]["fairnessAssessments"]
        .as_array()
        .expect("fairness")
        .iter()
        .filter_map(|f| f["groupAtRisk"].as_str())
        .collect();
    assert!(
        groups.contains(&"sex=Female") && groups.contains(&"sex=Male"),
        "{groups:?}"
    );
    let signature = &model["externalReferences"][0];
    assert_eq!(signature["type"], "digital-signature");
    assert!(
        signature["url"]
            .as_str()
            .expect("url")
            .ends_with("/model/model.sig")
    );
    assert_eq!(
        signature["hashes"][0]["content"],
        sha256_file(&bundle.join("model.sig"))
    );
    let burn = components
        .iter()
        .find(|c| c["type"] == "library" && c["name"] == "burn")
        .expect("burn trained it");
    assert!(
        burn["purl"]
            .as_str()
            .expect("purl")
            .starts_with("pkg:cargo/burn@")
    );
    assert!(
        !components
            .iter()
            .any(|c| c["name"] == "kiln-testkit" || c["name"] == "cudarc"),
        "only what the train binary links"
    );

    // The same registration into a registry on S3 (s3s-fs): the signature and the BOM
    // are written there; both verifiers accept it (model_signing reads the bucket's
    // files on disk), and kiln-serve loads it from S3 after verifying it.
    let s3 = kiln_testkit::S3Server::start(&["models"]);
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2", "-q"])
        .args(["--set", "registry.local_uri=s3://models/registry"])
        .env("KILN_SIGNING_KEY", &keys.private)
        .envs(s3.env()));
    assert!(out.status.success(), "kiln run to S3: {}", stderr(&out));
    let on_disk = s3
        .root
        .path()
        .join("models/registry/adult-income/versions/1");
    assert!(on_disk.join("bom.cdx.json").exists(), "the BOM is on S3");
    let out = reference_verify(&on_disk.join("model"), &keys.public);
    assert!(out.status.success(), "model_signing, S3: {}", stderr(&out));
    let out = run(Command::new(bin("kiln"))
        .args([
            "verify",
            "s3://models/registry/adult-income/versions/1/model",
        ])
        .arg("--public-key")
        .arg(&keys.public)
        .envs(s3.env()));
    assert!(out.status.success(), "kiln verify, S3: {}", stderr(&out));
    let server = Server::launch(
        &[
            "--model",
            "s3://models/registry/adult-income/versions/1/model",
            "--verify-with",
            &public,
        ],
        &s3.env(),
    );
    assert_eq!(server.terminate().code(), Some(0));
    std::fs::write(on_disk.join("model/extra.bin"), "x").expect("write");
    let out = run(serve_verifying(
        "s3://models/registry/adult-income/versions/1/model",
        &public,
    )
    .envs(s3.env()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("extra.bin was added after signing"));

    // The run report summarises the BOM.
    let report = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    let section = &report[report.find("<h3>ML-BOM</h3>").expect("an ML-BOM section")..];
    assert!(section.contains("signed (OMS v1.0"), "{section}");
    assert!(section.contains("adult.data") && section.contains("adult.test"));

    // A key that cannot be read stops registration in one line, exit 2.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").expect("write");
    let out = run(adult_command(&bin("kiln"), Some("run"), &run_dir)
        .args(["--set", "train.epochs=2", "-q"])
        .env("KILN_SIGNING_KEY", &garbage));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("KILN_SIGNING_KEY"));
}
