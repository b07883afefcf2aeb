package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/sdnotify"
)

// watchdog pings the service manager every interval while the pipeline
// makes progress, and tells it the status line when that changes.
//
// Progress means: taking a status snapshot works (it goes through the
// agent's, every feed's, every output's and the buffer's locks, so a
// deadlock there stops the pings), and no sink is stalled (see
// progressCheck). A sink that cannot write, for whatever reason, stops
// the pings after one to two intervals; systemd then restarts the agent
// after WatchdogSec, and the disk buffer keeps every point.
func (a *Agent) watchdog(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var check progressCheck
	var wasStalled []string
	lastLine := ""
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		st := a.Status()
		stalled := check.stalled(st.Sinks)
		var states []string
		switch {
		case len(stalled) == 0:
			states = append(states, sdnotify.Watchdog)
			if wasStalled != nil {
				a.log.Info("sinks writing again; watchdog pings resume", "sinks", wasStalled)
			}
		case wasStalled == nil:
			a.log.Warn("sinks hold points and wrote nothing for a watchdog interval; not pinging the watchdog", "sinks", stalled)
		}
		wasStalled = stalled
		if line := serviceStatus(st); line != lastLine {
			states = append(states, line)
			lastLine = line
		}
		a.notify(states...)
	}
}

// progressCheck compares successive status snapshots of the sinks.
type progressCheck struct {
	prev map[string]sinkProgress
}

type sinkProgress struct {
	pending int64
	batches uint64
}

// stalled returns the sinks that held unwritten points at the previous
// check and still do, without a batch written in between. A sink with
// nothing pending, or one that has just been given points, is not
// stalled; so the first check never finds one.
func (c *progressCheck) stalled(sinks []SinkStatus) []string {
	next := make(map[string]sinkProgress, len(sinks))
	var out []string
	for _, s := range sinks {
		cur := sinkProgress{pending: s.BufferedPoints, batches: s.Batches}
		next[s.Name] = cur
		prev, ok := c.prev[s.Name]
		if ok && prev.pending > 0 && cur.pending > 0 && cur.batches == prev.batches {
			out = append(out, s.Name)
		}
	}
	c.prev = next
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
