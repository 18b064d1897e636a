#!/usr/bin/env bash
# Assembles the runtime base of Kiln's CPU images from Debian 12 packages, for machines
# that cannot pull `gcr.io/distroless/cc-debian12:nonroot` (the base CI builds on).
# Distroless cc is itself made of these packages: glibc, libgcc, libgomp, libstdc++,
# libssl, CA certificates, time zones, /etc/services and /etc/protocols, base-files,
# and a passwd with `nonroot` (65532). No shell, no package manager.
#
#   containers/base/assemble.sh IMAGE        e.g. localhost/kiln-base/cc-debian12:nonroot
#
# The packages are fetched with `apt-get download` and unpacked with `dpkg -x`
# (scripts/deps/debian-package.sh; no maintainer scripts run, so the CA bundle they
# would generate is written here), then the root filesystem is imported with
# `podman import`. The image is rebuilt only when the
# package versions change (its label `org.kiln.base.packages` records them).
set -euo pipefail
image=${1:?usage: assemble.sh IMAGE}
packages=(base-files netbase tzdata ca-certificates libc6 libgcc-s1 libgomp1 libstdc++6 libssl3)
podman=${PODMAN:-podman}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
# Each package fetched and unpacked by the one helper that unpacks Debian packages
# for the tests' tools; it prints `PACKAGE VERSION unpacked under DIR`.
unpacked=()
for package in "${packages[@]}"; do
  line=$("$(dirname "$0")/../../scripts/deps/debian-package.sh" "$package" "$rootfs")
  read -r name version _ <<< "$line"
  unpacked+=("$name=$version")
done
versions=$(printf '%s\n' "${unpacked[@]}" | sort | paste -sd' ' -)
if [ "$($podman image inspect --format '{{index .Labels "org.kiln.base.packages"}}' "$image" 2> /dev/null)" = "$versions" ]; then
  echo "base $image is current ($versions)"
  exit 0
fi

# What distroless leaves out too: documentation, manuals, locales.
rm -rf "$rootfs"/usr/share/{doc,man,info,lintian,locale,bug}
# ca-certificates' maintainer script would build the bundle; build it the same way.
mkdir -p "$rootfs/etc/ssl/certs"
find "$rootfs/usr/share/ca-certificates" -name '*.crt' -print0 | sort -z | xargs -0 cat > "$rootfs/etc/ssl/certs/ca-certificates.crt"
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' > "$rootfs/etc/nsswitch.conf"
mkdir -p "$rootfs/tmp" "$rootfs/home/nonroot" "$rootfs/root" "$rootfs/work"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
chown 65532:65532 "$rootfs/home/nonroot" "$rootfs/work"

# A reproducible layer: sorted names, fixed times, numeric owners.
tar --sort=name --mtime=@0 --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
$podman import --quiet \
  --change 'USER 65532:65532' \
  --change 'WORKDIR /home/nonroot' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change "LABEL org.kiln.base.packages=\"$versions\"" \
  --change 'LABEL org.opencontainers.image.description="distroless cc-debian12 nonroot, assembled from Debian packages"' \
  "$work/rootfs.tar" "$image" > /dev/null
echo "base $image assembled from $versions ($(du -sh "$rootfs" | cut -f1) unpacked)"
