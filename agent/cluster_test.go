package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
)

// In cluster mode the feed set runs only the feeds it holds: none at
// first; Hold starts a feed from the position given (its last holder's)
// and, once the feed has buffered a position of its own, a restart of
// its plugin resumes from that; Hold without it stops it. A reload
// neither starts nor restarts a feed that is not held, and a held one
// changes as usual; a feed held later starts with its new config.
func TestClusterFeedSetHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		feedOf := map[*fakeProc]string{}
		l := &fakeLauncher{plugins: map[string]*fakePlugin{"p": {
			configure: func(p *fakeProc, req sdk.ConfigureRequest, streaming bool) ([]sluice.Measurement, error) {
				if streaming {
					return nil, sdk.ErrRestartNeeded
				}
				mu.Lock()
				feedOf[p] = req.Feed
				mu.Unlock()
				return []sluice.Measurement{fakeMeasurement}, nil
			},
		}}}
		procsOf := func(feed string) []*fakeProc {
			mu.Lock()
			defer mu.Unlock()
			var out []*fakeProc
			for _, p := range l.procs("p") {
				if feedOf[p] == feed {
					out = append(out, p)
				}
			}
			return out
		}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{}})
		bins := map[string]host.Binary{"p": {Name: "p", Path: "/plugins/sluice-source-p"}}
		feed := func(cfg map[string]any) config.Feed {
			return config.Feed{Plugin: "p", Sinks: []string{"db"}, Config: cfg, File: "/feeds.d/x.yaml", Replicas: 1}
		}
		cur := config.Default()
		cur.Feeds = map[string]config.Feed{"a": feed(nil), "b": feed(nil), "c": feed(nil)}
		s := newClusterFeedSet(cur, bins, env)
		s.Start()
		defer s.Stop()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := len(l.procs("")); n != 0 || len(s.status()) != 0 {
			t.Fatalf("a cluster feed set ran %d plugins before holding any lease", n)
		}

		started, stopped := s.Hold(map[string]sluice.Position{"a": sluice.Position("from-kv"), "b": nil, "gone": nil})
		if !slices.Equal(started, []string{"a", "b"}) || len(stopped) != 0 {
			t.Fatalf("hold a, b and an unconfigured feed: started %v, stopped %v", started, stopped)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		a := procsOf("a")
		if len(a) != 1 || string(a[0].streamed()[0].Resume) != "from-kv" {
			t.Fatalf("feed a started %d times; want once, resuming from its last holder's position", len(a))
		}
		if b := procsOf("b"); len(b) != 1 || b[0].streamed()[0].Resume != nil {
			t.Fatalf("feed b: %d processes; want one, resuming from nothing", len(b))
		}
		// a has buffered positions of its own: a restart resumes there.
		a[0].crash(context.DeadlineExceeded)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		a = procsOf("a")
		if len(a) != 2 {
			t.Fatalf("feed a has %d processes after a crash, want 2", len(a))
		}
		if got := string(a[1].streamed()[0].Resume); !strings.HasPrefix(got, fmt.Sprintf("%d/", a[0].pid)) {
			t.Errorf("feed a restarted from %q; want the position its first process buffered", got)
		}

		started, stopped = s.Hold(map[string]sluice.Position{"b": nil})
		if len(started) != 0 || !slices.Equal(stopped, []string{"a"}) || !a[1].wasKilled() {
			t.Fatalf("hold b only: started %v, stopped %v, a's plugin killed: %v", started, stopped, a[1].wasKilled())
		}
		if names := statusNames(s); !slices.Equal(names, []string{"b"}) {
			t.Errorf("status lists %v, want b", names)
		}

		// A reload: a (not held) and b (held) change, d is added.
		next := config.Default()
		next.Feeds = map[string]config.Feed{"a": feed(map[string]any{"v": 2}), "b": feed(map[string]any{"v": 2}), "c": feed(nil), "d": feed(nil)}
		plan := planReload(s.config(), next, s.failed(), map[string]bool{"db": true})
		res := s.Apply(t.Context(), next, plan, nil)
		if !slices.Equal(res.Restarted, []string{"b"}) {
			t.Errorf("reload restarted %v, want b only", res.Restarted)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n, m := len(procsOf("a")), len(procsOf("d")); n != 2 || m != 0 {
			t.Errorf("after the reload a has %d processes (want 2, none new), d %d (want 0)", n, m)
		}
		if b := procsOf("b"); len(b) != 2 || b[1].configured()[0] != `{"v":2}` {
			t.Errorf("b after the reload: %d processes", len(b))
		}
		s.Hold(map[string]sluice.Position{"a": nil, "b": nil, "d": nil})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if a := procsOf("a"); len(a) != 3 || a[2].configured()[0] != `{"v":2}` {
			t.Errorf("a held again: %d processes, configured %v", len(a), a[len(a)-1].configured())
		}
		if names := statusNames(s); !slices.Equal(names, []string{"a", "b", "d"}) {
			t.Errorf("status lists %v", names)
		}
	})
}

func statusNames(s *feedSet) []string {
	var names []string
	for _, st := range s.status() {
		names = append(names, st.Name)
	}
	return names
}
