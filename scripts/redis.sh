#!/usr/bin/env bash
# Installs redis-server for the tests (the live sink's Redis broker tests (sinks/live, agent) run a real redis-server on a loopback port, without persistence) and prints the binary's path.
#
#   scripts/redis.sh                  # Debian's package, when missing
#   export SLUICE_REDIS_SERVER="$(scripts/redis.sh)"
#
# It does nothing but print the path when SLUICE_REDIS_SERVER names a binary or redis-server
# is on PATH. Otherwise it installs Debian's `redis-server` package with apt-get,
# which needs root; without root or apt-get it says so and exits 1.
set -euo pipefail

if [[ -n "${SLUICE_REDIS_SERVER:-}" && -x "$SLUICE_REDIS_SERVER" ]]; then
	echo "$SLUICE_REDIS_SERVER"
	exit 0
fi
if bin="$(command -v redis-server)"; then
	echo "$bin"
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "scripts/redis.sh: redis-server is not installed, and installing it needs root and apt-get;" >&2
	echo "  install Debian's package (sudo apt-get install redis-server) or set SLUICE_REDIS_SERVER to a redis-server binary" >&2
	exit 1
fi
echo "scripts/redis.sh: installing Debian's redis-server package" >&2
# A service the package's postinst may try to start is not needed: the
# tests start their own.
(
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends redis-server
) >&2
command -v redis-server
