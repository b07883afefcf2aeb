package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name     string
		env      map[string]string
		notifier bool
		timeout  time.Duration
		wantErr  bool
	}{
		{name: "not under systemd", env: nil},
		{name: "socket only", env: map[string]string{EnvSocket: "/run/systemd/notify"}, notifier: true},
		{name: "abstract socket", env: map[string]string{EnvSocket: "@/org/freedesktop/systemd1/notify/1"}, notifier: true},
		{name: "relative socket refused", env: map[string]string{EnvSocket: "notify"}, wantErr: true},
		{name: "watchdog for us", env: map[string]string{EnvSocket: "/s", EnvWatchdogUS: "30000000", EnvWatchdogPID: strconv.Itoa(pid)},
			notifier: true, timeout: 30 * time.Second},
		{name: "watchdog without pid", env: map[string]string{EnvSocket: "/s", EnvWatchdogUS: "1500000"}, notifier: true, timeout: 1500 * time.Millisecond},
		{name: "watchdog for another process", env: map[string]string{EnvSocket: "/s", EnvWatchdogUS: "30000000", EnvWatchdogPID: "1"}, notifier: true},
		{name: "watchdog zero", env: map[string]string{EnvWatchdogUS: "0"}, wantErr: true},
		{name: "watchdog garbage", env: map[string]string{EnvWatchdogUS: "30s"}, wantErr: true},
		{name: "watchdog pid garbage", env: map[string]string{EnvWatchdogUS: "1", EnvWatchdogPID: "me"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, timeout, err := FromEnv(env(tt.env), pid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if (n != nil) != tt.notifier || timeout != tt.timeout {
				t.Errorf("notifier %v, timeout %v; want notifier %v, timeout %v", n != nil, timeout, tt.notifier, tt.timeout)
			}
		})
	}
}

// listen opens a unixgram socket as systemd would and returns a function
// reading the next datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the notify socket: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifySendsOneDatagram(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, sock := range []string{filepath.Join(dir, "notify"), "@sluice-sdnotify-test-" + strconv.Itoa(os.Getpid())} {
		read := listen(t, sock)
		n, _, err := FromEnv(env(map[string]string{EnvSocket: sock}), 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(Ready, Status("2 feeds\nrunning")); err != nil {
			t.Fatal(err)
		}
		if got, want := read(), "READY=1\nSTATUS=2 feeds running"; got != want {
			t.Errorf("%s: got %q, want %q", sock, got, want)
		}
		if err := n.Notify(Watchdog); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != "WATCHDOG=1" {
			t.Errorf("%s: got %q", sock, got)
		}
	}
}

func TestNilNotifierIsQuiet(t *testing.T) {
	var n *Notifier
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyWithoutListenerFails(t *testing.T) {
	n, _, _ := FromEnv(env(map[string]string{EnvSocket: filepath.Join(t.TempDir(), "nobody")}), 1)
	if err := n.Notify(Ready); err == nil {
		t.Fatal("no error sending to a socket nobody listens on")
	}
}
