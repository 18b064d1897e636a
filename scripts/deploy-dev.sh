#!/usr/bin/env bash
# `make deploy-dev`: the model server on a laptop as it runs in the cluster, with real
# processes on loopback: HAProxy in front (the router `kiln rollout` steers), kiln-serve
# with the `staging` model as the stable server, an empty canary slot, and Prometheus
# scraping both and HAProxy (with the SLO rules loaded). Runs in the background; state,
# logs and PIDs under $KILN_DEV_DIR.
#
#   scripts/deploy-dev.sh start            start (or show) the deployment, print the URLs
#   scripts/deploy-dev.sh canary VERSION   serve VERSION in the canary slot, send load,
#                                          and let `kiln rollout` promote or roll it back
#   scripts/deploy-dev.sh revert           traffic and the `production` alias back
#   scripts/deploy-dev.sh status | stop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kiln="${KILN:?set KILN to the kiln binary (make does)}"
registry="${KILN_REGISTRY:-kiln-runs/registry}"
model="${KILN_MODEL_NAME:-adult-income}"
dir="${KILN_DEV_DIR:-kiln-runs/deploy-dev}"
port="${KILN_DEV_PORT:-8080}"
stable_port="${KILN_DEV_STABLE_PORT:-8180}"
canary_port="${KILN_DEV_CANARY_PORT:-8181}"
stable_metrics_port="${KILN_DEV_STABLE_ADMIN_PORT:-8280}"
canary_metrics_port="${KILN_DEV_CANARY_ADMIN_PORT:-8281}"
admin_port="${KILN_DEV_ADMIN_PORT:-9999}"
exporter_port="${KILN_DEV_EXPORTER_PORT:-8405}"
prometheus_port="${KILN_DEV_PROMETHEUS_PORT:-9090}"
prometheus="${KILN_PROMETHEUS:-$root/.cache/tools/prometheus/usr/bin/prometheus}"
oha="${KILN_OHA:-$root/.cache/tools/bin/oha}"

