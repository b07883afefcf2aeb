package binance_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// runInProcess configures a Source and runs it into a store until the
// returned stop is called; stop returns Run's error.
func runInProcess(t *testing.T, cfg []byte, resume []byte) (*store, func() error) {
	t.Helper()
	src := binance.New(testLogger(t))
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "test", Config: cfg}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	st := &store{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.RunTo(ctx, resume, st) }()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of its context ending")
			}
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return st, stop
}

func TestInProcessDropsAndRotation(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade", "aggTrade"},
		"rotate_after": "1500ms", "streams_per_connection": 3,
	}), nil)
	waitFor(t, "first trades", 5*time.Second, func() bool { return st.count(market.MeasTrades, "") > 20 })
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		how := []binancesim.Close{binancesim.Abrupt, binancesim.CloseGoingAway, binancesim.ClosePolicy, binancesim.CloseNormal}[i]
		sim.DropRandom(1, how)
	}
	time.Sleep(3500 * time.Millisecond) // a rotation or two
	settle(t, sim, 4)
	d.stop()
	waitLanded(t, "every generated trade", 10*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, syms, nil)
	if len(st.events(binance.FeedRotate)) == 0 {
		t.Errorf("no rotation reported; events: %q", st.events(""))
	}
	t.Logf("events: %q", st.events(""))
}

// Streams that do not fit in the URL are subscribed with SUBSCRIBE
// requests, paced under Binance's 5 messages a second and acknowledged by
// id, on first connect and on every replacement.
func TestInProcessSubscribeBeyondTheURL(t *testing.T) {
	defer binance.SetSubscribeLimits(30, 2)()
	sim := startSim(t, binancesim.Options{})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade", "aggTrade", "bookTicker"}, "rotate_after": "1500ms",
	}), nil)
	waitFor(t, "a rotation", 10*time.Second, func() bool { return len(st.events(binance.FeedRotate)) > 0 })
	waitFor(t, "book tickers of both symbols", 5*time.Second, func() bool {
		return st.count(market.MeasBookTicker, "BTCUSDT") > 0 && st.count(market.MeasBookTicker, "ETHUSDT") > 0
	})
	waitFor(t, "a connection carrying all 6 streams", 5*time.Second, func() bool {
		for _, c := range sim.Conns() {
			if len(c.Streams) == 6 {
				return true
			}
		}
		return false
	})
	d.stop()
	waitLanded(t, "every generated trade", 10*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	stop()
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, syms, nil)
	stats := sim.Stats()
	if stats.Requests < 6 || stats.RateLimited > 0 {
		t.Errorf("%d requests, %d connections closed for rate: want at least 3 SUBSCRIBEs per connection and none over the limit",
			stats.Requests, stats.RateLimited)
	}
}

// Handshakes refused with 429 are retried after their Retry-After, and
// reported.
func TestInProcessHandshakeRateLimited(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	sim.RefuseHandshakes(2, 429, time.Second)
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT"}, "streams": []string{"trade"},
	}), nil)
	waitFor(t, "trades after the refusals", 10*time.Second, func() bool { return st.count(market.MeasTrades, "BTCUSDT") > 0 })
	stop()
	if got := sim.Stats().Refused; got != 2 {
		t.Errorf("%d handshakes refused, want 2", got)
	}
	if n := len(st.events(binance.FeedServerError)); n != 2 {
		t.Errorf("%d server_error events, want one per refusal: %q", n, st.events(""))
	}
}

// The plugin answers the server's pings (spot only counts a pong echoing
// the ping), so the server never drops it for silence.
func TestInProcessAnswersPings(t *testing.T) {
	sim := startSim(t, binancesim.Options{PingInterval: 300 * time.Millisecond, PongTimeout: time.Second})
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT"}, "streams": []string{"trade", "bookTicker"},
	}), nil)
	time.Sleep(2500 * time.Millisecond)
	stop()
	if s := sim.Stats(); s.PongTimeouts > 0 || s.RateLimited > 0 || s.Accepted != 1 {
		t.Errorf("stats %+v: want one connection, never dropped", s)
	}
	if ev := st.events(binance.FeedDisconnect); len(ev) > 0 {
		t.Errorf("disconnects: %q", ev)
	}
}

