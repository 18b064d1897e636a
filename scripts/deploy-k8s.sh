#!/usr/bin/env bash
# `make deploy-staging` / `make deploy-prod`: render an overlay of infra/k8s/serving
# with kustomize, pin it (`kiln rollout pin`: the overlay's alias resolved in MLflow to
# the version it points at now and that version's bundle digest, so the cluster never
# resolves an alias) and apply it with kubectl to the current context. With DRY_RUN=1 the
# apply is a server-side dry run. Needs kubectl and a current context: without either,
# one line naming what is missing and exit 2.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env=${1:?usage: deploy-k8s.sh dev|staging|prod}
kubectl="${KUBECTL:-kubectl}"
overlay="$root/infra/k8s/serving/overlays/$env"
[ -d "$overlay" ] || { echo "deploy-k8s: no overlay $overlay (dev, staging, prod)" >&2; exit 2; }
command -v "$kubectl" > /dev/null 2>&1 || { echo "make deploy-$env: kubectl not found (KUBECTL=$kubectl); install kubectl 1.31+" >&2; exit 2; }
context=$("$kubectl" config current-context 2> /dev/null) || { echo "make deploy-$env: kubectl has no current context (aws eks update-kubeconfig --name <cluster>, see \`terraform output kubeconfig_command\`)" >&2; exit 2; }
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
"$kubectl" kustomize "$overlay" > "$rendered"
kiln="${KILN:-kiln}"
command -v "$kiln" > /dev/null 2>&1 || { echo "make deploy-$env: $kiln not found (make build)" >&2; exit 2; }
"$kiln" rollout pin "$rendered" --out "$rendered"
echo "make deploy-$env: applying $(grep -c '^kind:' "$rendered") resources of $overlay to context $context"
"$kubectl" apply ${DRY_RUN:+--dry-run=server} -f "$rendered"
if [ -z "${DRY_RUN:-}" ]; then
  "$kubectl" -n kiln wait --for=condition=Ready inferenceservice/adult-income --timeout="${WAIT:-10m}"
  "$kubectl" -n kiln get inferenceservice adult-income
fi
