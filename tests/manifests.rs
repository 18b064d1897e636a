//! Offline checks of the deployment manifests: the Argo template and workflow validate
//! against Argo's schema with unknown fields rejected and their references resolve
//! (the tune fan-out's outputs, inputs and recursion), a broken copy fails, and the
//! template's DAG runs the steps in the order `kiln run` uses. Then every other kind of
//! deployment file (`tests/manifests/lint.sh`: Kubernetes manifests, Dockerfiles,
//! Terraform, the GitHub workflow, the Feast definitions) passes its checks, and a
//! deliberately broken copy of each fails them: the checks bite.

use std::path::PathBuf;
use std::process::Command;

use kiln_testkit::manifests::{check_argo, lint};
use kiln_testkit::{python, run, stderr, stdout, workspace_root};

#[test]
fn argo_manifests_validate_and_a_typo_fails() {
    let root = workspace_root();
    let files = [
        root.join("argo/kiln-pipeline.yaml"),
        root.join("argo/workflow-adult.yaml"),
    ];
    let out = check_argo(&files);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let tmp = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(&files[0]).unwrap();
    for (what, from, to, needle) in [
        (
            "a typo'd field",
            "activeDeadlineSeconds: 3600",
            "activeDeadLineSeconds: 3600",
            "activeDeadLineSeconds",
        ),
        (
            "a wrong type",
            "runAsNonRoot: true\n    runAsUser: 65532",
            "runAsNonRoot: yes-please\n    runAsUser: 65532",
            "yes-please",
        ),
        (
            "an unknown template field",
            "      retryStrategy:\n        limit: \"3\"",
            "      retryStrategy:\n        limits: \"3\"",
            "limits",
        ),
        // The tune fan-out's references, which the schema cannot see.
        (
            "a fan-out over an output the planner lacks",
            "withParam: \"{{steps.plan.outputs.parameters.trials}}\"",
            "withParam: \"{{steps.plan.outputs.parameters.trial}}\"",
            "template tune-plan has no output trial",
        ),
        (
            "rounds that recurse without end",
            "            template: tune-rounds\n            when: \"{{steps.plan.outputs.parameters.last}} == false\"\n",
            "            template: tune-rounds\n",
            "calls its own template without a `when`",
        ),
        (
            "a trial pod reading an undeclared input",
            "\"{{inputs.parameters.index}}\"",
            "\"{{inputs.parameters.trial}}\"",
            "{{inputs.parameters.trial}} is not an input",
        ),
    ] {
        assert!(
            template.contains(from),
            "{what}: `{from}` not in the template"
        );
        let broken = tmp.path().join("broken.yaml");
        std::fs::write(&broken, template.replacen(from, to, 1)).unwrap();
        let out = check_argo(&[broken]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what} passed: {}",
            stdout(&out)
        );
        let text = stdout(&out);
        assert!(
            text.contains("broken.yaml: WorkflowTemplate") && text.contains(needle),
            "{what}: `{needle}` not in {text}"
        );
    }
}

