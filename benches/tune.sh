#!/usr/bin/env bash
# Benchmark: `kiln tune` on UCI Adult beside Optuna (TPE) tuning scikit-learn's
# MLPClassifier and LightGBM with the same trial budget, and a plain LightGBM with
# defaults, in one run on this machine. ROC AUC and accuracy are on adult.test.
#
# Usage: KILN_ADULT_DIR=<folder with adult.data, adult.test> benches/tune.sh [TRIALS]
# Needs the binaries of $KILN_BENCH_PROFILE (default fast-release) and the peers' venv
# .cache/bench-venv (`scripts/deps/install.sh bench`; `make bench-tune` does both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-fast-release}"
: "${KILN_ADULT_DIR:?set KILN_ADULT_DIR}"
trials="${1:-16}"
venv="$root/.cache/bench-venv"
[ -x "$venv/bin/python" ] || { echo "needs the peers' venv: scripts/deps/install.sh bench" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
spec="$root/examples/adult/spec.yaml"
section="$(sed "s/^trials: .*/trials: $trials/" "$root/examples/adult/tune.yaml")"
"$target/$profile/kiln-prepare" --spec "$spec" --run "$work/run" -q
/usr/bin/time -v -o "$work/time.txt" "$target/$profile/kiln-tune" --spec "$spec" --run "$work/run" --set "tune=$section" -q
/usr/bin/time -v -o "$work/train-time.txt" "$target/$profile/kiln-train" --spec "$spec" --run "$work/run" --set "tune=$section" -q
"$target/$profile/kiln-evaluate" --spec "$spec" --run "$work/run" --set "tune=$section" -q
python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
summary = json.load(open(f"{work}/run/tune/manifest.json"))["summary"]
metrics = json.load(open(f"{work}/run/evaluate/metrics.json"))
train = json.load(open(f"{work}/run/train/manifest.json"))["summary"]
def field(path, name):
    return re.search(rf"{name}: (.*)", open(path).read()).group(1)
def seconds(path):
    parts = [float(p) for p in field(path, r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = max(int(field(f"{work}/{f}", "Maximum resident set size \\(kbytes\\)")) for f in ["time.txt", "train-time.txt"]) / 1024
wall = seconds(f"{work}/time.txt") + seconds(f"{work}/train-time.txt")
print(f"| kiln tune (TPE, successive halving, 2 trials at a time) + kiln train | {summary['trials']} "
      f"({summary['pruned_trials']} pruned) | {summary['best_value']:.4f} | {metrics['roc_auc']:.4f} | "
      f"{metrics['accuracy']:.4f} | {wall:.1f} | {rss:.0f} |")
PY
for which in mlp lightgbm; do
  "$venv/bin/python" "$root/benches/tune_peers.py" "$work/run/prepare/train.parquet" "$work/run/prepare/test.parquet" "$trials" "$which"
done
"$venv/bin/python" "$root/benches/tune_peers.py" "$work/run/prepare/train.parquet" "$work/run/prepare/test.parquet" 0 lightgbm-defaults
