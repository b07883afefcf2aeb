package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// staleFeed is a jsonws feed of trades with a short stale_after; extra
// is appended to its rules.
const staleFeed = `feeds:
  %s:
    plugin: jsonws
    sinks: [sqlite]
    config:
      url: %s
      stale_after: 1s
      rules:
        - name: trade
          match: [{path: type, equals: trade}]
          measurement: trades
          tags: {symbol: s}
          fields: {id: {path: id, type: int}}
          unique: [symbol, id]
%s`

const aliveRule = `        - name: heartbeat
          match: [{path: type, equals: heartbeat}]
          alive: true
`

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func readyz(t *testing.T, a *testagent.Agent) (int, agent.Readiness) {
	t.Helper()
	code, body := httpGet(t, a.Base+"/readyz")
	var r agent.Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("readyz: %v: %s", err, body)
	}
	return code, r
}

// metric is one sample's value in /metrics, or -1 if absent.
func metric(t *testing.T, a *testagent.Agent, series string) float64 {
	t.Helper()
	_, body := httpGet(t, a.Base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A server that keeps the connection up, answering pings, and sends no
// data: the feed is shown stale (/readyz 503 naming it and how long,
// status, metrics) while it stays running, and healthy again once data
// flows. A second feed whose server sends only heartbeats, which an
// alive rule marks as proof of life, stays healthy all along.
func TestSilentFeedShownStaleUntilDataFlows(t *testing.T) {
	var flowing atomic.Bool
	silent := newWSServer(t, func(c *websocket.Conn) {
		go drain(c) // answers pings
		for id := 1; ; id++ {
			if flowing.Load() {
				if c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"trade","s":"S","id":%d}`, id)) != nil {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
			if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
				return
			}
		}
	})
	beating := newWSServer(t, func(c *websocket.Conn) {
		go drain(c)
		for c.WriteMessage(websocket.TextMessage, []byte(`{"type":"heartbeat"}`)) == nil {
			time.Sleep(100 * time.Millisecond)
		}
	})
	started := time.Now()
	a := startAgent(t, map[string]string{
		"silent.yaml":  fmt.Sprintf(staleFeed, "silent", silent.url("/"), ""),
		"beating.yaml": fmt.Sprintf(staleFeed, "beating", beating.url("/"), aliveRule),
	})

	st := a.WaitFor(t, "the silent feed stale", func(st agent.Status) bool { return len(testagent.Feed(st, "silent").Stale) > 0 })
	f := testagent.Feed(st, "silent")
	if f.State != agent.FeedRunning || len(f.Stale) != 1 || f.Stale[0].Stream != "" || f.Stale[0].Since.Before(started.Add(-time.Second)) {
		t.Errorf("silent feed: state %s, stale %+v; want running, the feed as a whole stale since about the start", f.State, f.Stale)
	}
	code, r := readyz(t, a)
	reasons := strings.Join(r.Reasons, "\n")
	if code != http.StatusServiceUnavailable || r.Ready || !regexp.MustCompile(`feed silent is stale: the feed has had no data for \d+s \(since `).MatchString(reasons) {
		t.Errorf("readyz: %d %q", code, r.Reasons)
	}
	if strings.Contains(reasons, "beating") {
		t.Errorf("readyz names the feed whose heartbeats keep it alive: %q", r.Reasons)
	}
	if v := metric(t, a, `sluice_feed_stale{feed="silent"}`); v != 1 {
		t.Errorf("sluice_feed_stale{silent} = %v, want 1", v)
	}
	if v := metric(t, a, `sluice_feed_stale_seconds{feed="silent"}`); v < 1 {
		t.Errorf("sluice_feed_stale_seconds{silent} = %v, want at least stale_after", v)
	}
	if v := metric(t, a, `sluice_feed_events_total{feed="silent",kind="stale"}`); v != 1 {
		t.Errorf("stale events of silent = %v, want 1", v)
	}
	cmd := exec.Command(testbin.Sluice(t), "status", "-config", a.Config)
	cmd.Env = testbin.Env()
	out, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`silent +running, stale`).Match(out) || !strings.Contains(string(out), "feed silent is stale: the feed has had no data for") {
		t.Errorf("sluice status (%v):\n%s", err, out)
	}

	// Data flows again: healthy.
	flowing.Store(true)
	a.WaitFor(t, "the silent feed live again", func(st agent.Status) bool {
		f := testagent.Feed(st, "silent")
		return len(f.Stale) == 0 && f.Points > 0
	})
	if code, r := readyz(t, a); code != http.StatusOK || !r.Ready {
		t.Errorf("readyz once data flows: %d %q", code, r.Reasons)
	}
	if v := metric(t, a, `sluice_feed_stale{feed="silent"}`); v != 0 {
		t.Errorf("sluice_feed_stale{silent} = %v once live, want 0", v)
	}
	st, _ = a.Status(t)
	if b := testagent.Feed(st, "beating"); len(b.Stale) != 0 || b.Events["stale"] != 0 || b.State != agent.FeedRunning {
		t.Errorf("the heartbeat feed: state %s, stale %+v, events %v; heartbeats must keep it alive", b.State, b.Stale, b.Events)
	}
	a.Stop(t)

	// The agent wrote the stale and live events where the dashboards
	// read them.
	db := testagent.OpenDB(t, a.DB)
	for kind, want := range map[string]int64{"connect": 1, "stale": 1, "live": 1} {
		if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE feed = 'silent' AND kind = ?`, kind); n < want {
			t.Errorf("%d feed_events rows of kind %s for the silent feed, want %d", n, kind, want)
		}
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE feed = 'beating' AND kind IN ('stale', 'reconnect')`); n != 0 {
		t.Errorf("%d stale or reconnect rows for the heartbeat feed", n)
	}
}
