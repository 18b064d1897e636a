#!/usr/bin/env bash
# `make metrics`: a local Prometheus (with the SLO and health rules) and Alertmanager
# watching the kiln-serve of `make serve` on 127.0.0.1:8080, in the foreground until
# Ctrl-C. With KILN_CLUSTER=1: the port-forwards for the cluster's monitoring instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${KILN_CLUSTER:-0}" = 1 ]; then
  command -v kubectl > /dev/null || { echo "make metrics: kubectl not found (KILN_CLUSTER=1 needs it)" >&2; exit 2; }
  kubectl config current-context > /dev/null 2>&1 || { echo "make metrics: kubectl has no current context" >&2; exit 2; }
  echo "Prometheus:   kubectl -n monitoring port-forward svc/prometheus-operated 9090  -> http://127.0.0.1:9090"
  echo "Alertmanager: kubectl -n monitoring port-forward svc/alertmanager-operated 9093 -> http://127.0.0.1:9093"
  echo "Grafana:      kubectl -n monitoring port-forward svc/grafana 3000:80 -> http://127.0.0.1:3000 (dashboards: folder Kiln)"
  exit 0
fi
prometheus="$root/.cache/tools/prometheus/usr/bin/prometheus"
for bin in "$prometheus" "$root/.cache/tools/alertmanager/usr/bin/prometheus-alertmanager"; do
  [ -x "$bin" ] || { echo "make metrics: $bin not found; run \`make test-deps\`" >&2; exit 2; }
done
data="$root/.cache/metrics"
mkdir -p "$data/prometheus" "$data/alertmanager"
"$root/scripts/alertmanager.sh" --config.file="$root/monitoring/alertmanager/alertmanager.yml" \
  --storage.path="$data/alertmanager" --web.listen-address=127.0.0.1:9093 \
  --cluster.listen-address= --log.level=warn &
am=$!
"$prometheus" --config.file="$root/monitoring/prometheus/prometheus.yml" \
  --storage.tsdb.path="$data/prometheus" --storage.tsdb.retention.time=35d \
  --web.listen-address=127.0.0.1:9090 --log.level=warn &
prom=$!
trap 'kill $prom $am 2>/dev/null; wait' EXIT INT TERM
echo "Prometheus:   http://127.0.0.1:9090 (scraping kiln-serve at 127.0.0.1:8080: run \`make serve\` beside it)"
echo "Alertmanager: http://127.0.0.1:9093 (receivers in monitoring/alertmanager/alertmanager.yml)"
echo "SLOs:         make slo-check"
wait
