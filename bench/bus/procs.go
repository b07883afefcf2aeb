package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"
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
		{"sluice", "./agent/cmd/sluice"},
		{"plugins/sluice-source-synth", "./plugins/synth/cmd/sluice-source-synth"},
		{"plugins/sluice-source-nats", "./plugins/nats/cmd/sluice-source-nats"},
		{"plugins/sluice-source-binance", "./plugins/binance/cmd/sluice-source-binance"},
		{"nats-server", "github.com/nats-io/nats-server/v2"},
	} {
		if err := harness.GoBuild(dir, x[0], x[1], ""); err != nil {
			return b, err
		}
	}
	return b, nil
}

// natsServer is one nats-server process with JetStream on loopback, a
// process of its own so that its CPU is counted apart from the agents'.
type natsServer struct {
	*harness.Proc
	url string
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
	p, err := harness.Start(exec.Command(bin, "-c", conf), filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	s := &natsServer{Proc: p, url: "nats://" + addr}
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

// stop is a graceful stop, kill -9 after 10s.
func (s *natsServer) stop() { s.StopWithin(10 * time.Second) }

// writeConfig writes dir/sluice.yaml: data in dir, status on a free
// loopback port, followed by body. The agent's status is at addr.
func writeConfig(b bins, dir, feedsDir, body string) (spec harness.AgentSpec, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return spec, err
	}
	spec = harness.AgentSpec{Bin: b.sluice, Config: filepath.Join(dir, "sluice.yaml"), Addr: harness.FreeAddr()}
	spec.Log = spec.Config + ".log"
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: %q
http: {listen: %q, socket: ""}
log: {level: warn}
%s`, dir, b.pluginDir, feedsDir, spec.Addr, body)
	return spec, os.WriteFile(spec.Config, []byte(cfg), 0o644)
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