#[test]
fn the_argo_dag_runs_the_steps_in_kiln_run_order() {
    let text = std::fs::read_to_string(workspace_root().join("argo/kiln-pipeline.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let templates = doc["spec"]["templates"].as_sequence().unwrap();
    let dag = templates.iter().find(|t| t["name"] == "pipeline").unwrap();
    let tasks = dag["dag"]["tasks"].as_sequence().unwrap();
    // (task, its step, what it depends on)
    let mut pending: Vec<(String, String, Vec<String>)> = tasks
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap().to_string();
            let step = t["arguments"]["parameters"]
                .as_sequence()
                .and_then(|p| p.iter().find(|p| p["name"] == "step"))
                .and_then(|p| p["value"].as_str())
                .unwrap_or(t["template"].as_str().unwrap())
                .to_string();
            let depends = t["depends"]
                .as_str()
                .map(|d| d.split("&&").map(|s| s.trim().to_string()).collect())
                .unwrap_or_default();
            (name, step, depends)
        })
        .collect();
    // Kahn's algorithm; the DAG must be a chain for the order to be unique.
    let mut order = Vec::new();
    let mut done: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].2.iter().all(|d| done.contains(d)))
            .collect();
        assert_eq!(ready.len(), 1, "the DAG is not a single chain at {done:?}");
        let (name, step, _) = pending.remove(ready[0]);
        done.push(name);
        order.push(step);
    }
    assert_eq!(
        order,
        kiln_cli::step_names(),
        "argo/kiln-pipeline.yaml and `kiln run` disagree"
    );
    // Every step runs its own image, by the digest images.lock pins (never a tag): the
    // DAG hands each `step` template its `kiln-<step>@sha256:…`. Train runs
    // kiln-train-cuda on the GPU nodes, the one image referenced by tag until a publish
    // that builds it pins it (xtask/src/images.rs, UNPINNED).
    let text = std::fs::read_to_string(workspace_root().join("argo/kiln-pipeline.yaml")).unwrap();
    let lock = std::fs::read_to_string(workspace_root().join("images.lock")).unwrap();
    for step in kiln_cli::step_names().into_iter().filter(|s| *s != "train") {
        let image = format!("kiln-{step}");
        let digest = lock
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{image} ")))
            .unwrap_or_else(|| panic!("{image} is not in images.lock"));
        assert!(
            text.contains(&format!("{image}@{digest}")),
            "argo/kiln-pipeline.yaml does not run {image}@{digest}"
        );
    }
    assert!(!text.contains("image-tag"), "no image is chosen by tag");
}

/// Writes a copy of `file` with `from` replaced by `to` (which must be there) into `dir`.
fn broken_copy(file: &str, from: &str, to: &str, dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
    assert!(text.contains(from), "`{from}` is not in {file}");
    let name = std::path::Path::new(file).file_name().unwrap();
    let copy = dir.join(name);
    std::fs::write(&copy, text.replacen(from, to, 1)).unwrap();
    copy
}

fn assert_passes(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed its checks:\n{}{}",
        stdout(out),
        stderr(out)
    );
}

fn assert_fails_with(out: &std::process::Output, what: &str, needle: &str) {
    let text = format!("{}{}", stdout(out), stderr(out));
    assert!(!out.status.success(), "{what} passed its checks:\n{text}");
    assert!(
        text.contains(needle),
        "{what}: expected `{needle}` in:\n{text}"
    );
}

#[test]
fn kubernetes_manifests_pass_and_a_wrong_type_fails() {
    let manifest = workspace_root().join("infra/k8s/ml-platform.yaml");
    assert_passes(&lint("k8s", &[&manifest]), "infra/k8s/ml-platform.yaml");
    let tmp = tempfile::tempdir().unwrap();
    // kubernetes-validate --strict: an integer field given a string.
    let broken = broken_copy(
        "infra/k8s/ml-platform.yaml",
        "replicas: 2",
        "replicas: two",
        tmp.path(),
    );
    assert_fails_with(
        &lint("k8s", &[&broken]),
        "a Deployment with replicas: two",
        "replicas",
    );
    // checkov: a container allowed to escalate privileges.
    let broken = broken_copy(
        "infra/k8s/ml-platform.yaml",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
        tmp.path(),
    );
    assert_fails_with(
        &lint("k8s", &[&broken]),
        "privilege escalation",
        "CKV_K8S_20",
    );
}

#[test]
fn dockerfiles_pass_and_one_running_as_root_fails() {
    let root = workspace_root();
    let names = [
        "containers/Dockerfile",
        "containers/train-cuda.Dockerfile",
        "containers/serve.Dockerfile",
    ];
    let files: Vec<PathBuf> = names.iter().map(|n| root.join(n)).collect();
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    assert_passes(&lint("docker", &paths), "the Dockerfiles");
    let tmp = tempfile::tempdir().unwrap();
    for file in names {
        let broken = broken_copy(file, "USER 65532:65532", "USER root", tmp.path());
        // hadolint DL3002: the last USER must not be root.
        assert_fails_with(&lint("docker", &[&broken]), file, "DL3002");
    }
}

