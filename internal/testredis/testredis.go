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

// Server is one running redis-server.
type Server struct {
	// Addr is its host:port.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches redis-server on a free loopback port, with no
// persistence and no protected mode beyond loopback, waits until it
// answers PING, and stops it at the end of the test. It skips the test
// when the binary is missing, unless SLUICE_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	logFile := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logFile, "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("testredis: start %s: %v", bin, err)
	}
	s := &Server{Addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("redis-server log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(addr); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("testredis: redis-server on %s did not answer within %s: %v", addr, startTimeout, err)
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("testredis: redis-server exited: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
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
