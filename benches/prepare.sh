#!/usr/bin/env bash
# Benchmark: kiln-prepare on UCI Adult and on Adult replicated N times.
#
# Usage: KILN_ADULT_DIR=<folder with adult.data, adult.test> benches/prepare.sh [N...]
# Defaults to N = 1 10 100 (100 ≈ 3.3 million training rows). The replicated files are
# generated in a temporary folder and removed afterwards. Prints a Markdown table of
# wall time, throughput and peak resident memory (from /usr/bin/time -v).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-release}"
bin="$target/$profile/kiln-prepare"
adult="${KILN_ADULT_DIR:?set KILN_ADULT_DIR to the folder with adult.data and adult.test}"
[ -x "$bin" ] || { echo "build first: cargo build --profile $profile --bins" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
factors=("$@")
[ ${#factors[@]} -gt 0 ] || factors=(1 10 100)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "| input | train rows | test rows | wall time (s) | rows/s | peak RSS (MiB) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for n in "${factors[@]}"; do
  data="$work/adult-x$n"
  mkdir -p "$data"
  # Drop the trailing blank line so the copies stay contiguous; keep the test banner once.
  grep -v '^$' "$adult/adult.data" > "$work/data.rows"
  tail -n +2 "$adult/adult.test" | grep -v '^$' > "$work/test.rows"
  : > "$data/adult.data"
  head -n 1 "$adult/adult.test" > "$data/adult.test"
  for _ in $(seq "$n"); do
    cat "$work/data.rows" >> "$data/adult.data"
    cat "$work/test.rows" >> "$data/adult.test"
  done
  train_rows=$(wc -l < "$data/adult.data")
  test_rows=$(( $(wc -l < "$data/adult.test") - 1 ))
  KILN_ADULT_DIR="$data" /usr/bin/time -v -o "$work/time.txt" \
    "$bin" --spec "$root/examples/adult/spec.yaml" --run "$work/run-x$n" --force -q
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" \
         | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  rows=$((train_rows + test_rows))
  printf "| Adult x%s | %s | %s | %.2f | %.0f | %.0f |\n" "$n" "$train_rows" "$test_rows" \
    "$wall" "$(echo "$rows / $wall" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)"
  rm -rf "$data" "$work/run-x$n"
done
