#!/usr/bin/env bash
# The one runner of Kiln's benchmarks (`make bench-NAME` calls it): builds the binaries
# of KILN_BENCH_PROFILE (default fast-release, what `make run` builds), installs the
# peers the benchmark compares with (scripts/deps/install.sh), finds the Adult data,
# then runs benches/NAME's script. Results are Markdown tables for docs/benchmarks.md.
#
#   benches/run.sh NAME [ARGS...]
#
#   prepare [N...]          prepare on Adult repeated N times        benches/prepare.sh
#   train                   kiln-train beside scikit-learn            benches/train.sh
#   audit [ROWS...]         evaluate and fairness on generated        benches/audit.sh (+ gen_predictions.rs)
#                           predictions
#   validate [N...]         validate beside Great Expectations        benches/validate.sh
#   validate-memory [ROWS...]  validate's memory on unique values     benches/validate_memory.sh (+ gen_unique.rs)
#   tune [TRIALS]           kiln tune beside Optuna                   benches/tune.sh (+ tune_peers.py)
#   tune-parallel           parallel trials, 1 against 2              benches/tune_parallel.sh
#   serve                   kiln-serve beside KServe and MLServer     benches/serve.sh (+ serve/peers.py)
#   slo-probe               the throughput probe beside oha           benches/slo-probe.sh
#   tables [C E [MEM]]      prepare's data.query beside DuckDB and    benches/tables.sh (+ tables_peers.py)
#                           Polars, C customers and E events
#   tracking [N]            kiln run with MLflow tracking against     benches/tracking.sh
#                           without, N pairs
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
name=$1
shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
export KILN_BENCH_PROFILE="${KILN_BENCH_PROFILE:-fast-release}"
bin="$CARGO_TARGET_DIR/$KILN_BENCH_PROFILE"
tools="$root/.cache/tools"
deps() { "$root/scripts/deps/install.sh" "$@"; }
build() { cargo build --locked --profile "$KILN_BENCH_PROFILE" --workspace --bins; }
adult() { KILN_ADULT_DIR="${KILN_ADULT_DIR:-$("$root/scripts/adult-data.sh")}"; export KILN_ADULT_DIR; }

case "$name" in
  prepare)         build; adult; exec benches/prepare.sh "$@" ;;
  train)           deps bench; build; adult; exec benches/train.sh "$@" ;;
  audit)           build; exec benches/audit.sh "$@" ;;
  validate)        deps compat-ge; build; adult
                   GE_PYTHON="$root/.cache/ge-venv/bin/python" exec benches/validate.sh "$@" ;;
  validate-memory) deps compat-ge; build
                   GE_PYTHON="$root/.cache/ge-venv/bin/python" exec benches/validate_memory.sh "$@" ;;
  tune)            deps bench; build; adult; exec benches/tune.sh "$@" ;;
  tune-parallel)   build; adult; exec benches/tune_parallel.sh "$@" ;;
  serve)           deps bench-serve; build; adult
                   OHA="$tools/bin/oha" KSERVE_PYTHON="$root/.cache/kserve-peer-venv/bin/python" \
                   MLSERVER_VENV="$root/.cache/mlserver-peer-venv" SERVE_BIN="$bin/kiln-serve" KILN="$bin/kiln" \
                     exec benches/serve.sh "$@" ;;
  slo-probe)       deps canary metrics; build
                   KILN="$bin/kiln" OHA="$tools/bin/oha" PROMETHEUS="$tools/prometheus/usr/bin/prometheus" \
                     exec benches/slo-probe.sh "$@" ;;
  tables)          deps venv:tables-peers; build; exec benches/tables.sh "$@" ;;
  tracking)        deps venv:mlflow; build; adult; exec benches/tracking.sh "$@" ;;
  *) echo "benches/run.sh: unknown benchmark '$name' (run it without arguments for the list)" >&2; exit 2 ;;
esac