// max_backfill bounds what a resumed feed fetches: by count, the oldest
// missing ids are given up and reported; by age, those older than the
// bound. Either way the rest lands exactly once.
func TestInProcessMaxBackfill(t *testing.T) {
	for _, tc := range []struct {
		name, why string
		bound     map[string]any
	}{
		{"count", "max_backfill.count", map[string]any{"count": 10}},
		{"age", "max_backfill.age", map[string]any{"age": "300ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, binancesim.Options{})
			syms := []string{"BTCUSDT", "ETHUSDT"}
			d := drive(sim)
			defer d.stop()
			first, stop := runInProcess(t, config(sim, market.Spot, map[string]any{"symbols": syms, "streams": []string{"trade"}}), nil)
			waitFor(t, "a position for both symbols", 10*time.Second, func() bool {
				p, err := binance.DecodePosition(first.lastPosition())
				return err == nil && len(p.Trade) == 2
			})
			stop()
			pos := first.lastPosition()
			p, _ := binance.DecodePosition(pos)
			time.Sleep(1500 * time.Millisecond)
			second, stop2 := runInProcess(t, config(sim, market.Spot, map[string]any{
				"symbols": syms, "streams": []string{"trade"}, "max_backfill": tc.bound,
			}), pos)
			waitFor(t, "ids given up for both symbols", 10*time.Second, func() bool {
				return second.eventCount(binance.FeedGapLost, "BTCUSDT") > 0 && second.eventCount(binance.FeedGapLost, "ETHUSDT") > 0
			})
			d.stop()
			from := map[string]int64{}
			for _, sym := range syms {
				lost := second.eventPoints(binance.FeedGapLost, sym)[0]
				if got, want := intField(lost, "from_id"), p.Trade[sym]+1; got != want {
					t.Errorf("%s: gave up from id %d, want %d (the first after the position)", sym, got, want)
				}
				if msg, _ := lost.Field("message"); !strings.Contains(msg.Str(), tc.why) {
					t.Errorf("%s: gave up because %q, want it to name %s", sym, msg.Str(), tc.why)
				}
				if n := intField(lost, "count"); n != intField(lost, "to_id")-intField(lost, "from_id")+1 {
					t.Errorf("%s: count %d does not match from_id..to_id", sym, n)
				}
				from[sym] = intField(lost, "to_id") + 1
			}
			waitLanded(t, "every trade after what was given up", 10*time.Second, sim, second, market.Spot, syms, from, tradeIDs)
			stop2()
			checkIDs(t, sim, second, market.Spot, tradeIDs, syms, from)
		})
	}
}

// A resume position's ids of symbols the config no longer lists are kept
// in the positions checkpointed after it.
func TestInProcessResumeKeepsOtherSymbols(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	d := drive(sim)
	defer d.stop()
	resume := (&binance.Position{Market: market.Spot,
		Trade: map[string]int64{"XRPUSDT": 42}, AggTrade: map[string]int64{"XRPUSDT": 7}}).Encode()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT"}, "streams": []string{"trade"},
	}), resume)
	waitFor(t, "a position with BTCUSDT", 10*time.Second, func() bool {
		p, err := binance.DecodePosition(st.lastPosition())
		return err == nil && p.Trade["BTCUSDT"] > 0
	})
	stop()
	p, _ := binance.DecodePosition(st.lastPosition())
	if p.Trade["XRPUSDT"] != 42 || p.AggTrade["XRPUSDT"] != 7 {
		t.Fatalf("position %+v lost XRPUSDT's ids", p)
	}
}

// A stream whose connection never comes up has no data either: it is
// reported stale once, as a stream whose connection is down, and stays
// so (no report per stale_after, no replacement of a connection that is
// not there).
func TestInProcessStaleWhileDisconnected(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT"}, "streams": []string{"trade"}, "stale_after": map[string]string{"trade": "200ms"},
		"ws_url": dead,
	}), nil)
	waitFor(t, "a stale event for BTCUSDT", 10*time.Second, func() bool { return st.eventCount(binance.FeedStale, "BTCUSDT") > 0 })
	time.Sleep(time.Second) // five stale_afters: a report each would show
	stop()
	stale := st.eventPoints(binance.FeedStale, "BTCUSDT")
	if len(stale) != 1 {
		t.Fatalf("%d stale events, want 1: %q", len(stale), st.events(binance.FeedStale))
	}
	if msg, _ := stale[0].Field("message"); !strings.Contains(msg.Str(), "btcusdt@trade silent for") || !strings.HasSuffix(msg.Str(), "its connection is down") {
		t.Errorf("message %q", msg.Str())
	}
	if s, _ := stale[0].Field("stream"); s.Str() != "trade" {
		t.Errorf("stream %q, want trade", s.Str())
	}
	if n := st.eventCount(binance.FeedLive, "BTCUSDT"); n != 0 {
		t.Errorf("%d live events without data", n)
	}
}
