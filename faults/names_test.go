package faults

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/testagent"
)

// 12. A JSON-over-WebSocket server naming the measurement of every message
// (a jsonws rule's measurement_path) sends 20 000 distinct names while
// the Binance feed streams into the same SQLite file. Unbounded, that
// made 20 000 tables and slowed the shared sink to about 95 points/s for
// every feed. Now the names feed gets limits.max_measurements (default
// 1000) measurements, feed_events among them; every other point is
// rejected and counted exactly (too_many_measurements), a sample is
// logged, the file gets 999 of those tables, and every Binance trade
// lands. The budget outlives the plugin: killed and restarted, it gets no
// new measurement.
func TestManyMeasurementNames(t *testing.T) {
	t.Parallel()
	const names, afterRestart = 20_000, 10
	r := newRig(t, "12 20k measurement names", setup{})
	feedsDir := r.useFeedsDir()
	srv := startNamesServer(t, names, afterRestart)
	testagent.WriteFile(t, filepath.Join(feedsDir, "names.yaml"), fmt.Sprintf(`feeds:
  names:
    plugin: jsonws
    sinks: [sqlite]
    config:
      url: %s
      rules:
        - name: any
          measurement_path: m
          fields: {v: {path: v, type: int}}
`, srv.url))
	r.checkAll()
	r.begin() // the names feed is connected too: its server waits for send
	srv.send()

	limit := config.Default().Limits.MaxMeasurements
	admitted := limit - 1 // feed_events, which jsonws declares, is one of them
	want := uint64(names - admitted)
	st := r.a.waitFor("every name past the limit rejected", time.Minute, func(st agent.Status) bool {
		return testagent.Feed(st, "names").Rejected[pipeline.ReasonTooManyMeasurements] >= want
	})
	f := testagent.Feed(st, "names")
	t.Logf("names feed: %d points, rejected %v, plugin dropped %d", f.Points, f.Rejected, f.PluginDropped)
	if got := f.Rejected[pipeline.ReasonTooManyMeasurements]; got != want || f.PluginDropped != 0 {
		t.Errorf("rejected %d points as too_many_measurements with %d dropped by the plugin; want exactly %d, none dropped", got, f.PluginDropped, want)
	}
	if lines := strings.Count(r.a.proc.Log(), "reason=too_many_measurements"); lines == 0 || lines > 10 {
		t.Errorf("%d log lines about rejected names; want a sample: at least one, a handful at most", lines)
	}

	if err := syscall.Kill(f.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the names plugin %d: %v", f.Pid, err)
	}
	st = r.a.waitFor("the restarted names plugin's names rejected", time.Minute, func(st agent.Status) bool {
		g := testagent.Feed(st, "names")
		return g.Restarts > f.Restarts && g.Rejected[pipeline.ReasonTooManyMeasurements] >= want+afterRestart
	})
	if g := testagent.Feed(st, "names"); g.Rejected[pipeline.ReasonTooManyMeasurements] != want+afterRestart || g.Points != f.Points+1 {
		t.Errorf("after a restart of its plugin the names feed has %d rejected and %d points; want %d rejected, and one point more (its connect event)",
			g.Rejected[pipeline.ReasonTooManyMeasurements], g.Points, want+afterRestart)
	}
	r.finish()

	if got := r.sqlite.count(t, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 'n[0-9]*'`); got != int64(admitted) {
		t.Errorf("the SQLite file has %d tables of the names feed, want %d", got, admitted)
	}
	if got := r.sqlite.count(t, `SELECT count(*) FROM sqlite_master WHERE type = 'table'`); got > int64(admitted)+10 {
		t.Errorf("the SQLite file has %d tables", got)
	}
}

// count runs a query returning one integer.
func (s sqliteStore) count(t *testing.T, q string) int64 {
	var n int64
	s.query(t, q, nil, func(r *sql.Rows) error { return r.Scan(&n) })
	return n
}

// namesServer is a WebSocket server whose messages each name a
// measurement of their own: {"m":"n00000","v":0}, ...
type namesServer struct {
	url   string
	start chan struct{}
	once  sync.Once
}

// startNamesServer serves until the test ends. The first connection gets
// n names once send is called, the second more new ones at once, later
// ones none, so that a reconnect cannot change the counts.
func startNamesServer(t *testing.T, n, more int) *namesServer {
	t.Helper()
	s := &namesServer{start: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var conns atomic.Int32
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		go func() { // answers pings; ends with the connection
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		from, to := 0, 0
		switch conns.Add(1) {
		case 1:
			select {
			case <-s.start:
			case <-ctx.Done():
				return
			}
			from, to = 0, n
		case 2:
			from, to = n, n+more
		}
		for i := from; i < to; i++ {
			msg := fmt.Sprintf(`{"m":"n%05d","v":%d}`, i, i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Errorf("names server: message %d: %v", i, err)
				return
			}
		}
		<-ctx.Done()
	}))
	t.Cleanup(func() {
		cancel()
		hs.CloseClientConnections()
		hs.Close()
	})
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return s
}

// send lets the messages go.
func (s *namesServer) send() { s.once.Do(func() { close(s.start) }) }
