# syntax=docker/dockerfile:1

# Flowscope collector image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t flowscope .
#   docker run -p 4317:4317 -p 4318:4318 -p 8686:8686 -p 9411:9411 -v flowscope:/data flowscope
#
# The image listens on all interfaces (the binary's defaults bind to 127.0.0.1
# only) and keeps its store in the /data volume. Any setting can be changed
# with FLOWSCOPE_* environment variables or flags after the image name, for
# example: docker run flowscope --retention=24h
#
# Listening on all interfaces exposes every trace: give the image TLS and
# tokens (docs/security.md), with files mounted read-only, for example
#   -v /etc/flowscope/tls:/tls:ro
#   -e FLOWSCOPE_TLS_CERT_FILE=/tls/tls.crt -e FLOWSCOPE_TLS_KEY_FILE=/tls/tls.key
#   -e FLOWSCOPE_INGEST_TOKEN_FILE=/tls/ingest-token
#   -e FLOWSCOPE_READ_TOKEN_FILE=/tls/read-token -e FLOWSCOPE_WRITE_TOKEN_FILE=/tls/write-token
#   -e FLOWSCOPE_ALLOWED_HOSTS=flowscope.example
# Without them the collector logs a SECURITY warning per exposed listener at
# start and the UI shows a banner.
# cmd/collector/dockerfile_test.go checks the properties this file promises.

# GO_VERSION must match the go directive of go.mod.
ARG GO_VERSION=1.26.8

# ---- build ------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/collector ./cmd/collector \
 && mkdir -p /out/data

# ---- run --------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/collector /usr/local/bin/collector
# The store directory, owned by the nonroot user (65532) so that a fresh
# named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV FLOWSCOPE_DATA_DIR=/data \
    FLOWSCOPE_OTLP_GRPC_ADDR=0.0.0.0:4317 \
    FLOWSCOPE_OTLP_HTTP_ADDR=0.0.0.0:4318 \
    FLOWSCOPE_ZIPKIN_ADDR=0.0.0.0:9411 \
    FLOWSCOPE_HTTP_ADDR=0.0.0.0:8686
USER 65532:65532
# 4317 OTLP/gRPC, 4318 OTLP/HTTP, 8686 UI and API, 9411 Zipkin.
EXPOSE 4317 4318 8686 9411
VOLUME /data
ENTRYPOINT ["/usr/local/bin/collector", "serve"]
