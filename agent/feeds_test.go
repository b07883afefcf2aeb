package agent

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
)

// A reload is planned from the running config and the new one, then
// applied: added feeds start, removed ones stop and let go of their
// measurement keys, changed ones restart where they stopped with their
// counters, a plugin config change goes to a plugin that can take it in
// place (one that rejects it keeps its old config, one that cannot take
// it restarts), a failed feed is retried with the plugins found now, and
// feeds not involved are not touched.
func TestFeedSetApplyReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{plugins: map[string]*fakePlugin{
			"live": {caps: []string{sdk.CapReconfigure},
				configure: func(_ *fakeProc, req sdk.ConfigureRequest, _ bool) ([]sluice.Measurement, error) {
					if strings.Contains(string(req.Config), "bad") {
						return nil, sdk.ConfigErrors{{Key: "symbols", Msg: "unknown symbol bad"}}
					}
					return []sluice.Measurement{fakeMeasurement}, nil
				}},
			"plain": {},
			"later": {},
		}}
		other := &declSink{}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{}, "other": other})
		bins := func(names ...string) map[string]host.Binary {
			m := make(map[string]host.Binary)
			for _, n := range names {
				m[n] = host.Binary{Name: n, Path: "/plugins/sluice-source-" + n}
			}
			return m
		}
		feed := func(plugin string, cfg map[string]any, sinks ...string) config.Feed {
			return config.Feed{Plugin: plugin, Sinks: sinks, Config: cfg, File: "/feeds.d/x.yaml"}
		}
		cur := config.Default()
		cur.Feeds = map[string]config.Feed{
			"keep":   feed("plain", map[string]any{"a": 1}, "db"),
			"gone":   feed("plain", nil, "db"),
			"resink": feed("plain", nil, "db"),
			"live":   feed("live", map[string]any{"symbols": "BTC"}, "db"),
			"refuse": feed("live", map[string]any{"symbols": "BTC"}, "db"),
			"legacy": feed("plain", map[string]any{"a": 1}, "db"),
			"broken": feed("later", nil, "db"),
		}
		s := newFeedSet(cur, bins("plain", "live"), env)
		s.Start()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		before := make(map[string]FeedStatus)
		for _, st := range s.status() {
			before[st.Name] = st
		}
		if st := before["broken"]; st.State != FeedFailed {
			t.Fatalf("a feed whose plugin is missing: %s", st.State)
		}
		if held := env.keys.holding("gone"); len(held) != 1 {
			t.Fatalf("feed gone holds %v, want its measurement", held)
		}

		loadNext := func() *config.Config { // as a reload reads it: afresh
			next := config.Default()
			next.Feeds = map[string]config.Feed{
				"keep":   feed("plain", map[string]any{"a": 1}, "db"),
				"resink": feed("plain", nil, "db", "other"),
				"live":   feed("live", map[string]any{"symbols": "ETH"}, "db"),
				"refuse": feed("live", map[string]any{"symbols": "bad"}, "db"),
				"legacy": feed("plain", map[string]any{"a": 2}, "db"),
				"broken": feed("later", nil, "db"),
				"new":    feed("plain", nil, "other"),
			}
			return next
		}
		next := loadNext()
		plan := planReload(s.config(), next, s.failed(), map[string]bool{"db": true, "other": true})
		if len(plan.errs) > 0 {
			t.Fatal(plan.errs)
		}
		res := s.Apply(t.Context(), next, plan, bins("plain", "live", "later"))
		check := func(what string, got []string, want string) {
			t.Helper()
			if strings.Join(got, " ") != want {
				t.Errorf("%s = %q, want %q", what, got, want)
			}
		}
		check("added", res.Added, "new")
		check("removed", res.Removed, "gone")
		check("restarted", res.Restarted, "broken legacy resink")
		check("reconfigured", res.Reconfigured, "live")
		check("rejected", res.Rejected, "refuse")

		time.Sleep(3 * time.Second)
		synctest.Wait()
		after := make(map[string]FeedStatus)
		var names []string
		for _, st := range s.status() {
			after[st.Name] = st
			names = append(names, st.Name)
			if st.State != FeedRunning {
				t.Errorf("feed %s is %s after the reload: %s", st.Name, st.State, st.LastError)
			}
		}
		check("feeds", names, "broken keep legacy live new refuse resink")
		for _, name := range []string{"keep", "live", "refuse"} {
			if b, a := before[name], after[name]; a.Pid != b.Pid || a.Restarts != 0 {
				t.Errorf("feed %s was restarted (pid %d→%d, %d restarts); it should run on", name, b.Pid, a.Pid, a.Restarts)
			}
		}
		for _, name := range []string{"legacy", "resink"} {
			b, a := before[name], after[name]
			if a.Pid == b.Pid || a.Points <= b.Points {
				t.Errorf("feed %s: pid %d→%d, points %d→%d; want a new process, counters carried on", name, b.Pid, a.Pid, b.Points, a.Points)
			}
		}
		for _, p := range l.procs("plain") {
			if p.pid == before["legacy"].Pid && !p.wasKilled() {
				t.Error("the restarted feed's old process still runs")
			}
			if p.pid == after["legacy"].Pid {
				if r := string(p.streamed()[0].Resume); !strings.HasPrefix(r, strconv.Itoa(before["legacy"].Pid)+"/") {
					t.Errorf("the restarted feed resumed from %q, not from where its old process stopped", r)
				}
				if got := p.configured(); len(got) != 1 || got[0] != `{"a":2}` {
					t.Errorf("the restarted feed's plugin was configured with %v", got)
				}
			}
			if p.pid == before["gone"].Pid && !p.wasKilled() {
				t.Error("the removed feed's process still runs")
			}
		}
		applied := s.config()
		if got := applied.Feeds["refuse"].Config["symbols"]; got != "BTC" {
			t.Errorf("the applied config holds %v for the feed whose plugin rejected the change; want its running BTC", got)
		}
		if got := applied.Feeds["live"].Config["symbols"]; got != "ETH" {
			t.Errorf("the applied config holds %v for the reconfigured feed", got)
		}
		if held := env.keys.holding("gone"); len(held) != 0 {
			t.Errorf("the removed feed still holds %v", held)
		}
		other.mu.Lock()
		declared := len(other.declared)
		other.mu.Unlock()
		if declared != 2 {
			t.Errorf("sink other had %d declarations, want 2: from the added feed and the one routed to it", declared)
		}
		// The next plan from what was applied changes nothing but the
		// rejected feed, offered again.
		again := planReload(applied, loadNext(), s.failed(), map[string]bool{"db": true, "other": true})
		if n := len(again.add) + len(again.remove) + len(again.restart); n != 0 || !slices.Equal(again.reconfigure, []string{"refuse"}) {
			t.Errorf("a second plan: %+v", again)
		}

		s.Stop()
		for _, st := range s.status() {
			if st.State != FeedStopped {
				t.Errorf("feed %s is %s after Stop", st.Name, st.State)
			}
		}
		for _, p := range l.procs("") {
			if !p.wasKilled() {
				t.Errorf("process %d of %s left running after Stop", p.pid, p.plugin)
			}
		}
	})
}
