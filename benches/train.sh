#!/usr/bin/env bash
# Benchmark: kiln-train on UCI Adult (CPU, burn ndarray) beside scikit-learn's
# MLPClassifier with the same layer sizes, batch size and learning rate, on the same
# machine; final ROC AUC on adult.test for both.
#
# Usage: KILN_ADULT_DIR=<folder with adult.data, adult.test> benches/train.sh
# Needs the binaries of $KILN_BENCH_PROFILE (default fast-release) and the peers' venv
# .cache/bench-venv (`scripts/deps/install.sh bench`; `make bench-train` does both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-fast-release}"
adult="${KILN_ADULT_DIR:?set KILN_ADULT_DIR}"
venv="$root/.cache/bench-venv"
[ -x "$venv/bin/python" ] || { echo "needs the peers' venv: scripts/deps/install.sh bench" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
spec="$root/examples/adult/spec.yaml"
"$target/$profile/kiln-prepare" --spec "$spec" --run "$work/run" -q
/usr/bin/time -v -o "$work/time.txt" "$target/$profile/kiln-train" --spec "$spec" --run "$work/run" -q
summary=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["summary"]))' "$work/run/train/manifest.json")
# The test split scored by evaluate (the one scoring path): its ROC AUC and accuracy.
"$target/$profile/kiln-evaluate" --spec "$spec" --run "$work/run" -q
cp "$work/run/evaluate/metrics.json" "$work/score.json"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
python3 - "$summary" "$work/score.json" "$rss_kb" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); score = json.load(open(sys.argv[2])); rss = int(sys.argv[3]) / 1024
print(f"| kiln-train (burn ndarray, CPU) | {s['epochs_run']} (best {s['best_epoch']}) | {s['seconds']:.2f} | "
      f"{s['seconds']/s['epochs_run']:.3f} | {s['samples_per_second']:,.0f} | {score['roc_auc']:.4f} | "
      f"{score['accuracy']:.4f} | {rss:.0f} |")
PY
"$venv/bin/python" "$root/benches/sklearn_mlp.py" "$work/run/prepare/train.parquet" "$work/run/prepare/test.parquet"
# One training on one and on two cores: the same spec with train.shards 1 and 2 (the
# model differs only by float rounding in the gradient sums), numeric embeddings on
# (the example) and off.
for embedding in "" "--set train.numeric_embedding=none"; do
  for shards in 1 2; do
    # shellcheck disable=SC2086
    "$target/$profile/kiln-train" --spec "$spec" --run "$work/run" --force -q \
      --set train.shards=$shards $embedding
    python3 - "$work/run/train/manifest.json" "$shards" "${embedding:-periodic}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
label = "none" if "none" in sys.argv[3] else "periodic"
print(f"| numeric_embedding {label}, shards {sys.argv[2]} | {s['epochs_run']} | "
      f"{s['seconds'] / s['epochs_run']:.3f} | {s['samples_per_second']:,.0f} |")
PY
  done
done
# What two cores give this machine on work that shares nothing: two shards-1 trainings
# of the example at once, in two run roots (the ceiling for train.shards 2).
cp -r "$work/run" "$work/run2"
for r in run run2; do
  "$target/$profile/kiln-train" --spec "$spec" --run "$work/$r" --force -q --set train.shards=1 &
done
wait
for r in run run2; do
  python3 - "$work/$r/train/manifest.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print(f"| two shards-1 trainings at once (each) | {s['epochs_run']} | "
      f"{s['seconds'] / s['epochs_run']:.3f} | {s['samples_per_second']:,.0f} |")
PY
done
