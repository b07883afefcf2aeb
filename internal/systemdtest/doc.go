// Package systemdtest runs the installed sluice unit under a real systemd:
// PID 1 of a Debian 12 container that systemd-nspawn boots from a tree
// debootstrap built (cached in .cache/systemd). It checks readiness,
// reload (applied and rejected), the watchdog, stop with drain, journal
// priorities, credentials, the sandbox from inside the service's own
// mount namespace, and `systemd-analyze security`.
//
// It holds tests only, which run with SLUICE_SYSTEMD=1 as root
// (`make test-systemd`); probe/ is the helper the tests run inside the
// container.
package systemdtest
