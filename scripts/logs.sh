#!/usr/bin/env bash
# `make logs`: the model server's logs in the cluster (the predictor's container), or a
# workflow's with WORKFLOW=<name>. Locally, `make serve` logs to its own terminal.
set -euo pipefail
command -v kubectl > /dev/null || { echo "make logs: kubectl not found (locally, \`make serve\` logs to its terminal)" >&2; exit 2; }
kubectl config current-context > /dev/null 2>&1 || { echo "make logs: kubectl has no current context" >&2; exit 2; }
namespace="${NAMESPACE:-kiln}"
if [ -n "${WORKFLOW:-}" ]; then
  exec kubectl -n "${ARGO_NAMESPACE:-argo}" logs -l "workflows.argoproj.io/workflow=$WORKFLOW" -c main --prefix --tail=-1
fi
exec kubectl -n "$namespace" logs -l "serving.kserve.io/inferenceservice=${MODEL:-adult-income}" \
  -c kserve-container --prefix --tail="${TAIL:-200}"
