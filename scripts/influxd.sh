#!/usr/bin/env bash
# Installs InfluxDB 1.8 (influxd) for the integration tests and benchmarks,
# built from source through the Go module proxy, and prints its path.
#
#   scripts/influxd.sh            # installs into .cache/bin under the repo
#   export SLUICE_INFLUXD="$(scripts/influxd.sh)"
#
# It does nothing but print the path when the binary is already there.
# Override the directory with SLUICE_INFLUXD_DIR.
set -euo pipefail

version=v1.8.10
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="${SLUICE_INFLUXD_DIR:-$root/.cache/bin}"
bin="$bindir/influxd"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$bindir"
echo "scripts/influxd.sh: building influxd $version (takes a minute or two)" >&2
# influxd 1.8.10 builds as-is with the current Go toolchain: no replace
# directives, no cgo. Pin the environment so a developer's GOFLAGS, go.work
# or toolchain switching cannot change what is built.
(
	cd "$bindir"
	GOBIN="$bindir" GOFLAGS= GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 \
		go install "github.com/influxdata/influxdb/cmd/influxd@$version"
) >&2
echo "$bin"
