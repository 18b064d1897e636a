#!/usr/bin/env bash
# Benchmark: the example expectation suite on Adult's prepared training table and on
# Adult replicated N times, Kiln vs Great Expectations' pandas engine, in one run.
#
# Usage: KILN_ADULT_DIR=<folder> GE_PYTHON=<python with great_expectations> benches/validate.sh [N...]
# Defaults to N = 1 10 100 (100 ≈ 3.3 million rows). The replicated data is prepared
# by kiln-prepare in a temporary folder (row_id stays unique) and removed afterwards.
# Prints a Markdown table: wall time, rows/s and peak resident memory (/usr/bin/time -v)
# of each tool on the same Parquet file and suite, and checks that both give the same
# verdicts and unexpected counts (tests/compat/ge_compare.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-release}"
prepare="$target/$profile/kiln-prepare"
validate="$target/$profile/kiln-validate"
adult="${KILN_ADULT_DIR:?set KILN_ADULT_DIR to the folder with adult.data and adult.test}"
ge_python="${GE_PYTHON:?set GE_PYTHON to a python with great_expectations (make compat-ge installs one)}"
suite="$root/examples/adult/expectations.json"
[ -x "$validate" ] || { echo "build first: cargo build --profile $profile --bins" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
factors=("$@")
[ ${#factors[@]} -gt 0 ] || factors=(1 10 100)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

echo "| input | rows | tool | wall time (s) | rows/s | peak RSS (MiB) |"
echo "| --- | ---: | --- | ---: | ---: | ---: |"
for n in "${factors[@]}"; do
  data="$work/adult-x$n"
  mkdir -p "$data"
  grep -v '^$' "$adult/adult.data" > "$work/data.rows"
  : > "$data/adult.data"
  for _ in $(seq "$n"); do cat "$work/data.rows" >> "$data/adult.data"; done
  cp "$adult/adult.test" "$data/adult.test"
  KILN_ADULT_DIR="$data" "$prepare" --spec "$root/examples/adult/spec.yaml" --run "$work/run" --force -q
  table="$work/run/prepare/train.parquet"
  rows=$(( n * $(wc -l < "$work/data.rows") ))
  # Exit 3 is a verdict, not a failure: the suite's row-count bounds fit Adult x1 only.
  status=0
  /usr/bin/time -v -o "$work/kiln.time" "$validate" --suite "$suite" --data "$table" \
    --result "$work/kiln.json" 2> /dev/null || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || { echo "kiln-validate failed ($status)" >&2; exit 1; }
  /usr/bin/time -v -o "$work/ge.time" "$ge_python" "$root/tests/compat/ge_compare.py" \
    "$suite" "$table" "$work/kiln.json" > "$work/compare.txt" 2> /dev/null \
    || { cat "$work/compare.txt" >&2; exit 1; }
  read -r kw km < <(measure "$work/kiln.time")
  read -r gw gm < <(measure "$work/ge.time")
  printf "| Adult x%s | %s | Kiln | %.3f | %.0f | %.0f |\n" "$n" "$rows" "$kw" "$(echo "$rows / $kw" | bc -l)" "$km"
  printf "| Adult x%s | %s | GE %s (pandas) | %.2f | %.0f | %.0f |\n" "$n" "$rows" \
    "$("$ge_python" -c 'import great_expectations as g; print(g.__version__)')" \
    "$gw" "$(echo "$rows / $gw" | bc -l)" "$gm"
  echo "  $(head -n 1 "$work/compare.txt")" >&2
  rm -rf "$data" "$work/run"
done
