package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a child process: the value says how it
// behaves (see child).
const childEnv = "HARNESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child writes to stdout and stderr, then: "exit" exits 3; "serve" waits
// for a signal (and dies of SIGTERM); "ignore-term" ignores SIGTERM and
// waits for SIGKILL. It reports SLUICE_* variables it was given.
func child(mode string) {
	fmt.Fprintln(os.Stdout, "child out")
	fmt.Fprintln(os.Stderr, "child err")
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLUICE_") {
			fmt.Fprintln(os.Stderr, "leaked", kv)
		}
	}
	switch mode {
	case "exit":
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Fprintln(os.Stderr, "ready")
	time.Sleep(time.Hour)
}

func startChild(t *testing.T, mode, log string) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(ChildEnv(), childEnv+"="+mode)
	p, err := Start(cmd, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	waitLog(t, p, "ready")
	return p
}

func waitLog(t *testing.T, p *Proc, want string) {
	t.Helper()
	if err := WaitUntil(context.Background(), 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(p.LogTail(), want)
	}); err != nil {
		t.Fatalf("log has no %q: %v; log:\n%s", want, err, p.LogTail())
	}
}

// Stop ends a process that obeys SIGTERM with SIGTERM, and one that
// ignores it with SIGKILL once the grace period is over.
func TestStop(t *testing.T) {
	for mode, want := range map[string]syscall.Signal{"serve": syscall.SIGTERM, "ignore-term": syscall.SIGKILL} {
		t.Run(mode, func(t *testing.T) {
			p := startChild(t, mode, filepath.Join(t.TempDir(), "log"))
			p.StopWithin(200 * time.Millisecond)
			if !p.Exited() {
				t.Fatal("still running after Stop")
			}
			ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != want {
				t.Errorf("ended with %v, want the signal %v", p.cmd.ProcessState, want)
			}
		})
	}
}

// The log keeps stdout and stderr, a second start on the same file adds
// to it, and a writer already set on the command gets a copy.
func TestLogAppendsAndEchoes(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	startChild(t, "serve", log).Kill()

	echo, err := os.Create(filepath.Join(t.TempDir(), "echo"))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(ChildEnv(), childEnv+"=serve")
	cmd.Stderr = echo
	p, err := Start(cmd, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if err := WaitUntil(context.Background(), 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Count(p.LogTail(), "ready\n") == 2
	}); err != nil {
		t.Fatalf("%v; log:\n%s", err, p.LogTail())
	}
	if got := strings.Count(p.LogTail(), "child out\n"); got != 2 {
		t.Errorf("%d starts in the log, want 2:\n%s", got, p.LogTail())
	}
	p.Kill()
	if got, _ := os.ReadFile(echo.Name()); string(got) != "child err\nready\n" {
		t.Errorf("echoed %q, want the second start's stderr", got)
	}
}

// StartAgent passes the agent none of the SLUICE_* variables it would
// refuse, only those asked for.
func TestStartAgentEnv(t *testing.T) {
	t.Setenv("SLUICE_INFLUXD", "/nowhere/influxd")
	dir := t.TempDir()
	p, err := StartAgent(AgentSpec{Bin: os.Args[0], Config: filepath.Join(dir, "sluice.yaml"),
		Log: filepath.Join(dir, "log"), Env: []string{childEnv + "=serve", "SLUICE_WANTED=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	waitLog(t, p, "ready")
	if log := p.LogTail(); strings.Contains(log, "SLUICE_INFLUXD") || !strings.Contains(log, "leaked SLUICE_WANTED=1") {
		t.Errorf("SLUICE_* passed on, want SLUICE_WANTED only:\n%s", log)
	}
}

// WaitFeed gives up as soon as the agent exits, with the end of its log,
// rather than at its limit.
func TestWaitFeedAgentExits(t *testing.T) {
	dir := t.TempDir()
	p, err := StartAgent(AgentSpec{Bin: os.Args[0], Config: filepath.Join(dir, "sluice.yaml"),
		Addr: FreeAddr(), Log: filepath.Join(dir, "log"), Env: []string{childEnv + "=exit"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = p.WaitFeed(ctx, "binance", 30*time.Second, 10*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "child err") {
		t.Errorf("err = %v, want the exit and the log", err)
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 4, ""},
		{"abc", 4, "abc"},
		{"abcd", 4, "abcd"},
		{"abcdef", 4, "cdef"},
	} {
		if got := tail([]byte(c.in), c.n); got != c.want {
			t.Errorf("tail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
