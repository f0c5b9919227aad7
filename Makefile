# virtd: see README.md. `make help` lists the targets.

GO          ?= go
BIN         := $(CURDIR)/bin
VERSION     ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
LDFLAGS     := -X github.com/virtd/virtd/internal/version.Version=$(VERSION)
RUN_ROOT    ?= $(CURDIR)/.run
DRIVERS     := test qemu lxc xen
# Built as scripts/packages.sh builds the packages: without cgo but for the
# drivers that need it (LXC's container helper, Xen's libxl), and without
# gRPC's x/net/trace (never enabled here), whose templates keep every
# exported method of every type in the binary: 2 MiB more of virtd, all of
# it resident.
GO_TAGS     := grpcnotrace
CGO_DRIVERS := lxc xen
TEST_FLAGS  ?= -count=1 -timeout 20m
# How long `make fuzz` runs each fuzz target.
FUZZTIME    ?= 30s
# The process-level tests that run again with virtd and the test driver
# built with the race detector: supervision, concurrency, limits.
RACE_E2E    := TestDriverKilledMidCall|TestKilledDriverGivesNoBareErrors|TestHungDriverIsKilled|TestCallWaitsForRestartingDriver|TestReplacedDriver|TestConcurrentClients|TestEvent|TestMax|TestDaemonKilledReattaches|TestView
APT_PACKAGES ?= git ca-certificates gcc libc6-dev pkg-config libxen-dev libyajl-dev systemd \
                qemu-system-x86 qemu-system-common qemu-utils busybox-static cpio \
                ovmf swtpm swtpm-tools qemu-guest-agent \
                debootstrap rpm dpkg-dev libvirt-clients python3-libvirt

BUF_VERSION               := v1.75.0
PROTOC_GEN_GO_VERSION     := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
NFPM_VERSION               := v2.45.2
# staticcheck's release 2026.2.2 is the module version v0.8.2.
STATICCHECK_VERSION        := v0.8.2

.PHONY: all build test test-assets run bench fuzz packages proto proto-check lint tools deps clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: deps ## build virtd, virtsh and every driver into bin/
	@mkdir -p $(BIN)
	@sh test/xen/check-build-deps.sh
	CGO_ENABLED=0 $(GO) build -tags $(GO_TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/virtd ./cmd/virtd
	CGO_ENABLED=0 $(GO) build -tags $(GO_TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/virtsh ./cmd/virtsh
	@for d in $(DRIVERS); do \
		cgo=0; case " $(CGO_DRIVERS) " in *" $$d "*) cgo=1;; esac; \
		echo "CGO_ENABLED=$$cgo $(GO) build -tags $(GO_TAGS) -o $(BIN)/virtd-driver-$$d ./cmd/driver-$$d"; \
		CGO_ENABLED=$$cgo $(GO) build -tags $(GO_TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/virtd-driver-$$d ./cmd/driver-$$d || exit 1; \
	done

deps: ## install what the build and the tests need (idempotent)
	@bash scripts/deps.sh $(APT_PACKAGES)

test-assets: deps ## fetch and build what the tests boot: guest kernels, initramfs, a container root, Xen
	@sh test/qemu/setup.sh
	@sh test/lxc/setup.sh
	@sh test/xen/setup.sh

test: deps tools lint proto-check build test-assets ## set up, lint, and run every test
	$(GO) test $(TEST_FLAGS) -race ./host/... ./core/... ./daemon/... ./driver/...
	VIRTD_E2E_RACE=1 $(GO) test $(TEST_FLAGS) -run '$(RACE_E2E)' ./test/e2e/
	$(GO) test $(TEST_FLAGS) ./...

run: build ## build, then run virtd in the foreground on a private root
	@mkdir -p $(RUN_ROOT)
	@echo "virtd runs on $(RUN_ROOT); in another terminal:"
	@echo "  VIRTD_RUN_DIR=$(RUN_ROOT)/run/virtd bin/virtsh -c test:///default list --all"
	@echo "or, with libvirt's virsh:"
	@echo "  virsh -c 'test+unix:///default?socket=$(RUN_ROOT)/run/virtd/libvirt-sock' list --all"
	$(BIN)/virtd --root $(RUN_ROOT) --driver-dir $(BIN)

bench: build test-assets ## run the benchmarks and print a table
	@$(GO) test -run '^$$' -bench 'DomainInfo|GetVersion|GetHostname' -benchtime 5000x ./test/e2e/ > .bench.out
	@$(GO) test -run '^$$' -bench 'Domains1000/.*/(define|lookup-info|dumpxml|undefine)' -benchtime 1x ./test/e2e/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'List10000|ColdDriver|Domains1000/.*/list' -benchtime 20x ./test/e2e/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'RSS|QEMU20Guests' -benchtime 1x ./test/e2e/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'FrontEnds' -benchtime 2000x ./test/e2e/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'StartDiskless|SuspendEvent' -benchtime 20x ./internal/qemu/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'Containers' -benchtime 1x ./internal/lxc/ >> .bench.out
	@$(GO) test -run '^$$' -bench 'Hostile' -benchtime 1x ./test/e2e/ >> .bench.out
	@awk '/^Benchmark/ { line = sprintf("%-40s", $$1); for (i = 3; i < NF; i += 2) line = line sprintf("  %12s %-8s", $$i, $$(i+1)); print line } /^(FAIL|--- FAIL)/ { print; bad = 1 } END { exit bad }' .bench.out

# Every fuzz target, found afresh on each run: a func FuzzXxx(*testing.F) in a
# _test.go file of a package (not under testdata, nor a directory Go ignores).
fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -- $$(grep -rn --include='*_test.go' --exclude-dir='.*' --exclude-dir='_*' --exclude-dir=testdata '^func Fuzz' | \
		sed -nE 's|^(.*/)?[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*|./\1 \2|p' | sort -u); \
	if [ $$# -eq 0 ]; then echo "fuzz: no fuzz targets (func FuzzXxx(f *testing.F) in a _test.go file)"; exit 0; fi; \
	failed=; \
	while [ $$# -gt 0 ]; do \
		pkg=$$1 name=$$2; shift 2; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$pkg:$$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (the failing inputs are under testdata/fuzz/ in each package)" >&2; exit 1; fi

tools: ## install buf, the protoc plugins, nfpm and staticcheck into bin/ (pinned)
	@mkdir -p $(BIN)
	@test -x $(BIN)/buf || GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@test -x $(BIN)/protoc-gen-go || GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(BIN)/protoc-gen-go-grpc || GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@test -x $(BIN)/nfpm || GOBIN=$(BIN) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	@test -x $(BIN)/staticcheck || GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

packages: deps tools ## build every .deb and .rpm into dist/ (VERSION=x.y.z to override)
	NFPM=$(BIN)/nfpm VERSION=$(VERSION) bash scripts/packages.sh

proto: tools ## regenerate the Go code from proto/
	PATH=$(BIN):$$PATH $(BIN)/buf generate

proto-check: proto ## fail when the committed generated code differs from proto/
	@git diff --exit-code -- proto/ || { echo "generated code in proto/ is stale: run 'make proto' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "untracked generated files in proto/: run 'make proto' and commit" >&2; exit 1; }

lint: tools ## gofmt, go vet, staticcheck and buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	$(BIN)/buf lint

clean: ## remove build output and the private run root
	rm -rf $(BIN) dist .bench.out
	@if [ -d $(RUN_ROOT) ]; then pkill -f '$(RUN_ROOT)' 2>/dev/null; rm -rf $(RUN_ROOT); fi; true