#[test]
fn the_inference_service_fits_kserves_crd_and_broken_copies_fail() {
    let file = "infra/k8s/serving/base/inferenceservice.yaml";
    let manifest = workspace_root().join(file);
    assert_passes(&lint("crd", &[&manifest]), file);
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, needle) in [
        // A misspelled field is unknown to the CRD.
        (
            "scaleTarget: 64",
            "scaleTargt: 64",
            "'scaleTargt' was unexpected",
        ),
        // A wrong type.
        (
            "minReplicas: 1",
            "minReplicas: one",
            "'one' is not of type 'integer'",
        ),
        // A misspelled probe field deep in the container.
        (
            "periodSeconds: 5",
            "periodSecond: 5",
            "'periodSecond' was unexpected",
        ),
        // A kind no CRD defines.
        (
            "kind: InferenceService",
            "kind: InferenceServices",
            "no CRD defines InferenceServices",
        ),
    ] {
        let broken = broken_copy(file, from, to, tmp.path());
        assert_fails_with(&lint("crd", &[&broken]), to, needle);
    }
}

#[test]
fn terraform_passes_and_a_public_bucket_fails() {
    let dir = workspace_root().join("infra/terraform");
    assert_passes(&lint("terraform", &[&dir]), "infra/terraform");
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let s3 = std::fs::read_to_string(tmp.path().join("s3.tf")).unwrap();
    let block = "block_public_acls       = true\n  block_public_policy     = true";
    assert!(s3.contains(block), "the buckets' public access block moved");
    std::fs::write(
        tmp.path().join("s3.tf"),
        s3.replacen(
            block,
            "block_public_acls       = false\n  block_public_policy     = false",
            1,
        ),
    )
    .unwrap();
    // checkov CKV_AWS_53/54: public ACLs and policies no longer blocked.
    assert_fails_with(
        &lint("terraform", &[tmp.path()]),
        "a public artifact bucket",
        "CKV_AWS_53",
    );
}

#[test]
fn the_github_workflow_passes_and_a_typo_fails() {
    let file = workspace_root().join(".github/workflows/ml-ci.yml");
    assert_passes(&lint("workflow", &[&file]), "ml-ci.yml");
    let tmp = tempfile::tempdir().unwrap();
    let broken = broken_copy(
        ".github/workflows/ml-ci.yml",
        "timeout-minutes: 90",
        "timeout-minute: 90",
        tmp.path(),
    );
    assert_fails_with(
        &lint("workflow", &[&broken]),
        "a typo'd job key",
        "timeout-minute",
    );
    let broken = broken_copy(
        ".github/workflows/ml-ci.yml",
        "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2",
        "actions/checkout@v6",
        tmp.path(),
    );
    assert_fails_with(
        &lint("workflow", &[&broken]),
        "an action pinned by tag",
        "not pinned to a commit SHA",
    );
}

#[test]
fn feast_definitions_match_the_prepared_table() {
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let out = run(Command::new(kiln_testkit::bin("kiln"))
        .args(["prepare", "--spec"])
        .arg(root.join("examples/adult/spec.yaml"))
        .arg("--run")
        .arg(tmp.path().join("run"))
        .arg("-q")
        .env("KILN_ADULT_DIR", kiln_testkit::adult_dir()));
    assert_passes(&out, "kiln prepare");
    let table = tmp.path().join("run/prepare/train.parquet");
    let check = |features: &std::path::Path| {
        run(Command::new(python())
            .arg(root.join("tests/manifests/check_feast.py"))
            .arg(features)
            .arg(&table))
    };
    assert_passes(
        &check(&root.join("feature_store/features.py")),
        "features.py",
    );
    let broken = broken_copy(
        "feature_store/features.py",
        "Field(name=\"hours-per-week\", dtype=Int64)",
        "Field(name=\"hours_per_week\", dtype=Int64)",
        tmp.path(),
    );
    assert_fails_with(
        &check(&broken),
        "a field that is not a column",
        "hours_per_week",
    );
    let broken = broken_copy(
        "feature_store/features.py",
        "Field(name=\"age\", dtype=Int64)",
        "Field(name=\"age\", dtype=String)",
        tmp.path(),
    );
    assert_fails_with(
        &check(&broken),
        "a field of the wrong type",
        "`age` is String",
    );
}

