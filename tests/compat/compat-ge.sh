#!/usr/bin/env bash
# `make compat-ge`: validates Adult's prepared tables with the example suite and with
# remaining-types.json (together every one of the 40 supported expectation types, failing
# cases included; crates/validate/tests/compat_suites.rs checks that), in Great
# Expectations and in Kiln, and compares every expectation's result (ge_compare.py).
#
# Needs KILN (a built `kiln`), KILN_ADULT_DIR, and the GE venv of
# `scripts/deps/install.sh compat-ge` (GE_PYTHON, default .cache/ge-venv/bin/python).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${KILN:?the kiln binary}" "${KILN_ADULT_DIR:?the folder with adult.data and adult.test}"
python="${GE_PYTHON:-$root/.cache/ge-venv/bin/python}"
run="$root/.cache/compat-ge"
suites=("$root/examples/adult/expectations.json" "$root/tests/compat/remaining-types.json")

"$KILN" prepare --spec "$root/examples/adult/spec.yaml" --run "$run" -q
for suite in "${suites[@]}"; do
  for split in train test; do
    result="$run/kiln-$(basename "$suite" .json)-$split.json"
    # Exit 3 is a failed expectation, which the second suite has on purpose.
    status=0
    "$KILN" validate --suite "$suite" --data "$run/prepare/$split.parquet" --result "$result" 2>/dev/null || status=$?
    [ "$status" -le 3 ] || { echo "compat-ge: kiln validate exited $status on $suite ($split)" >&2; exit 1; }
    "$python" "$root/tests/compat/ge_compare.py" "$suite" "$run/prepare/$split.parquet" "$result" 2>/dev/null
  done
done
