# doris-admission: build, test and lint.
GO      ?= go
BIN     ?= bin/doris-admission
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: build test controlplane generate schemas lint helm-lint

## build: compile the doris-admission binary into bin/.
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/doris-admission

## controlplane: build kube-apiserver, etcd and kubectl from source (cached; only missing ones are built).
controlplane:
	bash test/controlplane/build.sh

## test: unit and e2e tests; builds the control plane first when it is missing.
test:
	assets=$$(bash test/controlplane/build.sh) && \
	KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -timeout 30m ./...

## generate: CRDs (deploy/crds, copied into the Helm chart) and deep-copy functions from policies/api.
generate:
	$(GO) tool controller-gen object paths=./policies/api/...
	$(GO) tool controller-gen crd paths=./policies/api/... output:crd:dir=deploy/crds
	cp deploy/crds/policies.doris-admission.io_*.yaml deploy/helm/doris-admission/crds/

## schemas: refresh the embedded OpenAPI schemas from the source-built kube-apiserver.
schemas:
	assets=$$(bash test/controlplane/build.sh) && \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./policies/schema/snapshot policies/schema/openapi

## lint: gofmt, go vet and staticcheck (pinned in go.mod's tool directive).
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## helm-lint: lint the Helm chart in both certificate modes, with helm built from tools/helm (cached).
helm-lint:
	helm=$$(bash tools/helm/build.sh) && \
	"$$helm" lint --strict deploy/helm/doris-admission --set certificates.mode=self-managed && \
	"$$helm" lint --strict deploy/helm/doris-admission --set certificates.mode=cert-manager
