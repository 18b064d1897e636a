#!/usr/bin/env bash
# Kiln's container images with podman: build them from containers/, publish them signed
# to a registry, and pin the manifests to their digests. `make images`, `make publish`
# and `make pin-images` call this; the GitHub workflow builds with the same Containerfiles
# (BUILD=cargo, the upstream base) and signs with cosign.
#
#   scripts/images.sh env                       print the podman settings as `export` lines
#   scripts/images.sh build [--profile P] [IMAGE...]
#                                               build the images (all by default) from the
#                                               host's binaries of profile P (fast-release)
#                                               on the base assembled from Debian packages
#   scripts/images.sh publish REGISTRY SIGN_BY [IMAGE...]
#                                               push each image to REGISTRY/kiln-NAME,
#                                               sign its digest with the GPG key SIGN_BY
#                                               (SIGN_BY=cosign: keyless cosign, and the
#                                               SBOM attested; the GitHub workflow's way),
#                                               write images.lock (KILN_IMAGES_LOCK: elsewhere;
#                                               KILN_SIGSTORE: the lookaside URL, default
#                                               file://.cache/containers/sigstore)
#   scripts/images.sh list                      the image names
#   scripts/images.sh reset                     remove Kiln's podman storage (every image
#                                               built here) and the overlay mount podman
#                                               leaves on it, so .cache/ can be deleted
#
# Images: prepare validate tune train evaluate fairness register rollout serve, and
# train-cuda when NVIDIA's CUDA base is in local storage (nothing is pulled here).
# Each is tagged localhost/kiln-NAME:latest and :VERSION.
#
# podman's settings live under .cache/containers/ (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
# registries.d for signature lookaside), never in the system's files: runc as the
# runtime, explicit ulimits, storage in the clone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.cache/containers"
target="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
# The runtime base: assembled from Debian packages here (containers/base/assemble.sh);
# CI sets KILN_IMAGE_BASE=gcr.io/distroless/cc-debian12:nonroot, the upstream image.
base_image=${KILN_IMAGE_BASE:-localhost/kiln-base/cc-debian12:nonroot}
cuda_base=nvidia/cuda:12.8.1-runtime-ubuntu24.04
steps=(prepare validate tune train evaluate fairness register rollout)

say() { echo "images: $*" >&2; }
die() { say "$*"; exit 2; }

configure() {
  mkdir -p "$state/registries.d" "$state/sigstore"
  [ -f "$state/containers.conf" ] || cat > "$state/containers.conf" <<'EOF'
# Kiln's podman settings (scripts/images.sh). runc: crun fails on hosts with hybrid
# cgroups. Explicit ulimits: the runtime may not raise them to the defaults' values.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
EOF
  [ -f "$state/storage.conf" ] || cat > "$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
EOF
  export CONTAINERS_CONF="$state/containers.conf"
  export CONTAINERS_STORAGE_CONF="$state/storage.conf"
}

version() { (cd "$root" && cargo xtask version); }

all_images() {
  printf '%s\n' "${steps[@]}" serve
  if podman image exists "$cuda_base" 2> /dev/null; then echo train-cuda; fi
}

# The Containerfile, package, binary and features of an image.
describe() {
  case "$1" in
    serve)      echo "containers/serve.Dockerfile kiln-serve kiln-serve -" ;;
    train-cuda) echo "containers/train-cuda.Dockerfile kiln-train kiln-train cuda" ;;
    *)          printf '%s\n' "${steps[@]}" | grep -qx "$1" || die "unknown image '$1' (scripts/images.sh list)"
                echo "containers/Dockerfile kiln-$1 kiln-$1 -" ;;
  esac
}

