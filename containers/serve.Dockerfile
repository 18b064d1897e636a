# syntax=docker/dockerfile:1.7
# The model server: kiln-serve alone on a distroless base, non-root, for a read-only
# root file system (the model is read from /mnt/models, which KServe's storage
# initializer fills, or from a registry reference; an MLflow download goes to $TMPDIR).
#
#   docker build -f containers/serve.Dockerfile -t kiln-serve .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 -p 127.0.0.1:8082:8082 \
#     --read-only --tmpfs /tmp -v "$PWD/kiln-runs/adult/train/model:/mnt/models:ro" \
#     -e KILN_INSECURE=true kiln-serve --model-name adult-income
#
# The listeners bind 0.0.0.0 inside the container, so kiln-serve wants TLS
# (KILN_TLS_CERT, KILN_TLS_KEY), bearer tokens (KILN_AUTH_TOKEN_FILE) or, behind a mesh
# sidecar or on a laptop's loopback-published ports as above, KILN_INSECURE=true.
# 8082 is the admin listener: health and /metrics.
#
# Same stages and build arguments as containers/Dockerfile: BUILD=cargo (CI: cargo-chef
# dependency layer, then the binary) or BUILD=host (`make images`: the host's binary);
# BASE is distroless cc upstream or the one assembled from Debian packages.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm
ARG BUILD=cargo
ARG BASE=gcr.io/distroless/cc-debian12:nonroot

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build-cargo
ARG PROFILE=release
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --locked --profile "${PROFILE}" --recipe-path recipe.json --package kiln-serve
COPY . .
RUN cargo build --locked --profile "${PROFILE}" --package kiln-serve --bin kiln-serve \
 && install -D -m 0755 "target/${PROFILE}/kiln-serve" /out/kiln-serve \
 && cargo xtask sbom kiln-serve --out /out/sbom.cdx.json

FROM scratch AS build-host
COPY bin/kiln-serve /out/kiln-serve
COPY sbom/kiln-serve.cdx.json /out/sbom.cdx.json

# checkov:skip=CKV_DOCKER_7:build-${BUILD} names a stage of this file (build-cargo or build-host), not an image
# hadolint ignore=DL3006
FROM build-${BUILD} AS build

# hadolint ignore=DL3006
FROM ${BASE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/kiln-mlops/kiln
LABEL org.opencontainers.image.title="kiln-serve" \
      org.opencontainers.image.description="Kiln model server: KServe V1, Open Inference Protocol REST and gRPC" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.kiln.sbom="/usr/share/kiln/sbom.cdx.json"
ENV KILN_SOURCE_REVISION="${REVISION}" \
    TMPDIR=/tmp \
    KILN_MODEL=/mnt/models \
    KILN_HTTP=0.0.0.0:8080 \
    KILN_GRPC=0.0.0.0:8081 \
    KILN_ADMIN=0.0.0.0:8082
COPY --from=build /out/kiln-serve /usr/local/bin/kiln-serve
COPY --from=build /out/sbom.cdx.json /usr/share/kiln/sbom.cdx.json
USER 65532:65532
WORKDIR /work
EXPOSE 8080 8081 8082
# checkov:skip=CKV_DOCKER_2:distroless has no shell or curl for a HEALTHCHECK; Kubernetes probes /v2/health/live and /v2/health/ready (infra/k8s/serving)
ENTRYPOINT ["/usr/local/bin/kiln-serve"]
