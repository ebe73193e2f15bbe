# The doris-admission images, from one build of both binaries:
#   - the server (the last stage, built by default): the Deployment in
#     deploy/kustomize/base and the Helm chart run it with `serve ...` as args
#     to its ENTRYPOINT;
#   - the in-pod agent (--target agent): the doris-agent policy's init
#     container runs this image (setting agentImage in
#     policies/builtin/settings/settings.yaml) with the command
#     `doris-admission-agent install --to /opt/doris-admission/bin`, which finds
#     the binary on PATH at /usr/local/bin. It holds the agent alone, small
#     enough to copy into every Doris pod.
# Build both with `make image`, which passes VERSION as `make build` stamps it.
# It needs neither BuildKit nor buildx; with buildx, --platform picks the target.

FROM golang:1.26.8 AS build
WORKDIR /src
ENV GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
# Set by buildx for the --platform asked for; empty means this machine's.
ARG TARGETOS
ARG TARGETARCH
# cmd/doris-admission-agent's size test builds the agent with these flags.
RUN for command in doris-admission doris-admission-agent; do \
      CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
      go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/$command ./cmd/$command || exit 1; \
    done

# Static, no shell, no package manager; runs as nonroot (65532:65532). The
# emptyDir it installs the agent into is writable by any user.
FROM gcr.io/distroless/static-debian12:nonroot AS agent
COPY --from=build /out/doris-admission-agent /usr/local/bin/doris-admission-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/doris-admission-agent"]

# Static, no shell, no package manager; runs as nonroot (65532:65532), as the
# Deployment's securityContext (runAsNonRoot, runAsUser 65532) expects.
FROM gcr.io/distroless/static-debian12:nonroot AS server
COPY --from=build /out/doris-admission /usr/local/bin/doris-admission
USER 65532:65532
# 9443 webhook (HTTPS), 8080 metrics, 8081 health probes.
EXPOSE 9443 8080 8081
ENTRYPOINT ["/usr/local/bin/doris-admission"]
CMD ["serve"]
