package faults

// The scenarios of issue #6. Each streams trades and aggregate trades of
// three symbols from the simulated exchange through the real agent and
// Binance plugin binaries, injects its fault, and ends (see finish) by
// comparing the distinct ids in every sink with what the exchange
// generated: nothing missing, nothing duplicated, unless the sink's
// when_full policy drops, and then exactly what the agent counted.
//
// `go test ./faults/` runs the short version. The full one (more kills,
// longer outages, every when_full policy, a faster market) runs with
//
//	SLUICE_FAULTS=full SLUICE_INFLUXD=$PWD/.cache/bin/influxd go test -v -timeout 15m ./faults/
//
// and prints a summary table per scenario and sink to stdout.

import (
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
)

// 1. kill -9 of the agent at random moments, restarted each time on the
// same data_dir: some kills land while the agent is still starting, some
// while sinks write, some while the plugin backfills.
func TestAgentKill9(t *testing.T) {
	r := newRig(t, "1 agent kill -9", setup{influx: full()})
	r.checkAll()
	r.begin()
	for i := range pick(3, 12) {
		r.a.sleep(r.between(0, 2500*time.Millisecond))
		r.a.kill()
		t.Logf("kill %d: agent killed after run %d", i+1, r.a.runs)
		time.Sleep(r.between(0, time.Second)) // down; the market goes on
		r.a.start()
	}
	r.a.waitRunning()
	r.finish()
}

// 2. kill -9 of the plugin process (its pid from status); the agent
// restarts it, and it resumes from the last position in the buffer.
func TestPluginKill9(t *testing.T) {
	r := newRig(t, "2 plugin kill -9", setup{influx: full()})
	r.checkAll()
	r.begin()
	for i := range pick(2, 8) {
		r.a.sleep(r.between(300*time.Millisecond, 2500*time.Millisecond))
		st := r.a.waitFor("the plugin running", startTimeout, func(st agent.Status) bool {
			return feedStatus(st).State == agent.FeedRunning && feedStatus(st).Pid != 0
		})
		f := feedStatus(st)
		if err := syscall.Kill(f.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill plugin %d: %v", f.Pid, err)
		}
		t.Logf("kill %d: plugin %d killed", i+1, f.Pid)
		r.a.waitFor("the plugin restarted", startTimeout, func(st agent.Status) bool {
			g := feedStatus(st)
			return g.Restarts > f.Restarts && g.State == agent.FeedRunning && g.Pid != 0 && g.Pid != f.Pid
		})
	}
	r.finish()
}
