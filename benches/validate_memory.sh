#!/usr/bin/env bash
# Benchmark: validate's peak memory on columns of unique values (an id and a float),
# the case that used to hold every distinct value in a hash map.
#
# Usage: benches/validate_memory.sh [ROWS...]   (default: 3000000 30000000 100000000)
# `make bench-validate-memory` builds what it needs: the binaries and the generator
# beside this script (benches/gen_unique.rs, binary gen-unique of the kiln-benches crate).
# Prints a Markdown table: wall time, peak resident memory (/usr/bin/time -v) and
# whether the suite's verdict is the expected one (every expectation passes). Great
# Expectations (pandas engine, GE_PYTHON, default .cache/ge-venv from `make compat-ge`)
# validates the same file in the same run up to GE_MAX_ROWS rows (default 30000000),
# and tests/compat/ge_compare.py checks that both give the same result for every
# expectation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-release}"
dir="$target/$profile"
for b in kiln-validate gen-unique; do
  [ -x "$dir/$b" ] || { echo "build first: cargo build --profile $profile -p kiln-validate -p kiln-benches --bins" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
ge_python="${GE_PYTHON:-$root/.cache/ge-venv/bin/python}"
ge_max="${GE_MAX_ROWS:-30000000}"
[ -x "$ge_python" ] || { echo "needs Great Expectations: make compat-ge (or set GE_PYTHON)" >&2; exit 2; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(3000000 30000000 100000000)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

echo "| rows | tool | wall time (s) | rows/s | peak RSS (MiB) | verdict |"
echo "| ---: | --- | ---: | ---: | ---: | --- |"
for n in "${sizes[@]}"; do
  file="$work/unique-$n.parquet"
  "$dir/gen-unique" "$n" "$file"
  last=$((n - 1))
  # Uniqueness, distinct counts, range, mean, median and quantiles of both columns:
  # everything that needs all the values, and nothing that lists them.
  cat > "$work/suite.json" <<JSON
{"name": "unique", "expectations": [
  {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
  {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "x"}},
  {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},
  {"type": "expect_column_unique_value_count_to_be_between", "kwargs": {"column": "x", "min_value": $n, "max_value": $n}},
  {"type": "expect_column_proportion_of_unique_values_to_be_between", "kwargs": {"column": "id", "min_value": 1, "max_value": 1}},
  {"type": "expect_column_values_to_be_between", "kwargs": {"column": "id", "min_value": 0, "max_value": $last}},
  {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 0}},
  {"type": "expect_column_median_to_be_between", "kwargs": {"column": "x", "min_value": 0}},
  {"type": "expect_column_median_to_be_between", "kwargs": {"column": "id", "min_value": 0}},
  {"type": "expect_column_quantile_values_to_be_between", "kwargs": {"column": "x", "quantile_ranges": {"quantiles": [0.01, 0.5, 0.99], "value_ranges": [[0, null], [0, null], [0, null]]}}}
]}
JSON
  # Spilled runs are anonymous temporary files in TMPDIR (8 bytes per spilled value).
  status=0
  /usr/bin/time -v -o "$work/v.time" "$dir/kiln-validate" \
    --suite "$work/suite.json" --data "$file" --result "$work/kiln.json" > /dev/null 2> "$work/stderr" || status=$?
  read -r w m < <(measure "$work/v.time")
  verdict=$([ "$status" = 0 ] && echo "all passed" || echo "exit $status: $(tail -1 "$work/stderr")")
  printf "| %s | Kiln | %.2f | %.0f | %.0f | %s |\n" "$n" "$w" "$(echo "$n / $w" | bc -l)" "$m" "$verdict"
  if [ "$n" -le "$ge_max" ] && [ "$status" = 0 ]; then
    ge_status=0
    /usr/bin/time -v -o "$work/ge.time" "$ge_python" "$root/tests/compat/ge_compare.py" \
      "$work/suite.json" "$file" "$work/kiln.json" > "$work/compare.txt" 2> /dev/null || ge_status=$?
    read -r w m < <(measure "$work/ge.time")
    verdict=$([ "$ge_status" = 0 ] && echo "same results as Kiln: $(head -n 1 "$work/compare.txt" | sed 's/.*: //')" || echo "exit $ge_status: $(tail -1 "$work/compare.txt")")
    printf "| %s | GE %s (pandas) | %.2f | %.0f | %.0f | %s |\n" "$n" \
      "$("$ge_python" -c 'import great_expectations as g; print(g.__version__)' 2>/dev/null)" \
      "$w" "$(echo "$n / $w" | bc -l)" "$m" "$verdict"
  fi
  rm -f "$file"
done
