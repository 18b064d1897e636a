#!/usr/bin/env bash
# Benchmark: parallel trials. 8 trials of examples/adult/tune.yaml with the random
# sampler, no pruning and one thread per trial (train.shards 1), at parallelism 1 and
# 2: wall time, CPU time and the trial values (which must be the same at both).
#
# Usage: KILN_ADULT_DIR=<folder with adult.data, adult.test> benches/tune_parallel.sh
# Needs the binaries of $KILN_BENCH_PROFILE (default fast-release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-fast-release}"
: "${KILN_ADULT_DIR:?set KILN_ADULT_DIR}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
spec="$root/examples/adult/spec.yaml"
"$target/$profile/kiln-prepare" --spec "$spec" --run "$work/run" -q
for parallelism in 1 2; do
  section="$(sed -e "s/^parallelism: .*/parallelism: $parallelism/" -e "s/^sampler: .*/sampler: random/" \
    -e "/^pruning:/d" "$root/examples/adult/tune.yaml")"
  /usr/bin/time -f "%e %U" -o "$work/time.txt" "$target/$profile/kiln-tune" --spec "$spec" \
    --run "$work/run" --force --set "tune=$section" --set train.shards=1 -q
  rm -rf "$work/run/tune/trials"
  python3 - "$work/run/tune/trials.json" "$work/time.txt" "$parallelism" <<'PY'
import json, sys
trials = json.load(open(sys.argv[1]))
wall, user = open(sys.argv[2]).read().split()
values = ", ".join(f"{t['value']:.4f}" for t in trials)
print(f"| {sys.argv[3]} | {float(wall):.1f} | {float(user):.1f} | ({values}) |")
PY
done
