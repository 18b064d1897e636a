#!/usr/bin/env bash
# Run Debian's Alertmanager unpacked under .cache/tools (no system install): the
# Debian build reads its default notification template from the fixed path
# /usr/share/prometheus/alertmanager/default.tmpl, which only an installed package has.
# So, unless the package is installed, run it in a private mount namespace (an
# unprivileged user namespace) where the unpacked usr/share is /usr/share. The process
# is exec'd throughout, so its PID is Alertmanager's. Arguments go to Alertmanager.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KILN_ALERTMANAGER_DIR:-$root/.cache/tools/alertmanager}"
bin="$dir/usr/bin/prometheus-alertmanager"
[ -x "$bin" ] || { echo "alertmanager.sh: $bin not found; run \`make test-deps\`" >&2; exit 2; }
if [ -f /usr/share/prometheus/alertmanager/default.tmpl ]; then
  exec "$bin" "$@"
fi
if ! unshare --user --map-root-user --mount true 2> /dev/null; then
  echo "alertmanager.sh: /usr/share/prometheus/alertmanager/default.tmpl is missing and user namespaces are off; install Debian's prometheus-alertmanager package" >&2
  exit 2
fi
export KILN_AM_SHARE="$dir/usr/share" KILN_AM_BIN="$bin"
exec unshare --user --map-root-user --mount sh -c 'mount --bind "$KILN_AM_SHARE" /usr/share && exec "$KILN_AM_BIN" "$@"' alertmanager "$@"
