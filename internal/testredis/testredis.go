// Package testredis runs a real redis-server for tests: on a free
// loopback port, without persistence, stopped when the test ends.
package testredis

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment variables.
const (
	// EnvBinary is the path of redis-server; the default is
	// "redis-server" on PATH (Debian's package, which scripts/redis.sh
	// installs).
	EnvBinary = "SLUICE_REDIS_SERVER"
	// EnvRequire, set to 1, turns a missing binary into a test failure
	// instead of a skip, so that CI cannot pass by skipping.
	EnvRequire = "SLUICE_REQUIRE_REDIS"
)

// startTimeout bounds the wait for the server to answer; not a timing
// assertion, only a bound on a broken run.
const startTimeout = 30 * time.Second

// Server is one redis-server on a fixed address, which a test may kill
// and start again there.
type Server struct {
	// Addr is its host:port.
	Addr string
	// Args are more redis-server options for Start, such as
	// "--requirepass", "secret".
	Args []string
	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches redis-server on a free loopback port, with no
// persistence and no protected mode beyond loopback, waits until it
// answers PING, and stops it at the end of the test. It skips the test
// when the binary is missing, unless SLUICE_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New(t, FreeAddr(t))
	s.Start()
	return s
}

// New returns a server for addr that is not started yet: a client of it
// finds nothing listening until Start. It is stopped at the end of the
// test. It skips the test as Start does.
func New(t testing.TB, addr string) *Server {
	t.Helper()
	s := &Server{Addr: addr, t: t, bin: Require(t), dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(s.logFile()); err == nil {
				t.Logf("redis-server log:\n%s", b)
			}
		}
	})
	t.Cleanup(s.Kill)
	return s
}

// FreeAddr is a loopback address nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *Server) logFile() string { return filepath.Join(s.dir, "redis.log") }

// Start launches redis-server on s.Addr, empty (no persistence), and
// waits until it answers PING.
func (s *Server) Start() {
	t := s.t
	t.Helper()
	if s.cmd != nil {
		t.Fatal("testredis: Start: already running")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", s.logFile(), "--daemonize", "no")
	cmd.Args = append(cmd.Args, s.Args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testredis: start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(s.Addr); err == nil || strings.HasPrefix(err.Error(), "PING answered \"-NOAUTH") {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("testredis: redis-server on %s did not answer within %s: %v", s.Addr, startTimeout, err)
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.logFile())
			t.Fatalf("testredis: redis-server exited: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill stops the server with SIGKILL and waits until it is gone; what it
// held is lost. It does nothing if the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// ping sends PING in the inline protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Require returns the redis-server binary, or skips (fails, with
// SLUICE_REQUIRE_REDIS=1) when there is none.
func Require(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("testredis: no %s (%v); install it with scripts/redis.sh (Debian's redis-server; needs root) or set %s", bin, err, EnvBinary)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}
