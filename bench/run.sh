#!/usr/bin/env bash
# `make bench`: every benchmark, never part of `make test`. Figures, never
# assertions. Writes, with the machine, the load, the commit and the exact
# commands:
#
#   bench/results/<date>-<commit>-micro.txt   go test -bench -benchmem of each hot stage
#   bench/results/<date>-<commit>-e2e.md      the end-to-end run (report)
#   bench/results/<date>-<commit>-e2e.json    the same, every step's figures
#   bench/results/<date>-<commit>-e2e-outage.json  the outage run's samples
#   bench/results/<date>-<commit>-fanout.md   the live sink's fan-out (bench/fanout)
#   bench/results/<date>-<commit>-bus.md      the bus: nats sink and source, cluster failover (bench/bus)
#   bench/results/<date>-<commit>-whole.md    the whole of Binance (bench/whole), and .json
#
# The end-to-end run compares Sluice (the default build and the agent built
# with -tags sqlite_cgo) with two floors, bench/floor and bench/floorcgo (the
# cgo one needs gcc), side by side at each rate.
#
# Bounded: about 20 minutes on a 2-core machine, 10 of them the outage run
# (a sink down for 10 minutes at 10 000 trades/s: the agent's memory as its
# backlog grows, and when it starts again on it), plus about 7 for the
# whole of Binance. BENCHTIME, E2E_ARGS, FANOUT_ARGS, BUS_ARGS, WHOLE_ARGS and
# SKIP_MICRO / SKIP_FANOUT / SKIP_BUS / SKIP_E2E / SKIP_WHOLE adjust it. Benchmarks that need InfluxDB use the
# influxd scripts/influxd.sh installs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export SLUICE_INFLUXD="${SLUICE_INFLUXD:-$(scripts/influxd.sh)}"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
stamp="$(date -u +%Y-%m-%dT%H%M)-$commit"
mkdir -p bench/results

header() {
	echo "# sluice benchmarks: $1"
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit:  $commit$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
	echo "go:      $(go version)"
}

if [[ -z "${SKIP_MICRO:-}" ]]; then
	out="bench/results/$stamp-micro.txt"
	benchtime="${BENCHTIME:-1s}"
	cmd=(go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count 1
		./plugins/binance/wire/ ./plugins/binance/book/ ./plugins/sdk/ ./agent/pipeline/ ./agent/wal/ ./bench/micro/ ./internal/pointcodec/
		./sinks/sqlite/ ./sinks/influxdb/)
	{
		header "micro"
		echo "command: SLUICE_INFLUXD=$SLUICE_INFLUXD ${cmd[*]}"
		echo
	} >"$out"
	"${cmd[@]}" 2>&1 | tee -a "$out"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$out"
	echo "wrote $out"
fi

if [[ -z "${SKIP_FANOUT:-}" ]]; then
	# The live sink's fan-out: 1000 WebSocket clients over 100 channels at
	# 10 000 trades/s in (about 40 seconds).
	fanout=(go run ./bench/fanout -out "bench/results/$stamp-fanout.md" ${FANOUT_ARGS:-})
	echo "${fanout[*]}"
	"${fanout[@]}"
	echo "wrote bench/results/$stamp-fanout.md"
fi

if [[ -z "${SKIP_BUS:-}" ]]; then
	# The bus: the nats sink and source through a nats-server process, and
	# failover in cluster mode (about 3.5 minutes).
	# shellcheck disable=SC2206
	bus=(go run ./bench/bus -out "bench/results/$stamp-bus.md" ${BUS_ARGS:-})
	echo "${bus[*]}"
	"${bus[@]}"
	echo "wrote bench/results/$stamp-bus.md"
fi

if [[ -z "${SKIP_E2E:-}" ]]; then
	# shellcheck disable=SC2206
	e2e=(go run ./bench/e2e -out "bench/results/$stamp-e2e.md" -json "bench/results/$stamp-e2e.json" ${E2E_ARGS:-})
	echo "${e2e[*]}"
	"${e2e[@]}"
	echo "wrote bench/results/$stamp-e2e.md"
fi

if [[ -z "${SKIP_WHOLE:-}" ]]; then
	# The whole of Binance: 2 000 symbols × trade, bookTicker, depth@100ms
	# at the recorded mix ×1, ×4, ×16, all kinds together and then trade
	# and bookTicker alone (about 7 minutes, 3 of them the books loading).
	# shellcheck disable=SC2206
	whole=(go run ./bench/whole -out "bench/results/$stamp-whole.md" -json "bench/results/$stamp-whole.json" ${WHOLE_ARGS:-})
	echo "${whole[*]}"
	"${whole[@]}"
	echo "wrote bench/results/$stamp-whole.md"
fi
