package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/sdnotify"
)

// watchdog pings the service manager every interval while the pipeline
// makes progress, and tells it the status line when that changes.
//
// Progress means: taking a status snapshot works (it goes through the
// feed set's, every feed's, every output's and the buffer's locks, so a
// deadlock there stops the pings), and no sink is hung: stuck inside one
// Write call for longer than hungAfter, far beyond any sink's own
// timeout. A sink that fails and retries is alive: an outage of InfluxDB
// is not something a restart of the agent fixes, and restarting would
// take the healthy sinks down with it. Points wait in the disk buffer
// either way.
//
// Lifecycle: run pings until its ctx ends; the first ping is one
// interval after it starts (READY=1 came before).
type watchdog struct {
	every  time.Duration
	status func() Status
	notify func(states ...string)
	log    *slog.Logger
}

func (w watchdog) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	hungAfter := hungWriteAfter(w.every)
	var wasStalled []string
	lastLine := ""
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		st := w.status()
		stalled := hungSinks(st.Sinks, time.Now(), hungAfter)
		var states []string
		switch {
		case len(stalled) == 0:
			states = append(states, sdnotify.Watchdog)
			if wasStalled != nil {
				w.log.Info("sinks writing again; watchdog pings resume", "sinks", wasStalled)
			}
		case wasStalled == nil:
			w.log.Error("a sink write has not returned; not pinging the watchdog, so systemd restarts the agent", "sinks", stalled, "after", hungAfter)
		}
		wasStalled = stalled
		if line := serviceStatus(st); line != lastLine {
			states = append(states, line)
			lastLine = line
		}
		w.notify(states...)
	}
}

// hungWriteAfter is how long one sink Write may run before the watchdog
// calls it hung: four ping intervals (a minute under the unit's
// WatchdogSec=30s), well past the sinks' own timeouts.
func hungWriteAfter(pingEvery time.Duration) time.Duration { return 4 * pingEvery }

// hungSinks returns the sinks whose current Write began more than
// hungAfter before now.
func hungSinks(sinks []SinkStatus, now time.Time, hungAfter time.Duration) []string {
	var out []string
	for _, s := range sinks {
		if !s.WriteStarted.IsZero() && now.Sub(s.WriteStarted) > hungAfter {
			out = append(out, s.Name)
		}
	}
	return out
}

// serviceStatus is the STATUS= line systemctl status shows.
func (a *Agent) statusLine() string { return serviceStatus(a.Status()) }

func serviceStatus(st Status) string {
	running, okSinks := 0, 0
	var rate float64
	var buffered int64
	for _, f := range st.Feeds {
		if f.State == FeedRunning {
			running++
		}
		rate += f.PointsPerSec
	}
	for _, s := range st.Sinks {
		if s.State == pipeline.SinkOK {
			okSinks++
		}
		buffered += s.BufferedPoints
	}
	text := fmt.Sprintf("feeds %d/%d running, sinks %d/%d ok, %.0f points/s in, %d points buffered",
		running, len(st.Feeds), okSinks, len(st.Sinks), rate, buffered)
	if st.ConfigError != "" {
		text += "; last reload rejected"
	}
	return sdnotify.Status(text)
}
