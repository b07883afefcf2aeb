#!/bin/sh
# Debian postrm for sluice. Stored data (/var/lib/sluice) and the sluice
# user are kept, even on purge: delete them by hand if you mean to.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
	deb-systemd-helper purge sluice.service >/dev/null || true
fi
exit 0
