# doris-admission: build, test and lint.
GO      ?= go
BIN     ?= bin/doris-admission
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: build test controlplane generate schemas lint helm-lint editor editor-check screenshots

## build: compile the doris-admission server and the doris-admission-agent into bin/.
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/doris-admission
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)-agent ./cmd/doris-admission-agent

## controlplane: build kube-apiserver, etcd, kubectl and the node's kubelet, kube-controller-manager,
## kube-scheduler, kube-proxy and CoreDNS from source (cached; only missing ones are built).
controlplane:
	bash test/controlplane/build.sh

## MODULES are the product (.) and its harnesses, each a Go module of its own so the product's
## go.mod lists only what the product runs: test (e2e on a real node, the stand-in, the fake FE,
## the agent's scenarios, the soak) and bench (the load generator). test/controlplane builds the
## control plane from source.
MODULES := . test bench

## test: unit and e2e tests of every module, and the engine's benchmarks run once each (so they
## keep working); builds the control plane and the node first when they are missing, and installs
## the node's Debian packages (containerd, runc, CNI plugins, ...) and Chromium (the playground's
## browser test) when they are. It also checks that the playground's embedded editor bundle is
## what playground/editor/build.sh makes of its pinned sources.
test: editor-check
	bash test/node/install.sh && \
	bash test/browser/install.sh && \
	assets=$$(bash test/controlplane/build.sh) && \
	for module in $(MODULES); do \
	  (cd $$module && KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -timeout 30m ./...) || exit 1; \
	done && \
	$(GO) test -run '^$$' -bench . -benchtime 1x ./policies/...

## editor: bundle the playground's editor (CodeMirror from npm, esbuild from go.mod's tools) into
## playground/page/editor.js, which the binary embeds; commit the result.
editor:
	bash playground/editor/build.sh

## editor-check: fail when playground/page/editor.js is not what build.sh makes.
editor-check:
	@cp playground/page/editor.js /tmp/editor-committed.js && bash playground/editor/build.sh && \
	if ! cmp -s playground/page/editor.js /tmp/editor-committed.js; then \
	  cp /tmp/editor-committed.js playground/page/editor.js; \
	  echo "playground/page/editor.js is not what playground/editor/build.sh makes: run make editor and commit it"; exit 1; \
	fi

## screenshots: run the playground's browser test and keep its screenshots in docs/images/playground.
screenshots:
	bash test/browser/install.sh && mkdir -p docs/images/playground && \
	cd test && PLAYGROUND_SCREENSHOTS=$(CURDIR)/docs/images/playground $(GO) test -count=1 -run TestPlaygroundInTheBrowser ./browser/

## generate: CRDs (deploy/crds, copied into the Helm chart) and deep-copy functions from policies/api.
generate:
	$(GO) tool controller-gen object paths=./policies/api/...
	$(GO) tool controller-gen crd paths=./policies/api/... output:crd:dir=deploy/crds
	cp deploy/crds/*_*.yaml deploy/helm/doris-admission/crds/

## schemas: refresh the embedded OpenAPI schemas from the source-built kube-apiserver.
schemas:
	assets=$$(bash test/controlplane/build.sh) && \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./policies/schema/snapshot policies/schema/openapi

## lint: gofmt, go vet and staticcheck (pinned in go.mod's tool directive) on every module.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@staticcheck=$$($(GO) tool -n staticcheck) && \
	for module in $(MODULES); do \
	  echo "lint: $$module"; \
	  (cd $$module && $(GO) vet ./... && "$$staticcheck" ./...) || exit 1; \
	done

## helm-lint: lint the Helm chart in both certificate modes, with helm built from tools/helm (cached).
helm-lint:
	helm=$$(bash tools/helm/build.sh) && \
	"$$helm" lint --strict deploy/helm/doris-admission --set certificates.mode=self-managed && \
	"$$helm" lint --strict deploy/helm/doris-admission --set certificates.mode=cert-manager

## demo: a throwaway control plane with doris-admission in front of it; applies deploy/examples
## and explains what was added and what was refused. DEMO_KEEP=1 keeps it running until Ctrl-C.
## Built and exec'd rather than go run, so Ctrl-C reaches the demo alone and its exit status is make's.
.PHONY: demo
demo:
	assets=$$(bash test/controlplane/build.sh) && \
	$(GO) build -o .cache/demo/demo ./hack/demo && \
	KUBEBUILDER_ASSETS="$$assets" DEMO_KEEP="$(DEMO_KEEP)" exec .cache/demo/demo

## image: the container images (Dockerfile): the server as $(IMAGE):$(VERSION) and :latest, the
## agent as $(IMAGE)-agent:$(VERSION) and :latest; needs docker.
IMAGE ?= doris-admission/doris-admission
.PHONY: image
image:
	@command -v docker >/dev/null 2>&1 || { \
	  echo "make image: docker is not installed here (or not on PATH), so the image was not built."; \
	  echo "Install Docker, or build the same Dockerfile with another engine, for example:"; \
	  echo "  podman build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) ."; \
	  echo "  podman build --build-arg VERSION=$(VERSION) --target agent -t $(IMAGE)-agent:$(VERSION) ."; \
	  exit 1; }
	@docker info >/dev/null 2>&1 || { \
	  echo "make image: docker is installed but its daemon does not answer (docker info failed), so the image was not built."; \
	  echo "Start Docker (or point DOCKER_HOST at a running daemon) and run make image again."; \
	  exit 1; }
	docker build --build-arg VERSION=$(VERSION) --target agent -t $(IMAGE)-agent:$(VERSION) -t $(IMAGE)-agent:latest .
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

## soak: the webhook server under a steady loopback load for SOAK_DURATION at SOAK_RATE
## requests per second; prints requests, errors and memory, and fails on any error or growth.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 500
.PHONY: soak
soak:
	cd test && SOAK_DURATION=$(SOAK_DURATION) SOAK_RATE=$(SOAK_RATE) $(GO) test -count=1 -timeout 0 -run TestSoak -v ./soak

## fuzz: every fuzz target (func Fuzz* in the tracked tests) for FUZZTIME each, one after another.
## A crasher fails the run and is written to its package's testdata/fuzz/<FuzzName>/; keep it there
## as a seed once fixed. make test runs every target's seeds as plain tests.
FUZZTIME ?= 1m
.PHONY: fuzz
fuzz:
	@set -e; for file in $$(git ls-files '*_test.go' | xargs -r grep -l '^func Fuzz'); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	    echo "== $$name in ./$$(dirname "$$file") for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s "./$$(dirname "$$file")"; \
	  done; \
	done

## bench: doris-admission against baselines measured side by side in one run (webhook serving
## against a null webhook, StatefulSet creates through kube-apiserver without webhooks, with ours
## and with the exported native policies, Pod creates from 50, 200 and 500 clients under the Pod
## Security Standards the same three ways, memory, the audit's scan), printed as one table; then
## the CEL benchmarks of the built-in policies. About 6 minutes; BENCHMARKS.md says how to read
## it. Not part of make test.
.PHONY: bench
bench:
	assets=$$(bash test/controlplane/build.sh) && \
	cd bench && KUBEBUILDER_ASSETS="$$assets" $(GO) run ./cmd/bench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench '^BenchmarkBuiltin' -benchmem -benchtime 200ms ./policies/engine/
