package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/agent"
)

// StopGrace is how long Stop waits after SIGTERM before SIGKILL: the
// agent drains its pipeline before it exits.
const StopGrace = 20 * time.Second

// logTail is how much of a process's log its errors carry.
const logTail = 4000

// Proc is a process a benchmark runs beside itself: the agent (`sluice
// run`), a floor, or a server the agent writes to. Its stdout and stderr
// are appended to a log file, whose end goes into the errors about it.
// It is killed if the benchmark dies (Pdeathsig), so no run leaves one
// behind. Start it with Start or StartAgent; end it with Stop or Kill.
type Proc struct {
	cmd    *exec.Cmd
	log    string
	addr   string        // the agent's HTTP API; "" for other processes
	exited chan struct{} // closed once cmd has exited
}

// Start starts cmd with its stdout and stderr appended to the file
// logPath. A writer the caller has already set as cmd's Stdout or Stderr
// (a terminal) gets a copy.
func Start(cmd *exec.Cmd, logPath string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = tee(logf, cmd.Stdout), tee(logf, cmd.Stderr)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Proc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.exited) }()
	return p, nil
}

func tee(log *os.File, also io.Writer) io.Writer {
	if also == nil {
		return log
	}
	return io.MultiWriter(log, also)
}

// AgentSpec is one `sluice run -config Config` to start.
type AgentSpec struct {
	// Bin is the sluice binary, or a build of it (with the cgo SQLite
	// driver, or bench/prof's profiling build).
	Bin    string
	Config string
	// Addr is the http.listen address Config sets, for Status.
	Addr string
	// Log is the file the agent's output is appended to.
	Log string
	// Env is added to ChildEnv(): SLUICE_* settings to measure, or the
	// profiling build's SLUICEBENCH_* variables.
	Env []string
	// Echo, when set, gets a copy of the agent's stderr (a terminal).
	Echo io.Writer
}

// StartAgent starts the agent s describes.
func StartAgent(s AgentSpec) (*Proc, error) {
	cmd := exec.Command(s.Bin, "run", "-config", s.Config)
	cmd.Env = append(ChildEnv(), s.Env...)
	cmd.Stderr = s.Echo
	p, err := Start(cmd, s.Log)
	if err != nil {
		return nil, err
	}
	p.addr = s.Addr
	return p, nil
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to StopGrace for the process to exit,
// then kills it.
func (p *Proc) Stop() { p.StopWithin(StopGrace) }

// StopWithin is Stop with another grace period.
func (p *Proc) StopWithin(grace time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill is kill -9, and waits until the process is gone.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// LogTail is the end of the process's log, for errors.
func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.log)
	return tail(b, logTail)
}

// tail is the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Status is the agent's /api/v1/status; false while it does not answer,
// and for a process that is not an agent.
func (p *Proc) Status() (agent.Status, bool) {
	if p.addr == "" {
		return agent.Status{}, false
	}
	return Status(p.addr)
}

// Feed is the status of the agent's feed named name; false while the
// agent does not answer or has no such feed.
func (p *Proc) Feed(name string) (agent.FeedStatus, bool) {
	st, ok := p.Status()
	if !ok {
		return agent.FeedStatus{}, false
	}
	return feedNamed(st, name)
}

func feedNamed(st agent.Status, name string) (agent.FeedStatus, bool) {
	for _, f := range st.Feeds {
		if f.Name == name {
			return f, true
		}
	}
	return agent.FeedStatus{}, false
}

// WaitFeed polls the agent every interval until its feed named name
// runs, with a plugin, and also (when not nil) holds: the harness's own
// view, such as every stream subscribed at the simulated exchange. It
// returns the feed's status (its plugin's pid). It fails, with the end of
// the agent's log, when limit passes or ctx ends first, when the agent
// exits, or when the feed fails for good (failed, failed_config: the
// agent does not retry those).
func (p *Proc) WaitFeed(ctx context.Context, name string, limit, every time.Duration, also func() bool) (agent.FeedStatus, error) {
	var f agent.FeedStatus
	var ended error
	err := WaitUntil(ctx, limit, every, func() bool {
		if p.Exited() {
			ended = fmt.Errorf("the agent exited (%v)", p.cmd.ProcessState)
			return true
		}
		var ok bool
		if f, ok = p.Feed(name); !ok {
			return false
		}
		if strings.HasPrefix(string(f.State), "failed") {
			ended = fmt.Errorf("feed %s is %s: %s", name, f.State, f.LastError)
			return true
		}
		return f.State == agent.FeedRunning && f.Pid != 0 && (also == nil || also())
	})
	if err == nil {
		err = ended
	} else {
		err = fmt.Errorf("feed %s not ready (state %q): %w", name, f.State, err)
	}
	if err != nil {
		return f, fmt.Errorf("%w; log:\n%s", err, p.LogTail())
	}
	return f, nil
}
