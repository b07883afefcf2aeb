package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// influxServer is an InfluxDB 1.8 the harness runs on loopback for the
// InfluxDB steps, with the settings internal/testinflux uses.
type influxServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startInflux(ctx context.Context, bin, dir string) (*influxServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	rpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	cfg := filepath.Join(dir, "influxd.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "influxd.log"))
	if err != nil {
		return nil, err
	}
	s := &influxServer{url: fmt.Sprintf("http://127.0.0.1:%d", httpPort), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "run", "-config", cfg)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	err = waitUntil(ctx, 30*time.Second, func() bool {
		resp, err := http.Get(s.url + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("influxd: %w", err)
	}
	return s, nil
}

func (s *influxServer) pid() int { return s.cmd.Process.Pid }

func (s *influxServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}
