package e2e_test

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
)

// hostileFeed maps {"type":"trade","s":..,"id":..,"p":..} and offers
// permessage-deflate; every size and depth cap is at its default.
const hostileFeed = `feeds:
  hostile:
    plugin: jsonws
    sinks: [sqlite]
    config:
      url: %s
      compression: true
      rules:
        - name: trade
          match: [{path: type, equals: trade}]
          measurement: trades
          tags: {symbol: s}
          fields: {id: {path: id, type: int}, price: {path: p, type: float}}
          unique: [symbol, id]
`

// hostileFrame is one frame a hostile server sends, and the counter of
// the plugin's that must count it.
type hostileFrame struct {
	name    string
	typ     int
	pmd     bool // permessage-deflate on the wire
	data    []byte
	counter string
}

// hostileFrames are depth bombs plain, gzipped and permessage-deflated,
// and bombs that inflate past the cap. Before the depth limit the 16 MiB
// gzip bomb, within the old 16 MiB inflate default, overflowed the
// plugin's stack: it crashed, restarted, reconnected and crashed again.
func hostileFrames(t *testing.T) []hostileFrame {
	bomb := func(n int) []byte { return bytes.Repeat([]byte("["), n) }
	return []hostileFrame{
		{"text depth bomb", websocket.TextMessage, false, bomb(512 << 10), "too_deep"},
		{"gzip bomb past the inflate cap", websocket.BinaryMessage, false, gz(t, bomb(16<<20)), "decompress_refused"},
		{"gzip depth bomb", websocket.BinaryMessage, false, gz(t, bomb(512<<10)), "too_deep"},
		{"permessage-deflate depth bomb", websocket.TextMessage, true, bomb(512 << 10), "too_deep"},
		{"permessage-deflate bomb past max_message_bytes", websocket.TextMessage, true, bomb(16 << 20), "oversize"},
		{"valid JSON trade nested 301 deep", websocket.TextMessage, false,
			[]byte(`{"type":"trade","s":"DEEP","id":0,"p":1,"x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}"), "too_deep"},
	}
}

// The real plugin binary under the real agent, against a server that
// sends every kind of hostile frame, in rounds, between valid trades:
// the plugin stays up (same pid, no restart, one connection), every
// valid trade lands in SQLite, and the plugin's counters account for
// every hostile frame. The counters are read from the stats line the
// plugin logs when the server finally closes the connection.
func TestHostileFramesEndToEnd(t *testing.T) {
	const rounds = 3
	frames := hostileFrames(t)
	var conns atomic.Int32
	hangUp := make(chan struct{})
	srv := newWSServerWith(t, websocket.Upgrader{EnableCompression: true}, func(c *websocket.Conn) {
		if conns.Add(1) > 1 {
			drain(c)
			return
		}
		go drain(c) // answers pings; ends with the connection
		id := 0
		trade := func() {
			id++
			c.EnableWriteCompression(id%2 == 0) // valid frames both ways too
			c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"trade","s":"OK","id":%d,"p":%d.5}`, id, id))
		}
		for range rounds {
			for _, f := range frames {
				trade()
				c.EnableWriteCompression(f.pmd)
				if err := c.WriteMessage(f.typ, f.data); err != nil {
					return
				}
			}
		}
		trade()
		<-hangUp
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
	})
	valid := int64(rounds*len(frames) + 1)

	a := startAgent(t, map[string]string{"hostile.yaml": fmt.Sprintf(hostileFeed, srv.url("/ws"))})
	first := a.WaitFor(t, "the feed running", func(st agent.Status) bool {
		f := testagent.Feed(st, "hostile")
		return f.State == agent.FeedRunning && f.Pid != 0
	})
	pid := testagent.Feed(first, "hostile").Pid
	a.WaitForCount(t, `SELECT count(*) FROM trades`, valid)
	// The agent has every dropped frame counted by reason, as the
	// plugin's own counters have them.
	discarded := map[string]uint64{}
	for _, f := range frames {
		discarded[f.counter] += rounds
	}
	a.WaitFor(t, "the discarded frames counted by reason in status", func(st agent.Status) bool {
		return maps.Equal(testagent.Feed(st, "hostile").PluginDiscarded, discarded)
	})
	_, metrics := httpGet(t, a.Base+"/metrics")
	for reason, n := range discarded {
		if series := fmt.Sprintf(`sluice_feed_plugin_discarded_total{feed="hostile",reason=%q} %d`, reason, n); !strings.Contains(metrics, series+"\n") {
			t.Errorf("/metrics has no %s", series)
		}
	}
	st, _ := a.Status(t)
	f := testagent.Feed(st, "hostile")
	if f.Pid != pid || f.Restarts != 0 || f.State != agent.FeedRunning {
		t.Errorf("plugin pid %d → %d, %d restarts, state %s; hostile frames must not cost the plugin", pid, f.Pid, f.Restarts, f.State)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; hostile frames must not cost the connection", n)
	}
	close(hangUp)
	stats := waitLogLine(t, a, `msg="jsonws stats"`)
	a.Stop(t)

	db := testagent.OpenDB(t, a.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(DISTINCT id) FROM trades WHERE symbol = 'OK' AND price = id + 0.5`); n != valid {
		t.Errorf("%d distinct valid trades landed, want %d", n, valid)
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM trades`); n != valid {
		t.Errorf("%d trades rows, want %d (the deep trade must not be mapped)", n, valid)
	}

	want := map[string]int{"messages": int(valid), "points": int(valid), "connects": 1}
	for _, f := range frames {
		want[f.counter] += rounds
	}
	for counter, n := range want {
		if !regexp.MustCompile(fmt.Sprintf(`\b%s=%d\b`, counter, n)).MatchString(stats) {
			t.Errorf("%s\nwant %s=%d", stats, counter, n)
		}
	}
	// Warned about at a bounded rate, with a short sample: the log holds
	// none of the frames whole.
	log := a.Log()
	if n := strings.Count(log, "frame nests deeper than max_json_depth"); n < 1 || n > 2 {
		t.Errorf("%d too-deep warnings for %d frames in a few seconds, want 1 (2 if a 10s interval ended)", n, want["too_deep"])
	}
	if len(log) > 256<<10 {
		t.Errorf("the agent log is %d bytes: a hostile frame reached it whole", len(log))
	}
}

// waitLogLine waits (bounded) for a line of the agent's log containing
// s and returns it.
func waitLogLine(t *testing.T, a *testagent.Agent, s string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		for _, line := range strings.Split(a.Log(), "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s line in the agent log within %s", s, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