#[test]
fn prometheus_keeps_the_30_day_slo_window_and_a_shorter_retention_fails() {
    let values = "infra/helm/kube-prometheus-stack-values.yaml";
    let script = "scripts/metrics.sh";
    for file in [values, script] {
        assert_passes(&lint("retention", &[&workspace_root().join(file)]), file);
    }
    let tmp = tempfile::tempdir().unwrap();
    for (file, from, to, needle) in [
        (
            values,
            "retention: 35d",
            "retention: 30d",
            "is 30d, under 35d",
        ),
        (
            values,
            "retention: 35d",
            "retention: 5 weeks",
            "not a Prometheus duration",
        ),
        (
            values,
            "    retention: 35d\n",
            "",
            "no prometheus.prometheusSpec.retention",
        ),
        (
            script,
            "--storage.tsdb.retention.time=35d",
            "--storage.tsdb.retention.time=720h",
            "is 720h, under 35d",
        ),
        (
            script,
            " --storage.tsdb.retention.time=35d",
            "",
            "no --storage.tsdb.retention.time",
        ),
    ] {
        let broken = broken_copy(file, from, to, tmp.path());
        assert_fails_with(&lint("retention", &[&broken]), to, needle);
    }
}

#[test]
fn the_prometheus_rule_fits_the_operators_crd_and_broken_copies_fail() {
    let file = "infra/k8s/monitoring/prometheusrule.yaml";
    assert_passes(&lint("crd", &[&workspace_root().join(file)]), file);
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, needle) in [
        // A duration the operator's pattern refuses.
        ("for: 2m", "for: 2 minutes", "does not match"),
        // A misspelled rule field.
        (
            "    - record: slo:objective:ratio",
            "    - recrd: slo:objective:ratio",
            "'recrd' was unexpected",
        ),
        // A wrong type for a label value.
        (
            "sloth_severity: page",
            "sloth_severity: [page]",
            "is not of type 'string'",
        ),
    ] {
        let broken = broken_copy(file, from, to, tmp.path());
        assert_fails_with(&lint("crd", &[&broken]), to, needle);
    }
}

#[test]
fn the_dashboards_fit_grafanas_schemas_and_broken_copies_fail() {
    let files: Vec<PathBuf> = ["kiln-serving", "kiln-slos", "kiln-pipeline", "kiln-gpu"]
        .iter()
        .map(|d| workspace_root().join(format!("monitoring/grafana/dashboards/{d}.json")))
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    assert_passes(&lint("dashboards", &refs), "the dashboards");
    let file = "monitoring/grafana/dashboards/kiln-serving.json";
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, needle) in [
        // A misspelled dashboard field.
        (
            "\"schemaVersion\": 41",
            "\"schemaVersoin\": 41",
            "'schemaVersoin' was unexpected",
        ),
        // A wrong type in a panel's grid position.
        ("\"h\": 4,", "\"h\": \"four\",", "is not of type 'integer'"),
        // A legend mode the timeseries panel does not know.
        (
            "\"displayMode\": \"list\"",
            "\"displayMode\": \"lists\"",
            "'lists' is not one of",
        ),
        // A misspelled query field.
        (
            "\"legendFormat\"",
            "\"legendFromat\"",
            "'legendFromat' was unexpected",
        ),
    ] {
        let broken = broken_copy(file, from, to, tmp.path());
        assert_fails_with(&lint("dashboards", &[&broken]), to, needle);
    }
}

/// The pipeline dashboard reads what the WorkflowTemplate emits: every step template
/// has both template metrics, and the dashboard queries them under Argo's prefix.
#[test]
fn pipeline_steps_emit_the_metrics_the_pipeline_dashboard_reads() {
    let template: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(workspace_root().join("argo/kiln-pipeline.yaml")).unwrap(),
    )
    .unwrap();
    let dashboard = std::fs::read_to_string(
        workspace_root().join("monitoring/grafana/dashboards/kiln-pipeline.json"),
    )
    .unwrap();
    for name in ["step", "train"] {
        let t = template["spec"]["templates"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap();
        let metrics: Vec<&str> = t["metrics"]["prometheus"]
            .as_sequence()
            .unwrap_or_else(|| panic!("template {name} has no metrics"))
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            metrics,
            ["kiln_step_duration_seconds", "kiln_step_results_total"],
            "{name}"
        );
    }
    for series in [
        "argo_workflows_kiln_step_duration_seconds_bucket",
        "argo_workflows_kiln_step_results_total",
    ] {
        assert!(
            dashboard.contains(series),
            "the pipeline dashboard does not read {series}"
        );
    }
}

