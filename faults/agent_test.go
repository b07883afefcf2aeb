package faults

// The agent under test: the real sluice binary (internal/testagent) on a
// config written per scenario, started, killed and restarted on the same
// data_dir.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// Bounds on every wait: none is a timing assertion, each only keeps a
// broken run from hanging.
const (
	pollEvery    = 100 * time.Millisecond
	startTimeout = 30 * time.Second
)

// feedName is the one Binance feed of every scenario.
const feedName = "binance"

// agentRig runs the agent of one scenario: its config, its data_dir and
// every process started on them, one at a time.
type agentRig struct {
	t       *testing.T
	dir     string // data_dir; the config lives in it
	config  string
	proc    *testagent.Agent // the current run
	runs    []*testagent.Agent
	plugins map[int]bool // every plugin pid seen in status

	// Drop counters of earlier runs (a run's counters die with it) and
	// the last status of the current run.
	droppedBefore map[string]int64
	last          agent.Status
}

// newAgentRig writes the config (everything below the fixed header) into
// a new data_dir. Nothing runs yet.
func newAgentRig(t *testing.T, body string) *agentRig {
	t.Helper()
	dir := t.TempDir()
	r := &agentRig{
		t: t, dir: dir, config: filepath.Join(dir, "sluice.yaml"),
		plugins: map[int]bool{}, droppedBefore: map[string]int64{},
	}
	// testagent.Launch finds the status address on the http line.
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: ""
shutdown_timeout: 30s
http: {listen: "%s", socket: ""}
log: {level: info}
restart: {initial: 200ms, max: 1s, reset_after: 5s}
%s`, dir, testbin.PluginDir(t), testagent.FreeAddr(t), body)
	if err := os.WriteFile(r.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.proc != nil {
			r.proc.Kill()
		}
		r.reapPlugins()
		if dir := os.Getenv(envLogDir); dir != "" {
			path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".log")
			if err := os.WriteFile(path, []byte(cfg+"\n"+r.logs()), 0o644); err != nil {
				t.Errorf("keeping the agent log: %v", err)
			} else {
				t.Logf("config and agent log kept in %s", path)
			}
		}
		if t.Failed() {
			t.Logf("config:\n%s", cfg)
		}
	})
	return r
}

// logs is the log of every run so far, in order.
func (r *agentRig) logs() string {
	var b strings.Builder
	for i, p := range r.runs {
		fmt.Fprintf(&b, "----- test: agent run %d -----\n%s", i+1, p.Log())
	}
	return b.String()
}

// start launches a new agent process on the rig's config. testagent
// kills it at the end of the test and prints its log if the test failed.
func (r *agentRig) start() {
	r.t.Helper()
	if r.proc != nil && !r.exited() {
		r.t.Fatal("start: the agent is still running")
	}
	r.proc = testagent.Launch(r.t, r.config)
	r.runs = append(r.runs, r.proc)
	r.last = agent.Status{}
}

func (r *agentRig) exited() bool {
	select {
	case <-r.proc.Exited():
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the agent (not its plugin) and waits for it.
func (r *agentRig) kill() {
	r.t.Helper()
	r.endRun()
	r.proc.Kill()
}

// stop sends SIGTERM and waits for a clean exit (the drain included).
func (r *agentRig) stop() {
	r.t.Helper()
	r.poll() // the final counters
	r.endRun()
	r.proc.Stop(r.t)
}

// endRun banks the current run's drop counters before it goes.
func (r *agentRig) endRun() {
	for _, s := range r.last.Sinks {
		r.droppedBefore[s.Name] += droppedTotal(s)
	}
	r.last = agent.Status{}
}

func droppedTotal(s agent.SinkStatus) int64 {
	var n int64
	for _, v := range s.Dropped {
		n += int64(v)
	}
	return n
}

// dropped is what every run of the agent counted as dropped for a sink,
// as far as status showed it.
func (r *agentRig) dropped(sink string) int64 {
	n := r.droppedBefore[sink]
	if s, ok := sinkStatus(r.last, sink); ok {
		n += droppedTotal(s)
	}
	return n
}

// poll reads the status once; false while the agent does not answer.
func (r *agentRig) poll() (agent.Status, bool) {
	st, ok := r.proc.Status(r.t)
	if !ok {
		return st, false
	}
	r.last = st
	for _, f := range st.Feeds {
		if f.Pid != 0 {
			r.plugins[f.Pid] = true
		}
	}
	return st, true
}

// waitFor polls the status until cond holds, failing the test if the
// agent exits or limit passes first.
func (r *agentRig) waitFor(what string, limit time.Duration, cond func(agent.Status) bool) agent.Status {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, ok := r.poll()
		if ok && cond(st) {
			return st
		}
		if r.exited() {
			r.t.Fatalf("sluice exited (%v) while waiting for %s", r.proc.ExitErr(), what)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s within %s; status: %s", what, limit, statusJSON(st))
		}
		time.Sleep(pollEvery)
	}
}

func statusJSON(st agent.Status) string {
	b, _ := json.Marshal(st)
	return string(b)
}

// waitRunning waits until the feed's plugin runs and returns its pid.
func (r *agentRig) waitRunning() int {
	r.t.Helper()
	st := r.waitFor("the feed running", startTimeout, func(st agent.Status) bool {
		f := feedStatus(st)
		return f.State == agent.FeedRunning && f.Pid != 0
	})
	return feedStatus(st).Pid
}

// sleep waits d, failing the test if the agent exits meanwhile, and
// keeps the last status fresh.
func (r *agentRig) sleep(d time.Duration) {
	r.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if r.exited() {
			r.t.Fatalf("sluice exited unexpectedly: %v", r.proc.ExitErr())
		}
		r.poll()
		time.Sleep(min(pollEvery*3, time.Until(end)))
	}
}

// reapPlugins kills plugin processes that outlived their agent (they
// should exit by themselves when it dies) and reports them.
func (r *agentRig) reapPlugins() {
	deadline := time.Now().Add(10 * time.Second)
	for pid := range r.plugins {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			r.t.Errorf("plugin %d outlived its agent", pid)
		}
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that ends the command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func feedStatus(st agent.Status) agent.FeedStatus { return testagent.Feed(st, feedName) }

func sinkStatus(st agent.Status, name string) (agent.SinkStatus, bool) {
	for _, s := range st.Sinks {
		if s.Name == name {
			return s, true
		}
	}
	return agent.SinkStatus{}, false
}
