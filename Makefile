# Sluice: `make run` builds everything and runs the agent on its default
# config; `make test` runs every test (installing InfluxDB 1.8 and Prometheus
# on first use).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Static executables: no libc to load (≈ 1.5 MiB less RSS a process) and
# the same program on every host. `CGO_ENABLED=1 GOFLAGS=-tags=sqlite_cgo
# make build` builds the agent with the cgo SQLite driver instead.
CGO_ENABLED ?= 0

# Pinned code generators (protoc itself: Debian's protobuf-compiler 3.21.12).
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0

PLUGIN_CMDS := $(wildcard plugins/*/cmd/sluice-source-*)
PLUGINS     := $(notdir $(PLUGIN_CMDS))

# The config `make run` uses, and where it keeps its data.
RUN_CONFIG ?= config/sluice.run.yaml
PREFIX     ?= /usr

.PHONY: all build run demo test test-faults test-short test-systemd vet fmt bench proto clean influxd prometheus redis chromium web install deb

all: build

build:
	@mkdir -p bin/plugins
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -ldflags '$(LDFLAGS)' -o bin/sluice ./agent/cmd/sluice
	@for p in $(PLUGIN_CMDS); do \
		echo "CGO_ENABLED=$(CGO_ENABLED) $(GO) build -o bin/plugins/$$(basename $$p) ./$$p"; \
		CGO_ENABLED=$(CGO_ENABLED) $(GO) build -ldflags '$(LDFLAGS)' -o bin/plugins/$$(basename $$p) ./$$p || exit 1; \
	done
	@# The agent refuses plugins others may write (a umask of 002 would make them so).
	@chmod go-w bin bin/plugins bin/plugins/*

run: build
	@mkdir -p var
	@getent hosts stream.binance.com >/dev/null 2>&1 || \
		echo "** stream.binance.com does not resolve: this host looks offline. The agent will keep retrying;\n** \`make demo\` runs the same feed against the in-repo simulated exchange instead." >&2
	./bin/sluice run -config $(RUN_CONFIG)

# Offline: the agent against the simulated Binance for 15s, then what landed.
demo: build
	$(GO) run ./scripts/demo

# Install into DESTDIR/PREFIX (binaries, plugins, systemd unit, example config).
install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" scripts/install.sh

# A Debian package in dist/, built with nfpm (pinned in packaging/deb.sh).
deb: build
	packaging/deb.sh dist

# InfluxDB 1.8 for the integration tests, built once into .cache/bin.
influxd:
	@scripts/influxd.sh >/dev/null

# Prometheus for the agent-health dashboard's tests: Debian's package,
# installed when missing (needs root).
prometheus:
	@scripts/prometheus.sh >/dev/null

# redis-server and headless Chromium for the live sink's tests: Debian's
# packages, installed when missing (needs root).
redis:
	@scripts/redis.sh >/dev/null

chromium:
	@scripts/chromium.sh >/dev/null

# The live sink's page bundle (sinks/live/web/dist/app.js, committed) from
# npm, with the versions pinned in sinks/live/web/package-lock.json. Needs
# node and npm; `make test` does not.
web:
	cd sinks/live/web && npm ci --no-audit --no-fund && npm run build

vet:
	$(GO) vet ./...

test: influxd prometheus redis chromium vet
	SLUICE_SYSTEMD=$$(scripts/systemd-tools.sh --if-able) \
	SLUICE_INFLUXD=$(CURDIR)/.cache/bin/influxd SLUICE_REQUIRE_INFLUXD=1 SLUICE_REQUIRE_PROMETHEUS=1 \
	SLUICE_REQUIRE_REDIS=1 SLUICE_REQUIRE_CHROMIUM=1 \
		$(GO) test -race -timeout 20m ./...
	@# The SQLite sink's tests again with the cgo driver (-tags sqlite_cgo,
	@# sinks/sqlite/DRIVER.md), where a C compiler is at hand.
	@if command -v cc >/dev/null; then \
		echo "CGO_ENABLED=1 $(GO) test -tags sqlite_cgo ./sinks/sqlite/"; \
		CGO_ENABLED=1 $(GO) test -tags sqlite_cgo ./sinks/sqlite/; \
	else echo "no C compiler: skipping the SQLite sink's tests with the cgo driver"; fi

# The unit under a real systemd: Sluice installed into a Debian 12 tree
# (debootstrap, cached in .cache/systemd) booted with systemd-nspawn. Root;
# installs systemd-container and debootstrap when missing. About a minute
# (two on the first run). See systemd/README.md.
test-systemd:
	@scripts/systemd-tools.sh
	SLUICE_SYSTEMD=1 $(GO) test -count=1 -v -timeout 15m -run 'TestUnitUnderSystemd' ./internal/systemdtest/

# The whole fault-injection suite (a short version runs in `make test`):
# prints per scenario generated, landed, missing, duplicated, dropped.
test-faults: influxd
	SLUICE_FAULTS=full SLUICE_INFLUXD=$(CURDIR)/.cache/bin/influxd SLUICE_REQUIRE_INFLUXD=1 \
		$(GO) test -count=1 -timeout 20m -v -run . ./faults/

# Unit tests only: no InfluxDB, no race detector.
test-short:
	$(GO) test -short ./...

# Benchmarks: figures, never assertions. Micro-benchmarks of each hot
# stage, the live fan-out, the bus, the end-to-end run against two floors
# and the outage run (bench/README.md); writes bench/results/. bench/run.sh
# lists each step and how long it takes.
bench: influxd
	bench/run.sh

fmt:
	gofmt -l -w .

proto:
	GOBIN=$(CURDIR)/.cache/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/.cache/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd plugins/sdk && PATH=$(CURDIR)/.cache/bin:$$PATH protoc -I proto \
		--go_out=. --go_opt=module=github.com/sluicehq/sluice/plugins/sdk \
		--go-grpc_out=. --go-grpc_opt=module=github.com/sluicehq/sluice/plugins/sdk \
		proto/sluice/source/v1/source.proto

clean:
	rm -rf bin var dist
