#!/bin/sh
# Debian postinst for sluice: create the user and directories, reload
# systemd, and restart the agent on upgrade if it was running. A fresh
# install does not enable or start the service: add feeds first.
set -e

if [ "$1" = configure ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers sluice.conf
	elif ! getent passwd sluice >/dev/null; then
		adduser --system --group --home /var/lib/sluice --no-create-home \
			--gecos "Sluice stream-ingestion agent" sluice
	fi
	if command -v systemd-tmpfiles >/dev/null 2>&1; then
		systemd-tmpfiles --create sluice.conf
	else
		install -d -m 0750 -o sluice -g sluice /var/lib/sluice
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if [ -n "$2" ]; then
			systemctl try-restart sluice.service || true
		fi
	fi
fi
exit 0
