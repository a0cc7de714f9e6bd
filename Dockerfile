# syntax=docker/dockerfile:1
# v2m image: the v2md daemon (ENTRYPOINT; pick the service with args: auth, gateway, convert,
# notify, standalone) and the v2m client, on Debian with ffmpeg.
#   docker build --build-arg VERSION=0.1.0 -t v2m:0.1.0 .
# Build args: VERSION (stamped into the binaries), GO_IMAGE (the Go toolchain image of the build
# stage), BASE_IMAGE (the runtime image, Debian bookworm or a derivative with apt), GOPROXY.
# Runs as the numeric user 65532 and works with a read-only root filesystem: temporary files
# go to TMPDIR=/tmp/v2m, which Kubernetes mounts as an emptyDir.
# scripts/image-test.sh builds this file with podman from a local Debian base and runs a
# conversion in the image.

ARG GO_IMAGE=golang:1.26
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
# The module and build caches are named here so that the cache mounts below hold them whatever
# GOPATH the Go image sets.
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build
# Empty means Go's default module proxy.
ARG GOPROXY=
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X github.com/v2m/v2m/internal/version.Version=${VERSION} -X github.com/v2m/v2m/internal/version.commit=${COMMIT}" \
      -o /out/v2md ./cmd/v2md && \
    go build -trimpath -ldflags "-s -w -X github.com/v2m/v2m/internal/version.Version=${VERSION} -X github.com/v2m/v2m/internal/version.commit=${COMMIT}" -o /out/v2m ./cmd/v2m && \
    /out/v2md --version

FROM ${BASE_IMAGE}
# VERSION is declared after this step so that a new version reuses the cached ffmpeg layer.
RUN apt-get update && \
    apt-get install -y --no-install-recommends ffmpeg ca-certificates tzdata && \
    rm -rf /var/lib/apt/lists/* && \
    install -d -m 0770 -o 65532 -g 65532 /tmp/v2m /data
COPY --from=build /out/v2md /out/v2m /usr/local/bin/
ARG VERSION=dev
LABEL org.opencontainers.image.title="v2m" \
      org.opencontainers.image.description="v2m: video to MP3 conversion services (v2md) and client (v2m)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/v2m/v2m"
ENV TMPDIR=/tmp/v2m
USER 65532:65532
WORKDIR /data
EXPOSE 8080 8081 8082 8083
ENTRYPOINT ["v2md"]
CMD ["--help"]
