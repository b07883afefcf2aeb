#!/usr/bin/env bash
# Gets what the systemd test (internal/systemdtest) needs: root, and
# systemd-nspawn, debootstrap and nsenter, installing the Debian packages
# systemd-container and debootstrap with apt-get when they are missing.
#
#   scripts/systemd-tools.sh            # install or fail (make test-systemd)
#   scripts/systemd-tools.sh --if-able  # print 1 if the test can run; else say
#                                       # why on stderr and print nothing (make test)
#
# apt-get's own output goes to stderr.
set -euo pipefail

optional=0
[[ "${1:-}" == --if-able ]] && optional=1

skip() {
	if ((optional)); then
		echo "make test: skipping the systemd test (internal/systemdtest): $*" >&2
		exit 0
	fi
	echo "scripts/systemd-tools.sh: $*" >&2
	exit 1
}

[[ "$(id -u)" == 0 ]] || skip "it needs root (systemd-nspawn, debootstrap)"
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v nsenter >/dev/null || missing+=(util-linux)
if ((${#missing[@]} > 0)); then
	command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
	echo "installing ${missing[*]} for the systemd test" >&2
	if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; } >&2; then
		skip "apt-get install ${missing[*]} failed"
	fi
fi
((optional)) && echo 1
exit 0
