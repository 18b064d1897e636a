#!/usr/bin/env bash
# `make rollback`: the previous version back, traffic and alias together.
#   KILN_CLUSTER=1     the InferenceService in the current kubectl context (through
#                      `kubectl proxy`), the alias in MLflow (MLFLOW_TRACKING_URI)
#   deploy-dev running HAProxy's weights and the local registry's alias
#   otherwise          the alias only (nothing is serving locally)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kiln="${KILN:?set KILN to the kiln binary (make does)}"
model="${KILN_MODEL_NAME:-adult-income}"
if [ "${KILN_CLUSTER:-0}" = 1 ]; then
  kubectl="${KUBECTL:-kubectl}"
  command -v "$kubectl" > /dev/null 2>&1 || { echo "make rollback: kubectl not found (KILN_CLUSTER=1 needs it)" >&2; exit 2; }
  "$kubectl" config current-context > /dev/null 2>&1 || { echo "make rollback: kubectl has no current context" >&2; exit 2; }
  [ -n "${MLFLOW_TRACKING_URI:-}" ] || { echo "make rollback: set MLFLOW_TRACKING_URI (the cluster's registry, e.g. a port-forward of svc/mlflow)" >&2; exit 2; }
  port="${KILN_PROXY_PORT:-8001}"
  "$kubectl" proxy --port="$port" > /dev/null &
  proxy=$!
  trap 'kill $proxy 2> /dev/null || true' EXIT
  sleep 1
  exec_status=0
  "$kiln" rollout revert "$model" --router kserve --kube-api "http://127.0.0.1:$port" \
    --namespace "${KILN_NAMESPACE:-kiln}" || exec_status=$?
  exit $exec_status
fi
dir="${KILN_DEV_DIR:-kiln-runs/deploy-dev}"
if [ -f "$dir/haproxy.pid" ] && kill -0 "$(cat "$dir/haproxy.pid")" 2> /dev/null; then
  exec "$root/scripts/deploy-dev.sh" revert
fi
echo "make rollback: nothing serving locally (no \`make deploy-dev\`): moving the alias only"
exec "$kiln" rollback "$model" --alias production --registry "${KILN_REGISTRY:-kiln-runs/registry}"
