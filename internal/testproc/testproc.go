// Package testproc runs a server binary for a test (influxd, prometheus):
// it starts the process, waits until the server answers or the process
// exits or a deadline passes, and stops it with SIGTERM, then SIGKILL.
// The packages that run one server each (testinflux, testprom) build on
// it; what "answers" means is theirs.
package testproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrExited is a process that exited before it was ready. Most often
// another process took the port found free before the server bound it:
// a caller may try again with new ports.
var ErrExited = errors.New("exited during startup")

// Proc is one started process.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts cmd, whose output the caller has pointed at the file
// log, and polls ready every 50ms until it reports true. If the process
// exits first the error wraps ErrExited and holds the end of log; if
// timeout passes first the process is killed (what never started needs
// no clean shutdown).
func Start(cmd *exec.Cmd, log string, timeout time.Duration, ready func() bool) (*Proc, error) {
	name := filepath.Base(cmd.Path)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s %w (%s):\n%s", name, ErrExited, cmd.ProcessState, Tail(log, 4096))
		default:
		}
		if ready() {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s not ready within %s", name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the
// process to exit.
func (p *Proc) Stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Tail is the last n bytes of the file at path, trimmed: the end of a
// server's log for a failing test. It is "" when there is no file.
func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
