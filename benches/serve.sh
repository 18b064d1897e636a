#!/usr/bin/env bash
# Benchmark: kiln-serve against the servers a user would pick instead -- KServe's Python
# model server (kserve 0.21, a custom kserve.Model around a scikit-learn pipeline) and
# MLServer 1.7.1 (mlserver-sklearn, the same pipeline) -- in one run, on the same
# payloads (the first 1 and 64 rows of adult.test), each server pinned to CPU 0 and the
# load generator (oha, open loop with latency correction) to CPU 1.
#
# kiln-serve runs four ways: as it ships (plain HTTP on loopback), with dynamic batching
# off, with a batch wait, and with TLS and a bearer token (what a deployment without a
# mesh runs; oha verifies the certificate and sends the token).
#
# For each server and payload: fixed rates of 100, 1,000, 5,000 and 10,000 requests/s,
# then a ladder of rates up to the highest one held (p99 <= 300 ms, the latency SLO,
# every scheduled request sent, no error); p50/p99/p99.9, sent vs expected, errors,
# peak RSS, the time from start to ready. Prints Markdown tables.
#
# Usage: make bench-serve (benches/run.sh serve: installs oha and the peers' venvs under .cache/)
#   or:  OHA=... KSERVE_PYTHON=... MLSERVER_VENV=... SERVE_BIN=... KILN=... KILN_ADULT_DIR=... benches/serve.sh
# SERVE_BENCH_SECONDS (default 5) sets the length of each load run; SERVE_BENCH_SERVERS
# (default: kiln kilnnobatch kilnwait kilntls kserve mlserver) which servers run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
: "${OHA:?}" "${KSERVE_PYTHON:?}" "${MLSERVER_VENV:?}" "${SERVE_BIN:?}" "${KILN:?}" "${KILN_ADULT_DIR:?}"
seconds="${SERVE_BENCH_SECONDS:-5}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=18180
# What oha adds for the server being measured (TLS: the CA and the token).
oha_extra=()
scheme=http

echo "preparing: kiln run on Adult, the scikit-learn peer model, the request bodies" >&2
"$KILN" run --spec "$root/examples/adult/spec.yaml" --run "$work/runs/adult" -q > /dev/null
"$KSERVE_PYTHON" "$root/benches/serve/peers.py" train "$work/runs/adult/prepare/train.parquet" "$work/peer"
mkdir -p "$work/bodies" "$work/results"
"$KSERVE_PYTHON" "$root/benches/serve/peers.py" bodies "$work/runs/adult/prepare/test.parquet" "$work/bodies"

# Starts a server on CPU 0 (sets server_pid); writes the milliseconds from start to
# ready to results/NAME.ready.
start() {
  local name=$1
  local t0
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is already in use" >&2; exit 1
  fi
  t0=$(date +%s%N)
  case $name in
    kiln | kilnnobatch | kilnwait | kilntls)
      local batching=()
      [ "$name" = kilnnobatch ] && batching=(--max-batch-rows 1)
      [ "$name" = kilnwait ] && batching=(--max-batch-wait-us 200)
      if [ "$name" = kilntls ]; then
        mkdir -p "$work/tls"
        # A CA and a server certificate it signed (a self-signed CA certificate is not
        # a valid server certificate for rustls-based clients such as oha).
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
          -keyout "$work/tls/ca.key" -out "$work/tls/ca.pem" -subj /CN=kiln-bench-ca 2> /dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
          -keyout "$work/tls/key.pem" -out "$work/tls/server.csr" 2> /dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
          > "$work/tls/server.ext"
        openssl x509 -req -in "$work/tls/server.csr" -CA "$work/tls/ca.pem" -CAkey "$work/tls/ca.key" \
          -CAcreateserial -days 1 -extfile "$work/tls/server.ext" -out "$work/tls/cert.pem" 2> /dev/null
        echo "bench-token-0123456789abcdef" > "$work/tls/tokens"
        batching=(--tls-cert "$work/tls/cert.pem" --tls-key "$work/tls/key.pem"
          --auth-token-file "$work/tls/tokens")
      fi
      taskset -c 0 "$SERVE_BIN" --model adult-income@staging --registry "$work/runs/registry" \
        --http "127.0.0.1:$port" --admin "127.0.0.1:$((port + 3))" --no-grpc -q "${batching[@]}" \
        > "$work/$name.log" 2>&1 &
      ;;
    kserve)
      taskset -c 0 "$KSERVE_PYTHON" "$root/benches/serve/peers.py" kserve "$work/peer" "$port" \
        > "$work/$name.log" 2>&1 &
      ;;
    mlserver)
      (cd "$work/peer/mlserver" && MLSERVER_HTTP_PORT=$port MLSERVER_GRPC_PORT=$((port + 1)) \
        MLSERVER_METRICS_PORT=$((port + 2)) MLSERVER_PARALLEL_WORKERS=0 \
        exec taskset -c 0 "$MLSERVER_VENV/bin/mlserver" start . > "$work/$name.log" 2>&1) &
      ;;
  esac
  server_pid=$!
  local ready_path=/v2/health/ready
  [ "$name" = kserve ] && ready_path=/v1/models/adult-income
  until curl -ksf -o /dev/null "$scheme://127.0.0.1:$port$ready_path"; do
    sleep 0.002
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/$name.log" >&2; exit 1; fi
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 )) > "$work/results/$name.ready"
}

