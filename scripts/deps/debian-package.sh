#!/usr/bin/env bash
# Unpack a Debian package's files under a folder (no install, no daemon, no root needed
# for the unpack itself): `scripts/deps/debian-package.sh prometheus .cache/tools/prometheus`.
# The tests run the unpacked binaries on loopback ports and stop them.
set -euo pipefail
package=$1
dest=$(realpath -m "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download "$package" >/dev/null 2>&1; then
  # The package lists may be missing on a fresh machine.
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download "$package" >/dev/null
fi
mkdir -p "$dest"
dpkg -x ./"$package"_*.deb "$dest"
echo "$package $(dpkg-deb -f ./"$package"_*.deb Version) unpacked under $dest"
