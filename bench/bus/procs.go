package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"

	"github.com/sluicehq/sluice/agent"
)

// bins are the binaries the bench runs, built from this checkout (and
// nats-server from the module's own github.com/nats-io/nats-server/v2).
type bins struct {
	sluice, pluginDir, natsServer string
}

func build(dir string) (bins, error) {
	b := bins{
		sluice:     filepath.Join(dir, "sluice"),
		pluginDir:  filepath.Join(dir, "plugins"),
		natsServer: filepath.Join(dir, "nats-server"),
	}
	for _, x := range [][2]string{
		{b.sluice, "./agent/cmd/sluice"},
		{filepath.Join(b.pluginDir, "sluice-source-synth"), "./plugins/synth/cmd/sluice-source-synth"},
		{filepath.Join(b.pluginDir, "sluice-source-nats"), "./plugins/nats/cmd/sluice-source-nats"},
		{filepath.Join(b.pluginDir, "sluice-source-binance"), "./plugins/binance/cmd/sluice-source-binance"},
		{b.natsServer, "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", "build", "-o", x[0], x[1])
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("build %s: %w", x[1], err)
		}
	}
	// The agent refuses a plugin directory others can write.
	return b, os.Chmod(b.pluginDir, 0o755)
}

// natsServer is one nats-server process with JetStream on loopback, a
// process of its own so that its CPU is counted apart from the agents'.
type natsServer struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// startNATS starts a server with its data in dir; jsExtra is added to
// its jetstream block.
func startNATS(bin, dir, jsExtra string) (*natsServer, error) {
	addr := harness.FreeAddr()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("server_name: bench\nlisten: %s\njetstream {\n  store_dir: %q\n  %s\n}\n", addr, filepath.Join(dir, "jetstream"), jsExtra)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	s := &natsServer{cmd: exec.Command(bin, "-c", conf), url: "nats://" + addr, exited: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.exited) }()
	err = waitUntil(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("nats-server does not listen on %s: %w", addr, err)
	}
	return s, nil
}

func (s *natsServer) pid() int { return s.cmd.Process.Pid }

func (s *natsServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// agentProc is one `sluice run`.
type agentProc struct {
	cmd    *exec.Cmd
	config string
	http   string
	log    *os.File
	exited chan struct{}
}

// writeConfig writes dir/sluice.yaml: data in dir, status on a free
// loopback port, followed by body.
func writeConfig(b bins, dir, feedsDir, body string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: %q
http: {listen: %q, socket: ""}
log: {level: warn}
%s`, dir, b.pluginDir, feedsDir, harness.FreeAddr(), body)
	path := filepath.Join(dir, "sluice.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

func startAgent(b bins, config string) (*agentProc, error) {
	raw, err := os.ReadFile(config)
	if err != nil {
		return nil, err
	}
	var addr string
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, `http: {listen: "`); ok {
			addr, _, _ = strings.Cut(rest, `"`)
		}
	}
	logf, err := os.OpenFile(config+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	a := &agentProc{cmd: exec.Command(b.sluice, "run", "-config", config), config: config, http: addr, log: logf, exited: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { a.cmd.Wait(); logf.Close(); close(a.exited) }()
	return a, nil
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// kill is kill -9, and waits until the process is gone.
func (a *agentProc) kill() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// stop is a graceful stop (SIGTERM: the agent drains), then kill -9
// after 20s.
func (a *agentProc) stop() {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		a.kill()
	}
}

// status is the agent's /api/v1/status; false while it does not answer.
func (a *agentProc) status() (agent.Status, bool) { return harness.Status(a.http) }

// lastLog is the end of the agent's log, for errors.
func (a *agentProc) lastLog() string {
	b, _ := os.ReadFile(a.config + ".log")
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitUntil polls cond every 20ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) error {
	return harness.WaitUntil(context.Background(), limit, 20*time.Millisecond, cond)
}

// cpuSeconds is a process's CPU time so far; 0 once it is gone.
func cpuSeconds(pid int) float64 {
	s, _ := procstat.CPUSeconds(pid)
	return s
}

// rssMiB is a process's resident memory now; 0 once it is gone.
func rssMiB(pid int) float64 {
	r, _ := procstat.RSSMB(pid)
	return r
}

// procs samples the CPU time and peak RSS of the processes of a step:
// the agent, its plugin, nats-server.
type procs struct {
	pids []int
	cpu0 []float64
	rss  []float64
	stop chan struct{}
	done chan struct{}
}

func watch(pids []int) *procs {
	p := &procs{pids: pids, rss: make([]float64, len(pids)), stop: make(chan struct{}), done: make(chan struct{})}
	for _, pid := range pids {
		p.cpu0 = append(p.cpu0, cpuSeconds(pid))
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, pid := range p.pids {
				p.rss[i] = max(p.rss[i], rssMiB(pid))
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// end returns each process's CPU seconds since watch, and its peak RSS
// seen.
func (p *procs) end() (cpu, rss []float64) {
	close(p.stop)
	<-p.done
	for i, pid := range p.pids {
		cpu = append(cpu, cpuSeconds(pid)-p.cpu0[i])
	}
	return cpu, p.rss
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