build() {
  local profile=fast-release images=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --profile) profile=${2:?--profile needs a value}; shift 2 ;;
      *) images+=("$1"); shift ;;
    esac
  done
  command -v podman > /dev/null || die "podman is not installed (scripts/deps/install.sh images)"
  # Where the upstream base can be pulled (CI sets KILN_IMAGE_BASE), so can CUDA's:
  # the GPU train image is built there.
  case "$base_image" in
    localhost/*) ;;
    *) podman pull --quiet "$cuda_base" > /dev/null ;;
  esac
  [ ${#images[@]} -gt 0 ] || mapfile -t images < <(all_images)
  if ! podman image exists "$cuda_base" 2> /dev/null; then
    say "train-cuda skipped: its base $cuda_base is not in local storage and cannot be pulled here"
  fi
  case "$base_image" in
    localhost/*) "$root/containers/base/assemble.sh" "$base_image" >&2 ;;
    *)           podman pull --quiet "$base_image" > /dev/null ;;
  esac
  local ver revision context
  ver=$(version)
  revision=$(git -C "$root" rev-parse HEAD 2> /dev/null || echo unknown)
  context="$state/context"
  rm -rf "$context"
  mkdir -p "$context/bin" "$context/sbom"
  for image in "${images[@]}"; do describe "$image" > /dev/null; done
  # The binaries `make build` makes (every binary of the workspace, features unified
  # across it: a no-op when they are current); the cuda one separately (-p, one feature
  # more). Each SBOM follows the build that made its binary.
  (cd "$root" && cargo build --locked --profile "$profile" --bins)
  local dir=$profile
  [ "$profile" = dev ] && dir=debug
  for i in "${!images[@]}"; do
    local image=${images[$i]} file package binary features start
    read -r file package binary features <<< "$(describe "$image")"
    start=$(date +%s)
    local built="$target/$dir/$binary" feature_args=(--workspace-build)
    if [ "$image" = train-cuda ]; then
      # Its own target folder: the CPU kiln-train stays what `cargo build --bins` made.
      (cd "$root" && CARGO_TARGET_DIR="$target/cuda" cargo build --locked --profile "$profile" -p kiln-train --features cuda --bins)
      built="$target/cuda/$dir/$binary"
      feature_args=(--features "$features")
    fi
    # Stripped: the fast-release and release profiles already are; a debug build is not.
    strip -o "$context/bin/kiln-$image" "$built"
    (cd "$root" && cargo xtask sbom "$package" "${feature_args[@]}" --out "$context/sbom/kiln-$image.cdx.json")
    local base=$base_image
    [ "$image" = train-cuda ] && base=$cuda_base
    podman build --quiet \
      -f "$root/$file" \
      --build-arg BUILD=host --build-arg BASE="$base" \
      --build-arg STEP="${binary#kiln-}" --build-arg VERSION="$ver" --build-arg REVISION="$revision" \
      -t "localhost/kiln-$image:latest" -t "localhost/kiln-$image:$ver" \
      "$context" > /dev/null
    say "kiln-$image built in $(( $(date +%s) - start )) s: $(podman image inspect --format '{{.Size}}' "localhost/kiln-$image:latest") bytes"
  done
  # The intermediate stages and the images these replaced (untagged, in Kiln's storage).
  podman image prune --force > /dev/null
}

publish() {
  local registry=${1:-} sign_by=${2:-}
  [ -n "$registry" ] || die "publish needs REGISTRY (host:port/prefix)"
  [ -n "$sign_by" ] || die "publish needs SIGN_BY (a GPG key fingerprint)"
  shift 2
  local images=("$@")
  [ ${#images[@]} -gt 0 ] || mapfile -t images < <(all_images | while read -r i; do
    podman image exists "localhost/kiln-$i:latest" && echo "$i"; done)
  [ ${#images[@]} -gt 0 ] || die "no image built yet (make images)"
  local host=${registry%%/*} ver
  ver=$(version)
  # Where simple signing puts the signatures of this registry: a lookaside store
  # (containers-registries.d(5)), served to the nodes that verify them.
  local lookaside=${KILN_SIGSTORE:-file://$state/sigstore}
  cat > "$state/registries.d/kiln-publish.yaml" <<EOF
docker:
  $host:
    lookaside: $lookaside
    lookaside-staging: $lookaside
EOF
  local tls=()
  case "$host" in localhost:*|127.*) tls=(--dest-tls-verify=false) ;; esac
  local final=${KILN_IMAGES_LOCK:-$root/images.lock}
  local lock="$final.new"
  {
    echo "# Kiln's images by digest: what the Argo templates and the serving overlays run."
    echo "# Written by \`make publish\` (scripts/images.sh); \`make pin-images\` copies the"
    echo "# digests into argo/ and infra/k8s/, and \`make lint-manifests\` fails when they differ."
    echo "# version $ver"
  } > "$lock"
  for image in "${images[@]}"; do
    local digestfile digest sign=()
    digestfile=$(mktemp)
    [ "$sign_by" = cosign ] || sign=(--sign-by "$sign_by")
    skopeo copy --quiet "${tls[@]}" --registries.d "$state/registries.d" \
      "${sign[@]}" --digestfile "$digestfile" \
      "containers-storage:localhost/kiln-$image:latest" "docker://$registry/kiln-$image:$ver"
    digest=$(cat "$digestfile")
    rm -f "$digestfile"
    if [ "$sign_by" = cosign ]; then
      # Keyless (Fulcio, Rekor): the workflow's OIDC identity signs the digest, and the
      # SBOM the image carries is attested beside it.
      cosign sign --yes "$registry/kiln-$image@$digest"
      cosign attest --yes --type cyclonedx --predicate "$state/context/sbom/kiln-$image.cdx.json" \
        "$registry/kiln-$image@$digest"
    fi
    echo "kiln-$image $digest" >> "$lock"
    say "kiln-$image pushed to $registry/kiln-$image:$ver as $digest, signed by $sign_by"
  done
  mv "$lock" "$final"
  say "$final written; run \`make pin-images\` to pin the manifests to it"
}

command=${1:-}
[ -n "$command" ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
shift
configure
case "$command" in
  env)     printf 'export %s=%q\n' CONTAINERS_CONF "$CONTAINERS_CONF" \
             CONTAINERS_STORAGE_CONF "$CONTAINERS_STORAGE_CONF" ;;
  build)   build "$@" ;;
  publish) publish "$@" ;;
  list)    all_images ;;
  reset)   if command -v podman > /dev/null; then podman system reset --force > /dev/null 2>&1 || true; fi
           if mountpoint -q "$state/storage/overlay" 2> /dev/null; then umount "$state/storage/overlay"; fi
           rm -rf "$state/storage" "$state/run" ;;
  *)       die "unknown command '$command' (env, build, publish, list, reset)" ;;
esac
