#!/usr/bin/env bash
# What MLflow tracking costs `kiln run` on Adult: N runs with tracking to a real MLflow
# server (the test venv's `mlflow server`, sqlite backend, artifacts served, one worker,
# on a free loopback port) alternating with N runs without (the local registry), each
# into a fresh run root, train.epochs=3. Prints each pair and the medians.
#
#   benches/tracking.sh [N]     (benches/run.sh tracking [N]; default 5)
set -euo pipefail
n=${1:-5}
kiln="$CARGO_TARGET_DIR/$KILN_BENCH_PROFILE/kiln"
mlflow="$PWD/.cache/mlflow-venv/bin/mlflow"
spec="$PWD/examples/adult/spec.yaml"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$mlflow" server \
  --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" \
  --host 127.0.0.1 --port "$port" --workers 1 > "$work/server.log" 2>&1 &
server=$!
trap 'kill -TERM -- -"$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/health" > /dev/null && break
  sleep 0.5
done
curl -fs "http://127.0.0.1:$port/health" > /dev/null || { echo "mlflow server did not start" >&2; exit 1; }

seconds() { # URI RUN: the wall time of one `kiln run`
  local start end
  start=$(date +%s.%N)
  MLFLOW_TRACKING_URI="$1" "$kiln" run --spec "$spec" --run "$work/$2" --set train.epochs=3 -q > /dev/null 2> "$work/$2.log" \
    || { cat "$work/$2.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One untimed run each: the experiment and the registered model exist afterwards, as
# they do for every run but a project's first.
seconds "" warm-off > /dev/null
seconds "http://127.0.0.1:$port" warm-on > /dev/null
echo "| pair | without tracking (s) | with MLflow tracking (s) | difference (s) |"
echo "| --- | --- | --- | --- |"
: > "$work/off"; : > "$work/on"; : > "$work/diff"
for i in $(seq 1 "$n"); do
  off=$(seconds "" "off-$i")
  on=$(seconds "http://127.0.0.1:$port" "on-$i")
  diff=$(echo "$on - $off" | bc)
  echo "$off" >> "$work/off"; echo "$on" >> "$work/on"; echo "$diff" >> "$work/diff"
  printf '| %d | %.2f | %.2f | %+.2f |\n' "$i" "$off" "$on" "$diff"
done
printf '| median | %.2f | %.2f | %+.2f |\n' "$(median < "$work/off")" "$(median < "$work/on")" "$(median < "$work/diff")"
