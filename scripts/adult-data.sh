#!/usr/bin/env bash
# Prints a folder holding the UCI Adult files adult.data and adult.test.
#
# Uses ../shared/data/adult when it exists (a checkout beside the shared data);
# otherwise downloads both files from the UCI repository into .cache/data/adult and
# checks their sha256 against the published checksums before using them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared/data/adult"
cache="$root/.cache/data/adult"
base_url="https://archive.ics.uci.edu/ml/machine-learning-databases/adult"

sums() {
  cat <<'SUMS'
5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d  adult.data
a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05  adult.test
SUMS
}

if [ -f "$shared/adult.data" ] && [ -f "$shared/adult.test" ]; then
  (cd "$shared" && sums | sha256sum --check --quiet) >&2
  cd "$shared" && pwd
  exit 0
fi

mkdir -p "$cache"
cd "$cache"
if ! sums | sha256sum --check --quiet >/dev/null 2>&1; then
  for f in adult.data adult.test; do
    echo "downloading $f from the UCI repository" >&2
    curl --fail --silent --show-error --location --retry 3 -o "$f.part" "$base_url/$f"
    mv "$f.part" "$f"
  done
  if ! sums | sha256sum --check --quiet >&2; then
    echo "error: downloaded Adult files do not match their sha256; removed them" >&2
    rm -f adult.data adult.test
    exit 1
  fi
fi
pwd
