#!/usr/bin/env bash
# Installs Sluice in FHS places: the agent, its plugins, the systemd unit,
# sysusers.d and tmpfiles.d files, an example config, the Grafana files.
# Run `make build` first; `make install` calls this.
#
#   scripts/install.sh                          # into / with PREFIX=/usr (as root)
#   DESTDIR=/tmp/root scripts/install.sh        # staged, e.g. for a package
#   PREFIX=/usr/local scripts/install.sh
#
# Variables (environment):
#   DESTDIR     staging root prepended to every path (default: none)
#   PREFIX      default /usr: binary in PREFIX/bin, plugins in
#               PREFIX/lib/sluice/plugins, data in PREFIX/share
#   SYSCONFDIR  default /etc; the config goes to SYSCONFDIR/sluice
#   UNITDIR     default /lib/systemd/system when PREFIX is /usr (Debian's
#               place for packaged units), else PREFIX/lib/systemd/system
#   BINDIR      where the built binaries are (default: bin/ of the repo)
#   NO_POSTINST set to 1 to skip creating the user and directories and
#               reloading systemd (done only when DESTDIR is empty)
#
# An existing SYSCONFDIR/sluice/sluice.yaml is never overwritten. With a
# PREFIX other than /usr, the installed unit and config point at PREFIX.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr}"
PREFIX="${PREFIX%/}"
SYSCONFDIR="${SYSCONFDIR:-/etc}"
BINDIR="${BINDIR:-$root/bin}"
if [[ -z "${UNITDIR:-}" ]]; then
	if [[ "$PREFIX" == /usr ]]; then
		UNITDIR=/lib/systemd/system
	else
		UNITDIR="$PREFIX/lib/systemd/system"
	fi
fi

die() {
	echo "scripts/install.sh: $*" >&2
	exit 1
}

[[ "$PREFIX" == /* ]] || die "PREFIX must be an absolute path, got '$PREFIX'"
[[ -x "$BINDIR/sluice" ]] || die "$BINDIR/sluice not found: run 'make build' first"
shopt -s nullglob
plugins=("$BINDIR"/plugins/sluice-source-*)
shopt -u nullglob
((${#plugins[@]} > 0)) || die "no plugins in $BINDIR/plugins: run 'make build' first"

d="$DESTDIR"
bin="$PREFIX/bin"
plugindir="$PREFIX/lib/sluice/plugins"
confdir="$SYSCONFDIR/sluice"
docdir="$PREFIX/share/doc/sluice"
grafanadir="$PREFIX/share/sluice/grafana"

say() { echo "install: $*"; }

install -d -m 0755 "$d$bin" "$d$plugindir" "$d$UNITDIR" \
	"$d$PREFIX/lib/sysusers.d" "$d$PREFIX/lib/tmpfiles.d" \
	"$d$confdir" "$d$confdir/feeds.d" "$d$docdir/examples"
# Secrets for the unit's LoadCredential= (root-only; the unit does not
# start without this directory).
install -d -m 0700 "$d$confdir/credentials"

install -m 0755 "$BINDIR/sluice" "$d$bin/sluice"
say "$bin/sluice"
for p in "${plugins[@]}"; do
	install -m 0755 "$p" "$d$plugindir/$(basename "$p")"
	say "$plugindir/$(basename "$p")"
done

# The unit names /usr/bin/sluice and /usr/lib/sluice/plugins (in the
# config): rewrite them for another PREFIX.
sed -e "s|/usr/bin/sluice|$bin/sluice|g" \
	"$root/systemd/sluice.service" >"$d$UNITDIR/sluice.service.tmp"
chmod 0644 "$d$UNITDIR/sluice.service.tmp"
mv -f "$d$UNITDIR/sluice.service.tmp" "$d$UNITDIR/sluice.service"
say "$UNITDIR/sluice.service"
install -m 0644 "$root/systemd/sluice.sysusers" "$d$PREFIX/lib/sysusers.d/sluice.conf"
install -m 0644 "$root/systemd/sluice.tmpfiles" "$d$PREFIX/lib/tmpfiles.d/sluice.conf"
say "$PREFIX/lib/sysusers.d/sluice.conf, $PREFIX/lib/tmpfiles.d/sluice.conf"

if [[ -e "$d$confdir/sluice.yaml" ]]; then
	say "$confdir/sluice.yaml exists: kept (the new example is in $docdir)"
else
	sed -e "s|^plugin_dir: /usr/lib/sluice/plugins|plugin_dir: $plugindir|" \
		"$root/config/sluice.example.yaml" >"$d$confdir/sluice.yaml"
	chmod 0644 "$d$confdir/sluice.yaml"
	say "$confdir/sluice.yaml"
fi
install -m 0644 "$root/config/sluice.example.yaml" "$d$docdir/sluice.example.yaml"
install -m 0644 "$root/systemd/sluice.env.example" "$d$docdir/sluice.env.example"
for f in "$root"/config/examples/*.yaml; do
	install -m 0644 "$f" "$d$docdir/examples/$(basename "$f")"
done
for f in "$root"/config/examples/samples/*.jsonl; do
	install -D -m 0644 "$f" "$d$docdir/examples/samples/$(basename "$f")"
done

# Grafana: provisioning files and dashboards, for Grafana to pick up (see
# grafana/provisioning/dashboards/sluice.yaml for the path it reads).
(cd "$root/grafana" && find . -type f \( -name '*.json' -o -name '*.yaml' \)) | while read -r f; do
	install -D -m 0644 "$root/grafana/$f" "$d$grafanadir/${f#./}"
done
say "$grafanadir/"

if [[ -z "$DESTDIR" && "${NO_POSTINST:-}" != 1 ]]; then
	if command -v systemd-sysusers >/dev/null; then
		systemd-sysusers "$PREFIX/lib/sysusers.d/sluice.conf"
	fi
	if command -v systemd-tmpfiles >/dev/null; then
		systemd-tmpfiles --create "$PREFIX/lib/tmpfiles.d/sluice.conf"
	fi
	if [[ -d /run/systemd/system ]]; then
		systemctl daemon-reload
	fi
	cat <<EOF
Installed. Next:
  - add feeds in $confdir/feeds.d/ (examples in $docdir/examples/)
  - put secrets in $confdir/sluice.env (see $docdir/sluice.env.example), mode 0600
  - sluice validate -config $confdir/sluice.yaml
  - systemctl enable --now sluice
EOF
fi