# Peak RSS (KiB) of the server and its children.
rss() {
  local total=0 pid
  for pid in $server_pid $(pgrep -P "$server_pid" || true); do
    total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

stop() {
  # MLServer runs under a subshell: stop its children too.
  pkill -TERM -P "$server_pid" 2>/dev/null || true
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  while curl -ks -o /dev/null "$scheme://127.0.0.1:$port/"; do sleep 0.2; done
}

# load NAME URL BODY RATE -> results/NAME.json
load() {
  local out="$work/results/$1.json"
  taskset -c 1 "$OHA" -q "$4" -z "${seconds}s" --latency-correction --wait-ongoing-requests-after-deadline --no-tui --output-format json \
    -c 64 -m POST -H 'Content-Type: application/json' "${oha_extra[@]}" -D "$3" "$2" > "$out" 2>/dev/null || true
  python3 - "$out" "$4" "$seconds" <<'PY'
import json, sys
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = json.load(open(path))
codes = r.get("statusCodeDistribution", {})
errors = sum(r.get("errorDistribution", {}).values())
sent = sum(codes.values()) + errors
bad = errors + sum(n for c, n in codes.items() if c != "200")
p = r["latencyPercentiles"]
held = p["p99"] is not None and p["p99"] <= 0.3 and sent >= 0.99 * rate * seconds and bad == 0
r["kiln_bench"] = {"sent": sent, "expected": int(rate * seconds), "errors": bad, "held": held}
json.dump(r, open(path, "w"))
print("held" if held else "not held")
PY
}

run_server() {
  local name=$1
  oha_extra=()
  scheme=http
  if [ "$name" = kilntls ]; then
    scheme=https
    oha_extra=(--cacert "$work/tls/ca.pem" -H "authorization: Bearer bench-token-0123456789abcdef")
  fi
  start "$name"
  echo "$name ready in $(cat "$work/results/$name.ready") ms" >&2
  local payloads sizes="1 64" fixed="100 1000 5000 10000"
  case $name in
    kiln | kilntls) payloads="v1 v2" ;;
    # Dynamic batching off, and with a wait: single rows, the ladder only.
    kilnnobatch | kilnwait) payloads="v1"; sizes="1"; fixed="" ;;
    kserve) payloads="v1" ;;
    mlserver) payloads="mlserver" ;;
  esac
  for payload in $payloads; do
    local url="$scheme://127.0.0.1:$port/v2/models/adult-income/infer"
    [ "$payload" = v1 ] && url="$scheme://127.0.0.1:$port/v1/models/adult-income:predict"
    for rows in $sizes; do
      local body="$work/bodies/$payload-$rows.json"
      # One warm-up second.
      taskset -c 1 "$OHA" -n 200 -c 4 --no-tui -m POST -H 'Content-Type: application/json' \
        "${oha_extra[@]}" -D "$body" "$url" > /dev/null 2>&1 || true
      for rate in $fixed; do
        echo "$name $payload $rows rows @ $rate rps: $(load "fixed-$name-$payload-$rows-$rate" "$url" "$body" "$rate")" >&2
      done
      local ladder="20 25 30 35 40 45 50 60 75 100 150 200"
      case $name/$rows in
        kiln/1 | kilntls/1) ladder="15000 20000 25000 30000 40000 50000" ;;
        kiln*/1) ladder="5000 7500 10000 12500 15000 20000 25000 30000 40000" ;;
        kiln*/64) ladder="1250 1500 1750 2000 2500 3000" ;;
      esac
      for rate in $ladder; do
        local verdict
        verdict=$(load "ladder-$name-$payload-$rows-$rate" "$url" "$body" "$rate")
        echo "$name $payload $rows rows ladder @ $rate rps: $verdict" >&2
        [ "$verdict" = held ] || break
      done
    done
  done
  echo "$(rss)" > "$work/results/$name.rss"
  stop
}

