#!/bin/sh
# Debian prerm for sluice: stop the agent (it drains its buffers first)
# before its files are removed.
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop sluice.service || true
fi
exit 0
