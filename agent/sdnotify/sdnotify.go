// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): newline-separated state assignments sent as one datagram
// to the unix socket named by NOTIFY_SOCKET, and the watchdog settings in
// WATCHDOG_USEC and WATCHDOG_PID.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// States the agent sends.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
)

// Environment variables systemd sets for a Type=notify service.
const (
	EnvSocket      = "NOTIFY_SOCKET"
	EnvWatchdogUS  = "WATCHDOG_USEC"
	EnvWatchdogPID = "WATCHDOG_PID"
)

// Notifier sends states to the service manager. A nil *Notifier (not
// running under a service manager) sends nothing and returns nil.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv reads the notification socket and the watchdog timeout from the
// environment (getenv is os.Getenv in production) for the process pid.
// The notifier is nil when NOTIFY_SOCKET is unset. The timeout is 0 when
// the watchdog is off or meant for another process (WATCHDOG_PID); the
// service should ping at half of it.
func FromEnv(getenv func(string) string, pid int) (*Notifier, time.Duration, error) {
	var n *Notifier
	var errs []error
	if sock := getenv(EnvSocket); sock != "" {
		if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute path or an @abstract name", EnvSocket, sock))
		} else {
			// The net package maps a leading @ to Linux's abstract namespace.
			n = &Notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
		}
	}
	timeout, err := watchdogTimeout(getenv, pid)
	if err != nil {
		errs = append(errs, err)
	}
	return n, timeout, errors.Join(errs...)
}

func watchdogTimeout(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv(EnvWatchdogUS)
	if usec == "" {
		return 0, nil
	}
	if p := getenv(EnvWatchdogPID); p != "" {
		want, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not a pid", EnvWatchdogPID, p)
		}
		if want != pid {
			return 0, nil // the watchdog is some other process's
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of microseconds", EnvWatchdogUS, usec)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// UnsetEnv removes the notification variables from the environment, so
// that child processes (plugins) neither see nor use them.
func UnsetEnv() {
	for _, k := range []string{EnvSocket, EnvWatchdogUS, EnvWatchdogPID} {
		os.Unsetenv(k)
	}
}

// Notify sends one or more states, each "KEY=value", in one datagram.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Status is a STATUS= line: free text systemctl status shows. Newlines,
// which would end the assignment, become spaces.
func Status(text string) string {
	return "STATUS=" + strings.ReplaceAll(text, "\n", " ")
}