/// A copy of infra/k8s/serving with `from` replaced by `to` in one file.
fn broken_serving(file: &str, from: &str, to: &str, dir: &std::path::Path) -> PathBuf {
    let source = workspace_root().join("infra/k8s/serving");
    let copy = dir.join("serving");
    for entry in ["base", "overlays/dev", "overlays/staging", "overlays/prod"] {
        std::fs::create_dir_all(copy.join(entry)).unwrap();
        for f in std::fs::read_dir(source.join(entry)).unwrap().flatten() {
            std::fs::copy(f.path(), copy.join(entry).join(f.file_name())).unwrap();
        }
    }
    let path = copy.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` is not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    copy
}

#[test]
fn the_serving_overlays_render_and_fit_kserve_istio_and_kubernetes_and_broken_copies_fail() {
    let overlays: Vec<PathBuf> = ["dev", "staging", "prod"]
        .iter()
        .map(|o| workspace_root().join("infra/k8s/serving/overlays").join(o))
        .collect();
    let refs: Vec<&std::path::Path> = overlays.iter().map(PathBuf::as_path).collect();
    assert_passes(&lint("overlays", &refs), "the serving overlays");
    let tmp = tempfile::tempdir().unwrap();
    for (i, (file, overlay, from, to, needle)) in [
        // Istio: a misspelled mTLS field, and a mode that does not exist.
        (
            "base/istio.yaml",
            "dev",
            "  mtls:\n",
            "  mtl:\n",
            "'mtl' was unexpected",
        ),
        (
            "base/istio.yaml",
            "dev",
            "mode: STRICT",
            "mode: STRICTER",
            "'STRICTER' is not one of",
        ),
        // A misspelled VirtualService field (prod only).
        (
            "overlays/prod/gateway.yaml",
            "prod",
            "retryOn:",
            "retryOnn:",
            "'retryOnn' was unexpected",
        ),
        // An overlay's patch with a wrong type reaches the rendered InferenceService.
        (
            "overlays/staging/kustomization.yaml",
            "staging",
            "value: 5",
            "value: five",
            "'five' is not of type 'integer'",
        ),
        // The NetworkPolicy with a wrong type.
        (
            "base/networkpolicy.yaml",
            "dev",
            "policyTypes: [Ingress, Egress]",
            "policyTypes: Ingress",
            "is not of type 'array'",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(i.to_string());
        let copy = broken_serving(file, from, to, &dir);
        assert_fails_with(
            &lint("overlays", &[&copy.join("overlays").join(overlay)]),
            to,
            needle,
        );
    }
}

/// What each environment serves: the alias, the replicas, and the canary only in prod.
#[test]
fn each_overlay_serves_its_alias() {
    for (overlay, alias, min, max, canary) in [
        ("dev", "staging", 1, 1, false),
        ("staging", "staging", 2, 5, false),
        ("prod", "production", 2, 10, true),
    ] {
        let out = run(Command::new("kubectl").arg("kustomize").arg(
            workspace_root()
                .join("infra/k8s/serving/overlays")
                .join(overlay),
        ));
        assert!(out.status.success(), "{overlay}: {}", stderr(&out));
        let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_slice(&out.stdout)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let isvc = docs
            .iter()
            .find(|d| d["kind"] == "InferenceService")
            .unwrap();
        let predictor = &isvc["spec"]["predictor"];
        assert_eq!(
            predictor["containers"][0]["args"][0],
            format!("--model=models:/adult-income@{alias}").as_str(),
            "{overlay}"
        );
        assert_eq!(
            (
                predictor["minReplicas"].as_u64(),
                predictor["maxReplicas"].as_u64()
            ),
            (Some(min), Some(max)),
            "{overlay}"
        );
        assert_eq!(
            predictor["canaryTrafficPercent"].as_u64().is_some(),
            canary,
            "{overlay}"
        );
        assert_eq!(
            docs.iter().any(|d| d["kind"] == "VirtualService"),
            canary,
            "{overlay}: the external host is prod's"
        );
        for kind in ["PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy"] {
            assert!(
                docs.iter().any(|d| d["kind"] == kind),
                "{overlay}: no {kind}"
            );
        }
    }
}
