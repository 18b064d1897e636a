#!/usr/bin/env bash
# `kiln slo check --probe` beside oha (the load generator a user would pick instead):
# both open loop with latency correction against the same kiln-serve, one after the
# other, at the same rates; the served model is `make run`'s adult-income@staging.
# Usage: make bench-slo-probe   (results go in docs/benchmarks.md)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KILN="${KILN:?the kiln binary}"
OHA="${OHA:?oha}"
PROMETHEUS="${PROMETHEUS:?prometheus}"
seconds="${SECONDS_PER_RUN:-20}"
work=$(mktemp -d)
cleanup() { kill "${serve:-}" "${prom:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$KILN" serve --model adult-income@staging --registry "$root/kiln-runs/registry" \
  --http 127.0.0.1:18080 --no-grpc -q &
serve=$!
cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$root/monitoring/rules/kiln-serve-slos.rules.yml"]
scrape_configs: [{job_name: kiln-serve, static_configs: [{targets: ["127.0.0.1:18080"]}]}]
YAML
"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:19090 --log.level=error &
prom=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:18080/v2/health/ready > /dev/null && curl -sf 127.0.0.1:19090/-/ready > /dev/null && break; sleep 0.1; done
sleep 6
url="http://127.0.0.1:18080/v1/models/adult-income:predict"
body="$root/examples/adult/request.json"
echo "| rate (rps) | tool | sent | p50 ms | p99 ms | failed |"
echo "| --- | --- | --- | --- | --- | --- |"
for rate in 100 1000; do
  "$OHA" -q "$rate" -z "${seconds}s" --latency-correction --no-tui --output-format json -c 64 \
    -m POST -H 'Content-Type: application/json' -D "$body" "$url" > "$work/oha.json" 2>/dev/null || true
  python3 - "$work/oha.json" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); codes = r.get("statusCodeDistribution", {})
total = sum(codes.values()); bad = sum(v for k, v in codes.items() if not k.startswith("2"))
p = r["latencyPercentiles"]
print(f"| {sys.argv[2]} | oha 1.16.0 | {total} | {p['p50']*1000:.2f} | {p['p99']*1000:.2f} | {bad} |")
PY
  "$KILN" slo check --spec "$root/monitoring/slos.yaml" --prometheus 127.0.0.1:19090 \
    --probe "$url" --probe-body "$body" --probe-rate "$rate" --probe-duration "${seconds}s" \
    --report "$work/probe.json" > /dev/null || true
  python3 - "$work/probe.json" "$rate" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["probe"]
print(f"| {sys.argv[2]} | kiln slo check --probe | {p['sent']} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['failed']} |")
PY
done
