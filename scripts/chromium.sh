#!/usr/bin/env bash
# Installs chromium for the tests (the live page's browser test (agent) loads the page in headless Chromium against a running agent) and prints the binary's path.
#
#   scripts/chromium.sh                  # Debian's package, when missing
#   export SLUICE_CHROMIUM="$(scripts/chromium.sh)"
#
# It does nothing but print the path when SLUICE_CHROMIUM names a binary or chromium
# is on PATH. Otherwise it installs Debian's `chromium` package with apt-get,
# which needs root; without root or apt-get it says so and exits 1.
set -euo pipefail

if [[ -n "${SLUICE_CHROMIUM:-}" && -x "$SLUICE_CHROMIUM" ]]; then
	echo "$SLUICE_CHROMIUM"
	exit 0
fi
if bin="$(command -v chromium)"; then
	echo "$bin"
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "scripts/chromium.sh: chromium is not installed, and installing it needs root and apt-get;" >&2
	echo "  install Debian's package (sudo apt-get install chromium) or set SLUICE_CHROMIUM to a chromium binary" >&2
	exit 1
fi
echo "scripts/chromium.sh: installing Debian's chromium package" >&2
# A service the package's postinst may try to start is not needed: the
# tests start their own.
(
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium
) >&2
command -v chromium
