#!/usr/bin/env bash
# Installs Prometheus for the tests (internal/dashtest runs the agent-health
# dashboard's queries against a real Prometheus scraping a real agent) and
# prints the binary's path.
#
#   scripts/prometheus.sh                  # Debian's package, when missing
#   export SLUICE_PROMETHEUS="$(scripts/prometheus.sh)"
#
# It does nothing but print the path when SLUICE_PROMETHEUS names a binary
# or prometheus is on PATH. Otherwise it installs Debian's `prometheus`
# package with apt-get, which needs root; without root or apt-get it says
# so and exits 1. Only the binary is used: the tests run it on a loopback
# port with a temporary storage directory, and nothing else of the package.
set -euo pipefail

if [[ -n "${SLUICE_PROMETHEUS:-}" && -x "$SLUICE_PROMETHEUS" ]]; then
	echo "$SLUICE_PROMETHEUS"
	exit 0
fi
if bin="$(command -v prometheus)"; then
	echo "$bin"
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "scripts/prometheus.sh: prometheus is not installed, and installing it needs root and apt-get;" >&2
	echo "  install Debian's package (sudo apt-get install prometheus) or set SLUICE_PROMETHEUS to a prometheus binary" >&2
	exit 1
fi
echo "scripts/prometheus.sh: installing Debian's prometheus package" >&2
# The package's postinst may try to start its service; the tests do not
# need it (there may be no init system at all), so that is left alone.
(
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends prometheus
) >&2
command -v prometheus