die() { echo "deploy-dev: $*" >&2; exit 2; }
running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2> /dev/null; }
wait_http() { # URL WHAT LOG
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2> /dev/null && return 0
    sleep 0.1
  done
  die "$2 did not answer at $1 (log: $3)"
}
launch() { # NAME LOG COMMAND...
  local name=$1 log=$2
  shift 2
  nohup "$@" > "$log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}
served_version() { # PORT
  curl -fsS "http://127.0.0.1:$1/v2/models/$model" | sed -n 's/.*"versions":\["\([^"]*\)".*/\1/p'
}
urls() {
  cat <<URLS
Model (through HAProxy): http://127.0.0.1:$port/v2/models/$model/infer  (KServe V1: /v1/models/$model:predict)
Ready:                   http://127.0.0.1:$port/v2/health/ready
Stable kiln-serve:       http://127.0.0.1:$stable_port (version $(served_version "$stable_port"); metrics: http://127.0.0.1:$stable_metrics_port/metrics)
Canary slot:             127.0.0.1:$canary_port (\`make canary-demo VERSION=N\`)
Prometheus:              http://127.0.0.1:$prometheus_port
HAProxy metrics:         http://127.0.0.1:$exporter_port/metrics
HAProxy runtime API:     127.0.0.1:$admin_port (kiln rollout --router haproxy --haproxy-admin 127.0.0.1:$admin_port)
Stop:                    make deploy-dev-stop
URLS
}

start() {
  if running haproxy && running stable && running prometheus; then
    echo "deploy-dev: already running"
    urls
    return
  fi
  stop > /dev/null
  [ -x "$prometheus" ] || die "$prometheus not found; run \`make test-deps\`"
  "$root/scripts/haproxy.sh" -v > /dev/null 2>&1 || die "HAProxy not found; run \`make test-deps\`"
  mkdir -p "$dir"
  cat > "$dir/haproxy.cfg" <<CFG
global
  stats socket ipv4@127.0.0.1:$admin_port level admin
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend kiln
  bind 127.0.0.1:$port
  default_backend kiln
frontend metrics
  bind 127.0.0.1:$exporter_port
  http-request use-service prometheus-exporter if { path /metrics }
backend kiln
  balance roundrobin
  option httpchk GET /v2/health/ready
  server stable 127.0.0.1:$stable_port weight 100 check inter 1s fall 2 rise 1
  server canary 127.0.0.1:$canary_port weight 0 check inter 1s fall 2 rise 1
CFG
  cat > "$dir/prometheus.yml" <<CFG
global:
  scrape_interval: 2s
  evaluation_interval: 10s
rule_files:
  - $root/monitoring/rules/kiln-serve-slos.rules.yml
  - $root/monitoring/rules/kiln-serve-health.rules.yml
scrape_configs:
  - job_name: kiln-serve
    static_configs:
      - targets: ['127.0.0.1:$stable_metrics_port', '127.0.0.1:$canary_metrics_port']
  - job_name: haproxy
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
CFG
  launch stable "$dir/stable.log" "$kiln" serve --model "$model@staging" --registry "$registry" \
    --model-name "$model" --http "127.0.0.1:$stable_port" --admin "127.0.0.1:$stable_metrics_port" --no-grpc
  wait_http "http://127.0.0.1:$stable_port/v2/health/ready" "kiln-serve ($model@staging)" "$dir/stable.log"
  launch haproxy "$dir/haproxy.log" "$root/scripts/haproxy.sh" -f "$dir/haproxy.cfg" -db
  wait_http "http://127.0.0.1:$exporter_port/metrics" HAProxy "$dir/haproxy.log"
  launch prometheus "$dir/prometheus.log" "$prometheus" --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/prometheus-data" --web.listen-address="127.0.0.1:$prometheus_port"
  wait_http "http://127.0.0.1:$prometheus_port/-/ready" Prometheus "$dir/prometheus.log"
  wait_http "http://127.0.0.1:$port/v2/health/ready" "the model through HAProxy" "$dir/haproxy.log"
  echo "deploy-dev: serving $model@staging"
  urls
}

canary() {
  local version=${1:?usage: deploy-dev.sh canary VERSION}
  running haproxy && running stable && running prometheus || die "not running; \`make deploy-dev\` first"
  [ -x "$oha" ] || die "$oha not found (the demo's load); run \`make test-deps\`"
  local stable_version
  stable_version=$(served_version "$stable_port")
  [ "$version" != "$stable_version" ] || die "version $version is the stable server's already"
  if running canary; then kill "$(cat "$dir/canary.pid")" 2> /dev/null || true; sleep 0.5; fi
  launch canary "$dir/canary.log" "$kiln" serve --model "$model/$version" --registry "$registry" \
    --model-name "$model" --http "127.0.0.1:$canary_port" --admin "127.0.0.1:$canary_metrics_port" --no-grpc
  wait_http "http://127.0.0.1:$canary_port/v2/health/ready" "kiln-serve ($model/$version)" "$dir/canary.log"
  # Open-loop load through HAProxy while the analysis runs.
  "$oha" -z 10m -q "${KILN_DEV_RPS:-50}" -c 16 --no-tui -m POST -H 'Content-Type: application/json' \
    -D "$root/examples/adult/request.json" "http://127.0.0.1:$port/v1/models/$model:predict" > /dev/null 2>&1 &
  load_pid=$!
  trap 'kill "${load_pid:-}" 2> /dev/null || true' EXIT
  sleep 4
  local code=0
  "$kiln" rollout run "$model" --version "$version" --stable-version "$stable_version" \
    --registry "$registry" --prometheus "http://127.0.0.1:$prometheus_port" \
    --settings "${KILN_ROLLOUT_SETTINGS:-$root/examples/rollout/local.yaml}" \
    --router haproxy --haproxy-admin "127.0.0.1:$admin_port" --out "$dir/rollout.json" || code=$?
  echo "deploy-dev: rollout.json at $dir/rollout.json (exit $code)"
  return $code
}

revert() {
  running haproxy || die "not running"
  "$kiln" rollout revert "$model" --registry "$registry" --router haproxy --haproxy-admin "127.0.0.1:$admin_port"
}

stop() {
  for name in prometheus haproxy canary stable; do
    if running "$name"; then
      kill "$(cat "$dir/$name.pid")" 2> /dev/null || true
    fi
    rm -f "$dir/$name.pid"
  done
  echo "deploy-dev: stopped"
}

status() {
  for name in stable canary haproxy prometheus; do
    if running "$name"; then echo "$name: running (pid $(cat "$dir/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  canary) canary "${2:-}" ;;
  revert) revert ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command \`$1\` (start, canary VERSION, revert, status, stop)" ;;
esac