for server in ${SERVE_BENCH_SERVERS:-kiln kilnnobatch kilnwait kilntls kserve mlserver}; do
  run_server "$server"
done

python3 - "$work/results" "$seconds" "$(stat -c %s "$SERVE_BIN")" "$(basename "$(dirname "$SERVE_BIN")")" <<'PY'
import glob, json, os, sys
results, seconds, binary, profile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
names = {"kiln": "kiln-serve", "kilnnobatch": "kiln-serve, batching off", "kilnwait": "kiln-serve, batch wait 200 µs",
         "kilntls": "kiln-serve, TLS + bearer token",
         "kserve": "KServe 0.21 (Python)", "mlserver": "MLServer 1.7.1"}
proto = {"v1": "V1", "v2": "V2 REST", "mlserver": "V2 REST (pd)"}
rows = {}
for path in sorted(glob.glob(f"{results}/*.json")):
    kind, name, payload, n, rate = os.path.basename(path)[:-5].split("-")
    rows.setdefault((name, payload, n), {})[(kind, int(rate))] = json.load(open(path))
ms = lambda v: "n/a" if v is None else f"{v * 1000:.2f}"
print(f"Each run {seconds} s; server on CPU 0, oha on CPU 1.\n")
print("| server | protocol | rows/request | rate (rps) | sent / expected | errors | p50 ms | p99 ms | p99.9 ms |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (name, payload, n), runs in rows.items():
    for (kind, rate), r in sorted(runs.items()):
        if kind != "fixed":
            continue
        b, p = r["kiln_bench"], r["latencyPercentiles"]
        print(f"| {names[name]} | {proto[payload]} | {n} | {rate:,} | {b['sent']:,} / {b['expected']:,} | {b['errors']:,} | {ms(p['p50'])} | {ms(p['p99'])} | {ms(p['p99.9'])} |")
print("\n| server | protocol | rows/request | highest rate held (rps) | p99 ms there | peak RSS MiB | ready ms |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (name, payload, n), runs in rows.items():
    held = [(rate, r) for (kind, rate), r in runs.items() if r["kiln_bench"]["held"]]
    best = max(held, key=lambda x: x[0]) if held else None
    rss = int(open(f"{results}/{name}.rss").read()) / 1024
    ready = open(f"{results}/{name}.ready").read().strip()
    rate = f"{best[0]:,}" if best else "none"
    p99 = ms(best[1]["latencyPercentiles"]["p99"]) if best else "n/a"
    print(f"| {names[name]} | {proto[payload]} | {n} | {rate} | {p99} | {rss:.0f} | {ready} |")
print(f"\nkiln-serve binary ({profile} profile, stripped): {binary / 2**20:.1f} MiB")
PY
