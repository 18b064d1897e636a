//! The deploy path, offline: the deploy WorkflowTemplate validates against Argo's
//! schema (broken copies fail) and retries only exit 75; the patches `kiln rollout`
//! sends to the prod InferenceService are exactly the ones shown here and leave it
//! valid against KServe's CRD (a wrong type fails); the workflow's staging patch fits
//! the rendered staging overlay; and the cluster make targets fail with one line and
//! exit 2 when kubectl, a context or terraform is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_rollout::router::patch::json_patch;
use kiln_testkit::manifests::{check_argo, lint};
use kiln_testkit::{bin, run, stderr, stdout, workspace_root};
use serde_json::{Value, json};

fn check_crd(files: &[PathBuf]) -> Output {
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    lint("crd", &refs)
}

fn render(overlay: &str, dir: &Path) -> PathBuf {
    let out = run(Command::new("kubectl").arg("kustomize").arg(
        workspace_root()
            .join("infra/k8s/serving/overlays")
            .join(overlay),
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join(format!("{overlay}.yaml"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn inference_service(rendered: &Path) -> Value {
    let text = std::fs::read_to_string(rendered).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|d: &Value| d["kind"] == "InferenceService")
        .expect("an InferenceService")
}

#[test]
fn the_deploy_workflow_validates_retries_only_75_and_broken_copies_fail() {
    let file = workspace_root().join("argo/kiln-deploy.yaml");
    let out = check_argo(std::slice::from_ref(&file));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let templates = template["spec"]["templates"].as_array().unwrap();
    let steps: Vec<&str> = templates[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0]["template"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["pin-staging", "smoke", "rollout"]);
    for t in templates.iter().filter(|t| t.get("container").is_some()) {
        assert_eq!(
            t["retryStrategy"]["expression"], "asInt(lastRetry.exitCode) == 75",
            "{}",
            t["name"]
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    for (what, from, to) in [
        (
            "a misspelled field",
            "mergeStrategy: json",
            "mergeStrategi: json",
        ),
        (
            "a wrong type",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: sure",
        ),
        (
            "an unknown retry field",
            "retryPolicy: Always",
            "retryPolicies: Always",
        ),
    ] {
        assert!(text.contains(from), "{what}: `{from}` not in the template");
        let broken = tmp.path().join("broken.yaml");
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let out = check_argo(std::slice::from_ref(&broken));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what} passed: {}",
            stdout(&out)
        );
        assert!(
            stdout(&out).contains("broken.yaml: WorkflowTemplate"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn the_rollout_patches_are_exact_and_keep_the_inference_service_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let rendered = render("prod", tmp.path());
    let out_dir = tmp.path().join("patches");
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "patches", "--isvc-file"])
        .arg(&rendered)
        .args(["--version", "7", "--out-dir"])
        .arg(&out_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out_dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(
        read("canary.json-patch.json"),
        json!([
            {"op": "test", "path": "/spec/predictor/containers/0/args/0", "value": "--model=models:/adult-income@production"},
            {"op": "replace", "path": "/spec/predictor/containers/0/args/0", "value": "--model=models:/adult-income/7"},
            {"op": "add", "path": "/metadata/annotations/kiln.dev~1rollout-pin", "value": "{\"model\":\"models:/adult-income/7\"}"},
            {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}
        ])
    );
    assert_eq!(
        read("promote.merge-patch.json"),
        json!({"spec": {"predictor": {"canaryTrafficPercent": 100}}})
    );
    assert_eq!(
        read("rollback.merge-patch.json"),
        json!({"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    );
    let after = |name: &str| out_dir.join(name);
    let results = [
        after("after-canary.json"),
        after("after-promote.json"),
        after("after-rollback.json"),
    ];
    let out = check_crd(&results);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        read("after-canary.json")["spec"]["predictor"]["canaryTrafficPercent"],
        10
    );
    assert_eq!(
        read("after-rollback.json")["spec"]["predictor"]["canaryTrafficPercent"],
        0
    );
    // The CRD check bites on a patch with the wrong type.
    let mut broken = read("after-canary.json");
    broken["spec"]["predictor"]["canaryTrafficPercent"] = json!("ten");
    let path = tmp.path().join("broken.json");
    std::fs::write(&path, broken.to_string()).unwrap();
    let out = check_crd(&[path]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("'ten' is not of type 'integer'"),
        "{}",
        stdout(&out)
    );
    // An InferenceService without kiln-serve's --model is refused by name.
    let mut other = inference_service(&rendered);
    other["spec"]["predictor"]["containers"][0]["args"] = json!(["--http=0.0.0.0:8080"]);
    let path = tmp.path().join("other.json");
    std::fs::write(&path, other.to_string()).unwrap();
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "patches", "--isvc-file"])
        .arg(&path)
        .args(["--version", "7"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sets no --model argument"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_workflows_staging_patch_fits_the_staging_overlay() {
    let tmp = tempfile::tempdir().unwrap();
    let mut isvc = inference_service(&render("staging", tmp.path()));
    let template: Value = serde_norway::from_str(
        &std::fs::read_to_string(workspace_root().join("argo/kiln-deploy.yaml")).unwrap(),
    )
    .unwrap();
    let pin = template["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pin-staging")
        .unwrap();
    let flags = pin["resource"]["flags"].as_array().unwrap();
    assert_eq!(flags[0], "inferenceservice");
    let manifest = pin["resource"]["manifest"]
        .as_str()
        .unwrap()
        .replace("{{workflow.parameters.model}}", "adult-income")
        .replace("{{workflow.parameters.version}}", "7");
    let patch: Value = serde_norway::from_str(&manifest).unwrap();
    // The staging InferenceService's name is the workflow's default.
    let defaults = template["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap();
    let default = |n: &str| defaults.iter().find(|p| p["name"] == n).unwrap()["value"].clone();
    assert_eq!(isvc["metadata"]["name"], default("staging-isvc"));
    assert_eq!(isvc["metadata"]["namespace"], default("namespace"));
    json_patch(&mut isvc, &patch).expect("the workflow's patch applies to the rendered overlay");
    assert_eq!(
        isvc["spec"]["predictor"]["containers"][0]["args"][0],
        "--model=models:/adult-income/7"
    );
    let path = tmp.path().join("pinned.json");
    std::fs::write(&path, isvc.to_string()).unwrap();
    let out = check_crd(&[path]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

fn make(target: &str, env: &[(&str, &str)]) -> Output {
    run(Command::new("make")
        .args(["--no-print-directory", target])
        .current_dir(workspace_root())
        .envs(env.iter().copied()))
}

fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    run(Command::new(workspace_root().join("scripts").join(name))
        .args(args)
        .envs(env.iter().copied()))
}

#[test]
fn cluster_targets_name_what_is_missing_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let empty = empty.to_str().unwrap();
    for (script_args, env, needle) in [
        (
            ("deploy-k8s.sh", vec!["prod"]),
            vec![("KUBECTL", "/nonexistent/kubectl")],
            "make deploy-prod: kubectl not found",
        ),
        (
            ("deploy-k8s.sh", vec!["staging"]),
            vec![("KUBECONFIG", empty)],
            "make deploy-staging: kubectl has no current context",
        ),
        (
            ("infra.sh", vec!["plan"]),
            vec![("TERRAFORM", "/nonexistent/terraform")],
            "make infra-plan: terraform not found",
        ),
        (
            ("infra.sh", vec!["init"]),
            vec![("TF_STATE_BUCKET", "")],
            "make infra-init: set TF_STATE_BUCKET",
        ),
        (
            ("infra.sh", vec!["destroy"]),
            vec![("TF_VARS_FILE", "/nonexistent/kiln.tfvars")],
            "make infra-destroy: no variables file /nonexistent/kiln.tfvars",
        ),
        (
            ("rollback.sh", vec![]),
            vec![
                ("KILN", "kiln"),
                ("KILN_CLUSTER", "1"),
                ("KUBECONFIG", empty),
            ],
            "make rollback: kubectl has no current context",
        ),
    ] {
        let (name, args) = script_args;
        let out = script(name, &args, &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} {args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // And through make, the same line.
    let out = make("deploy-prod", &[("KUBECTL", "/nonexistent/kubectl")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("make deploy-prod: kubectl not found"),
        "{}",
        stderr(&out)
    );
    let out = make("infra-apply", &[("TERRAFORM", "/nonexistent/terraform")]);
    assert!(
        stderr(&out).contains("make infra-apply: terraform not found"),
        "{}",
        stderr(&out)
    );
}

/// `make deploy-*` pins what it applies: the rendered overlay's alias resolved to the
/// version it points at and that version's bundle digest, still valid against KServe's
/// CRD; an alias that points nowhere is one line and exit 2.
#[test]
fn the_rendered_inference_service_pins_a_version_and_its_bundle_digest() {
    let p = kiln_testkit::pipeline();
    let dir = tempfile::tempdir().unwrap();
    let rendered = render("staging", dir.path());
    let before = inference_service(&rendered);
    let args = before["spec"]["predictor"]["containers"][0]["args"].clone();
    assert_eq!(args[0], "--model=models:/adult-income@staging", "{args}");
    let pinned = dir.path().join("pinned.yaml");
    let registry = p.registry.to_str().unwrap();
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "pin"])
        .arg(&rendered)
        .arg("--out")
        .arg(&pinned)
        .args(["--registry", registry])
        .env_remove("MLFLOW_TRACKING_URI"));
    assert!(out.status.success(), "{}", stderr(&out));
    let record: Value = serde_json::from_slice(
        &std::fs::read(p.registry.join("adult-income/versions/1/version.json")).unwrap(),
    )
    .unwrap();
    let digest = record["tags"]["kiln.bundle_sha256"].as_str().unwrap();
    let isvc = inference_service(&pinned);
    let args = isvc["spec"]["predictor"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(args[0], "--model=models:/adult-income/1");
    assert!(
        args.contains(&json!(format!("--bundle-sha256={digest}"))),
        "{args:?}"
    );
    // The server verifies the model's signature with the platform's public key,
    // mounted read-only from its ConfigMap.
    let key_path = "/etc/kiln/model-signing/signing.pub.pem";
    assert!(
        args.contains(&json!(format!("--verify-with={key_path}"))),
        "{args:?}"
    );
    let predictor = &isvc["spec"]["predictor"];
    let mount = predictor["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "model-signing")
        .expect("the signing key is mounted");
    assert_eq!(mount["mountPath"], "/etc/kiln/model-signing");
    assert_eq!(mount["readOnly"], true);
    let volume = predictor["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "model-signing")
        .expect("the signing key's volume");
    assert_eq!(volume["configMap"]["name"], "kiln-model-signing");
    assert_eq!(volume["configMap"]["items"][0]["path"], "signing.pub.pem");
    // Every other document is carried over.
    let count = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("kind:"))
            .count()
    };
    assert_eq!(count(&pinned), count(&rendered));
    let isvc_file = dir.path().join("pinned-isvc.json");
    std::fs::write(&isvc_file, isvc.to_string()).unwrap();
    let out = check_crd(std::slice::from_ref(&isvc_file));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The prod overlay's alias is not set in this registry: exit 2, one line.
    let prod = render("prod", dir.path());
    let out = run(Command::new(bin("kiln"))
        .args(["rollout", "pin"])
        .arg(&prod)
        .args(["--registry", registry])
        .env_remove("MLFLOW_TRACKING_URI"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("alias `production`"), "{e}");
}
