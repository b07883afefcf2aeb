#!/usr/bin/env bash
# Runs every benchmark (never part of `make test`) and writes the figures,
# with the machine, the commit and the exact command, to
# bench/results/<date>-<commit>.txt. Benchmarks that need InfluxDB use the
# one scripts/influxd.sh installs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export SLUICE_INFLUXD="$(scripts/influxd.sh)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
out="bench/results/$(date -u +%Y-%m-%dT%H%M)-$commit.txt"
mkdir -p bench/results

benchtime="${BENCHTIME:-1s}"
cmd=(go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count 1
	./plugins/binance/ ./sinks/sqlite/ ./sinks/influxdb/ ./plugins/sdk/... ./agent/...)

{
	echo "# sluice benchmarks"
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit:  $commit$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go:      $(go version)"
	echo "command: SLUICE_INFLUXD=$SLUICE_INFLUXD ${cmd[*]}"
	echo
} >"$out"
"${cmd[@]}" 2>&1 | tee -a "$out"
echo "wrote $out"
