package testproc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shell runs script under sh with its output in a log file in a new
// directory, which it returns too.
func shell(t *testing.T, script string) (*exec.Cmd, string, string) {
	t.Helper()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, log.Name(), dir
}

func TestStartWaitsUntilReady(t *testing.T) {
	cmd, log, dir := shell(t, "sleep 0.2; touch ready; exec sleep 600")
	p, err := Start(cmd, log, time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(time.Minute)
	if cmd.ProcessState == nil || cmd.ProcessState.String() != "signal: terminated" {
		t.Errorf("after Stop: %v, want ended by SIGTERM", cmd.ProcessState)
	}
}

func TestStartReportsAnExit(t *testing.T) {
	cmd, log, _ := shell(t, "echo 'bind: address already in use' >&2; exit 3")
	_, err := Start(cmd, log, time.Minute, func() bool { return false })
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v: want ErrExited with the status and the log", err)
	}
}

func TestStartKillsWhatIsNeverReady(t *testing.T) {
	cmd, log, _ := shell(t, "exec sleep 600")
	_, err := Start(cmd, log, 100*time.Millisecond, func() bool { return false })
	if err == nil || errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "sh not ready within 100ms") {
		t.Fatalf("error %v: want not ready", err)
	}
	if cmd.ProcessState == nil || cmd.ProcessState.String() != "signal: killed" {
		t.Errorf("after the deadline: %v, want killed", cmd.ProcessState)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("first\nsecond\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(p, 7); got != "second" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "none"), 10); got != "" {
		t.Errorf("Tail of no file = %q", got)
	}
}
