package jsonws

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// A server that keeps the connection up (it answers pings) but sends no
// data: the feed is reported stale once, since the start, and live again
// when data flows.
func TestStaleThenLive(t *testing.T) {
	var flowing atomic.Bool
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		go drain(c)
		for i := 0; ; i++ {
			if flowing.Load() {
				if c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"S","p":1}`)) != nil {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
			if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
				return
			}
		}
	})
	started := time.Now()
	r := start(t, "url: "+srv.wsURL("/")+"\nstale_after: 150ms\n"+tradeRules)
	stale := r.rec.event(t, sdk.EventStale)
	if msg, _ := stale.Field("message"); msg.Str() != "stale: no data for 150ms" {
		t.Errorf("stale message %q", msg.Str())
	}
	ev := r.rec.eventsOf(sdk.EventStale)[0]
	if ev.Stream != "" || ev.Symbol != "" || ev.Since.Before(started) || ev.Time.Sub(ev.Since) < 150*time.Millisecond {
		t.Errorf("stale event %+v: want the feed as a whole, silent since about the start (%v)", ev, started)
	}
	flowing.Store(true)
	live := r.rec.event(t, sdk.EventLive)
	if msg, _ := live.Field("message"); !strings.HasPrefix(msg.Str(), "data again after ") {
		t.Errorf("live message %q", msg.Str())
	}
	r.rec.data(t, "trades")
	if n := len(r.rec.eventsOf(sdk.EventStale)); n != 1 {
		t.Errorf("%d stale events for one silence, want 1", n)
	}
}

// A feed that cannot connect has no data either: it goes stale while
// it retries.
func TestStaleWhileDisconnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	r := start(t, "url: "+url+"\nstale_after: 100ms\nreconnect: {budget: -1}\n"+tradeRules)
	r.rec.event(t, sdk.EventStale)
	if n := r.src.stats.Connects.Load(); n != 0 {
		t.Fatalf("%d connects to a closed port", n)
	}
}

// heartbeatServer sends only heartbeats, every 10ms, and never data.
func heartbeatServer(t *testing.T) *wsServer {
	return newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		go drain(c)
		for {
			if c.WriteMessage(websocket.TextMessage, []byte(`{"type":"heartbeat"}`)) != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// An alive rule makes the server's heartbeats proof the feed is alive:
// with no data at all, it neither goes stale nor reconnects; and it maps
// them to nothing.
func TestAliveRuleKeepsFeedLive(t *testing.T) {
	srv := heartbeatServer(t)
	r := start(t, "url: "+srv.wsURL("/")+"\nstale_after: 300ms\n"+tradeRules+`
  - name: heartbeat
    match: [{path: type, equals: heartbeat}]
    alive: true
`)
	r.rec.event(t, sdk.EventConnect)
	deadline := time.Now().Add(wait)
	for r.src.stats.Heartbeats.Load() < 120 { // 1.2s: four stale_afters
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats within %s", r.src.stats.Heartbeats.Load(), wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ev := r.rec.eventsOf(sdk.EventStale); len(ev) != 0 {
		t.Errorf("stale events %+v with heartbeats every 10ms", ev)
	}
	st := &r.src.stats
	if st.Connects.Load() != 1 || st.Matched.Load() != 0 || st.Unmatched.Load() != 0 || st.Points.Load() != 0 {
		t.Errorf("connects %d, matched %d, unmatched %d, points %d; want 1 connection and heartbeats only",
			st.Connects.Load(), st.Matched.Load(), st.Unmatched.Load(), st.Points.Load())
	}
	if len(r.rec.discards()) != 0 {
		t.Errorf("heartbeats counted as discarded: %v", r.rec.discards())
	}
}

// The same heartbeats without the alive rule are unmatched messages,
// counted as discarded: the feed goes stale.
func TestHeartbeatsWithoutAliveRuleGoStale(t *testing.T) {
	srv := heartbeatServer(t)
	r := start(t, "url: "+srv.wsURL("/")+"\nstale_after: 100ms\n"+tradeRules)
	r.rec.event(t, sdk.EventStale)
	if r.rec.discards()["unmatched"] == 0 {
		t.Errorf("discarded = %v, want unmatched heartbeats", r.rec.discards())
	}
}

// An alive rule maps nothing; a message it matches counts as matched for
// Map, and the sample mode shows it as a heartbeat.
func TestAliveRuleMapsNothing(t *testing.T) {
	m := mustMapper(t, `
- name: heartbeat
  match: [{path: type, equals: heartbeat}]
  alive: true
- name: trade
  match: [{path: type, equals: trade}]
  measurement: trades
  fields: {price: p}
`)
	points, errs, matched := m.Map([]byte(`{"type":"heartbeat"}`), time.Unix(1, 0), nil)
	if len(points) != 0 || len(errs) != 0 || !matched {
		t.Errorf("heartbeat: %d points, errors %v, matched %v", len(points), errs, matched)
	}
	if _, _, res := m.mapMessage([]byte(`{"type":"heartbeat"}`), time.Unix(1, 0), nil, nil); res.matched || !res.alive {
		t.Errorf("heartbeat: data %v, alive %v", res.matched, res.alive)
	}
	if _, _, res := m.mapMessage([]byte(`{"type":"trade","p":1}`), time.Unix(1, 0), nil, nil); !res.matched || res.alive {
		t.Errorf("trade: data %v, alive %v", res.matched, res.alive)
	}
	if len(m.Measurements()) != 1 {
		t.Errorf("measurements %v", m.Measurements())
	}

	cfg := yamlJSON(t, `
url: ws://x
rules:
  - {name: hb, match: [{path: type, equals: heartbeat}], alive: true}
  - {name: trade, match: [{path: type, equals: trade}], measurement: trades, fields: {price: p}}
`)
	msgs := [][]byte{[]byte(`{"type":"heartbeat"}`), []byte(`{"type":"other"}`)}
	results, err := newSource(discardLogger()).Sample(context.Background(), sdk.ConfigureRequest{Config: cfg}, msgs, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := sdk.WriteSample(&b, []int{1, 2}, results); err != nil {
		t.Fatal(err)
	}
	want := "line 1: heartbeat (an alive rule matched: it proves the feed alive)\nline 2: no rule matched\n2 messages: 0 points, 0 mapping errors, 1 unmatched, 1 without points\n"
	if b.String() != want {
		t.Errorf("sample:\n%s\nwant:\n%s", b.String(), want)
	}
}
