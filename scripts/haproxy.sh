#!/usr/bin/env bash
# Run Debian's HAProxy unpacked under .cache/tools/haproxy (no system install): its
# libraries (Lua, the OpenTracing wrapper) are unpacked beside it, so they go on the
# library path. The process is exec'd, so its PID is HAProxy's. Arguments go to
# HAProxy (`scripts/haproxy.sh -f haproxy.cfg -db`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KILN_HAPROXY_DIR:-$root/.cache/tools/haproxy}"
bin="$dir/usr/sbin/haproxy"
if [ ! -x "$bin" ]; then
  if command -v haproxy > /dev/null; then exec haproxy "$@"; fi
  echo "haproxy.sh: $bin not found; run \`make test-deps\`" >&2
  exit 2
fi
libs="$dir/usr/lib"
for multiarch in "$dir"/usr/lib/*-linux-gnu; do
  [ -d "$multiarch" ] && libs="$multiarch:$libs"
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$bin" "$@"
