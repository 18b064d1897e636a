#!/usr/bin/env bash
# Benchmark: the standalone evaluate and fairness audits, with bootstrap intervals,
# on generated predictions (label, float32 score, sex, race; seeded).
#
# Usage: benches/audit.sh [ROWS...]   (default: 1000000 10000000)
# `make bench-audit` builds what it needs: the binaries and the generator beside this
# script (benches/gen_predictions.rs, binary gen-predictions of the kiln-benches crate).
# Prints a Markdown table: wall time and peak resident memory (/usr/bin/time -v).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${KILN_BENCH_PROFILE:-release}"
dir="$target/$profile"
for b in kiln-evaluate kiln-fairness gen-predictions; do
  [ -x "$dir/$b" ] || { echo "build first: cargo build --profile $profile -p kiln-evaluate -p kiln-fairness -p kiln-benches --bins" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

echo "| predictions | command | bootstrap | wall time (s) | peak RSS (MiB) |"
echo "| ---: | --- | --- | ---: | ---: |"
for n in "${sizes[@]}"; do
  file="$work/predictions-$n.parquet"
  "$dir/gen-predictions" "$n" "$file"
  /usr/bin/time -v -o "$work/e.time" "$dir/kiln-evaluate" --predictions "$file" \
    --label label --score score --bootstrap 1000 --out "$work/e.json" 2> /dev/null
  read -r w m < <(measure "$work/e.time")
  printf "| %s | kiln evaluate | 1000 resamples (AUC, F1) | %.2f | %.0f |\n" "$n" "$w" "$m"
  /usr/bin/time -v -o "$work/f.time" "$dir/kiln-fairness" --predictions "$file" \
    --label label --score score --sensitive sex,race --out "$work/f.json" 2> /dev/null
  read -r w m < <(measure "$work/f.time")
  printf "| %s | kiln fairness (sex, race, sex × race) | 200 resamples per attribute | %.2f | %.0f |\n" "$n" "$w" "$m"
  rm -f "$file"
done
