# syntax=docker/dockerfile:1.7
# The train step for GPU nodes: kiln-train built with `--features cuda` on the NVIDIA
# CUDA runtime image (cudart, NVRTC for burn's kernel compiler; the driver comes from
# the node through the NVIDIA container toolkit). Build from the repository root:
#
#   docker build -f containers/train-cuda.Dockerfile -t kiln-train-cuda .
#
# burn 0.21 loads CUDA at run time, so the build stage needs no CUDA toolkit: the
# same stages and build arguments as the CPU images (BUILD=cargo or host), one feature
# more; BASE is NVIDIA's CUDA runtime image, which `make images` uses only when it is
# already in local storage (nothing can be pulled there).

ARG RUST_VERSION=1.95.0
ARG BUILD=cargo
ARG BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build-cargo
ARG PROFILE=release
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --locked --profile "${PROFILE}" --recipe-path recipe.json \
      --package kiln-train --features cuda
COPY . .
RUN cargo build --locked --profile "${PROFILE}" --package kiln-train --bin kiln-train --features cuda \
 && install -D -m 0755 "target/${PROFILE}/kiln-train" /out/kiln-train \
 && cargo xtask sbom kiln-train --features cuda --out /out/sbom.cdx.json

FROM scratch AS build-host
COPY bin/kiln-train-cuda /out/kiln-train
COPY sbom/kiln-train-cuda.cdx.json /out/sbom.cdx.json

# checkov:skip=CKV_DOCKER_7:build-${BUILD} names a stage of this file (build-cargo or build-host), not an image
# hadolint ignore=DL3006
FROM build-${BUILD} AS build

# hadolint ignore=DL3006
FROM ${BASE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/kiln-mlops/kiln
LABEL org.opencontainers.image.title="kiln-train-cuda" \
      org.opencontainers.image.description="Kiln train step with the burn CUDA backend" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.kiln.sbom="/usr/share/kiln/sbom.cdx.json"
# The same unprivileged user id as the distroless images, so one securityContext fits all.
RUN groupadd --gid 65532 kiln \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /work --shell /usr/sbin/nologin kiln
ENV KILN_SOURCE_REVISION="${REVISION}" \
    TMPDIR=/tmp \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=build /out/kiln-train /usr/local/bin/kiln-step
COPY --from=build /out/sbom.cdx.json /usr/share/kiln/sbom.cdx.json
USER 65532:65532
WORKDIR /work
# checkov:skip=CKV_DOCKER_2:a batch step, not a server: Argo and `docker run` watch its exit code (0 ok, 2 usage, 3 gate failed, 75 retry); there is nothing to probe
ENTRYPOINT ["/usr/local/bin/kiln-step"]
CMD ["--help"]
