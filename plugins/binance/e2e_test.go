package binance_test

// End-to-end tests: the real plugin binary, launched and streamed through
// go-plugin as the agent does, against the simulated exchange. They assert
// on what landed (the points and positions the host received) against what
// the exchange generated, never on timing: each waits, with a bound, for
// what must happen.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Connections dropped at random points, every way Binance ends them, a
// server shutdown notice, a 24h expiry and forced rotations: every trade
// and aggregate trade the exchange generated lands exactly once.
func TestE2EDropsAndRotationLoseNothing(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 7})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runPlugin(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade", "aggTrade", "kline_1m"},
		"rotate_after": "2s", "streams_per_connection": 4,
	}), nil)
	waitFor(t, "first trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "") > 20 })
	faults := []func(){
		func() { sim.DropRandom(1, binancesim.Abrupt) },
		func() { sim.DropRandom(1, binancesim.CloseGoingAway) },
		func() { sim.ServerShutdown(300 * time.Millisecond) },
		func() { sim.DropRandom(1, binancesim.ClosePolicy) },
		func() { sim.ExpireConns() },
		func() { sim.DropAll(binancesim.Abrupt) },
	}
	for _, fault := range faults {
		time.Sleep(400 * time.Millisecond)
		fault()
	}
	waitFor(t, "a rotation", 10*time.Second, func() bool { return len(st.events(binance.FeedRotate)) > 0 })
	settle(t, sim, 6)
	d.stop()
	waitLanded(t, "every generated trade", 20*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v, want context.Canceled", err)
	}
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, syms, nil)
	for _, kind := range []string{binance.FeedDisconnect, binance.FeedReconnect, binance.FeedServerShutdown} {
		if len(st.events(kind)) == 0 {
			t.Errorf("no %s event; events: %q", kind, st.events(""))
		}
	}
	t.Logf("%d trades landed; events: %q", st.count(market.MeasTrades, ""), st.events(""))
}

// startTradesStaleAfter500ms runs the plugin on BTCUSDT and ETHUSDT
// trades with stale_after 500ms against a driven simulator, and waits for
// BTCUSDT's first trades.
func startTradesStaleAfter500ms(t *testing.T) (*binancesim.Server, *driver, *store, func() error, []string) {
	t.Helper()
	sim := startSim(t, binancesim.Options{Seed: 11})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	t.Cleanup(d.stop)
	st, stop := runPlugin(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade"}, "stale_after": map[string]string{"trade": "500ms"},
	}), nil)
	waitFor(t, "first trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "BTCUSDT") > 10 })
	return sim, d, st, stop, syms
}

// A stream that goes silent while its connection stays open is detected,
// reported, and its connection replaced; the trades lost in the silence
// are backfilled.
func TestE2EStalledStreamIsReplaced(t *testing.T) {
	sim, d, st, stop, syms := startTradesStaleAfter500ms(t)
	accepted := sim.Stats().Accepted
	sim.Stall(market.Spot, "btcusdt@trade", 2*time.Second)
	waitFor(t, "a stale event for BTCUSDT", 10*time.Second, func() bool { return st.eventCount(binance.FeedStale, "BTCUSDT") > 0 })
	waitFor(t, "the replacement connection", 10*time.Second, func() bool {
		return sim.Stats().Accepted > accepted && len(st.events(binance.FeedReconnect)) > 0
	})
	// The stall ends: trades resume past a hole, and the stream is
	// reported live again (the agent then shows it healthy).
	waitFor(t, "BTCUSDT trade live again", 10*time.Second, func() bool { return st.eventCount(binance.FeedLive, "BTCUSDT") > 0 })
	d.stop()
	waitLanded(t, "every generated trade", 20*time.Second, sim, st, market.Spot, syms, nil, tradeIDs)
	// The backfill event follows the backfilled trades.
	waitFor(t, "the backfill of the trades lost during the stall", 10*time.Second, func() bool {
		return len(st.events(binance.FeedBackfill)) > 0
	})
	stop()
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
}

// A stream that stays silent on the connection that replaced one for its
// silence is quiet, not stalled: it replaces no more connections (each
// would cut the other streams on it), stays reported stale, and is live
// again at its next frame.
func TestE2EQuietStreamReplacesOneConnection(t *testing.T) {
	sim, d, st, stop, syms := startTradesStaleAfter500ms(t)
	sim.Stall(market.Spot, "btcusdt@trade", 5*time.Second)
	waitFor(t, "BTCUSDT trade live again", 20*time.Second, func() bool { return st.eventCount(binance.FeedLive, "BTCUSDT") > 0 })
	// Ten stale_afters of silence: one replacement, not one every
	// stale_after.
	if n := len(st.events(binance.FeedReconnect)); n != 1 {
		t.Errorf("%d reconnects for one silent stream; want 1; events: %q", n, st.events(""))
	}
	d.stop()
	waitLanded(t, "every generated trade", 20*time.Second, sim, st, market.Spot, syms, nil, tradeIDs)
	stop()
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
}

// A break in one symbol's depth sequence rebuilds that symbol's book from
// a new snapshot, on the same connection, and leaves the others alone.
func TestE2EDepthGapResyncsOnlyThatSymbol(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 5})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runPlugin(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"depth@100ms"}, "book_interval": "100ms", "book_depth": 5,
	}), nil)
	waitFor(t, "both books", 10*time.Second, func() bool {
		return st.count(market.MeasBook, "BTCUSDT") > 0 && st.count(market.MeasBook, "ETHUSDT") > 0
	})
	before := map[string]int{}
	for _, sym := range syms {
		before[sym] = st.eventCount(binance.FeedResync, sym)
	}
	accepted := sim.Stats().Accepted
	if !sim.InjectDepthGap(market.Spot, "BTCUSDT") {
		t.Fatal("the simulator has no BTCUSDT")
	}
	waitFor(t, "a BTCUSDT resync", 10*time.Second, func() bool { return st.eventCount(binance.FeedResync, "BTCUSDT") > before["BTCUSDT"] })
	booksAfter := st.count(market.MeasBook, "BTCUSDT")
	waitFor(t, "the BTCUSDT book to be emitted again", 10*time.Second, func() bool {
		return st.count(market.MeasBook, "BTCUSDT") > booksAfter
	})
	d.stop()
	stop()
	if n := st.eventCount(binance.FeedResync, "ETHUSDT"); n != before["ETHUSDT"] {
		t.Errorf("ETHUSDT was resynced too (%d times, %d before the gap); events: %q", n, before["ETHUSDT"], st.events(""))
	}
	if got := sim.Stats().Accepted; got != accepted {
		t.Errorf("%d new connections: a depth gap must resync the book, not reconnect", got-accepted)
	}
	checkBookShape(t, st, "BTCUSDT", 5)
}

// A feed restarted from the position its first run checkpointed
// backfills exactly the trades it missed while it was down.
func TestE2EResumeBackfillsMissedTrades(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 3})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	cfg := config(sim, market.Spot, map[string]any{"symbols": syms, "streams": []string{"trade", "aggTrade"}})
	first, stop := runPlugin(t, cfg, nil)
	waitFor(t, "a checkpoint covering trades of both symbols", 10*time.Second, func() bool {
		p, err := binance.DecodePosition(first.lastPosition())
		return err == nil && len(p.Trade) == 2 && len(p.AggTrade) == 2
	})
	stop()
	pos := first.lastPosition()
	p, _ := binance.DecodePosition(pos)
	time.Sleep(time.Second) // the feed is down; the market goes on
	second, stop2 := runPlugin(t, cfg, pos)
	time.Sleep(time.Second)
	d.stop()
	fromTrade, fromAgg := map[string]int64{}, map[string]int64{}
	for _, sym := range syms {
		fromTrade[sym], fromAgg[sym] = p.Trade[sym]+1, p.AggTrade[sym]+1
	}
	waitFor(t, "every trade since the position", 20*time.Second, func() bool {
		return landedAll(sim, second, market.Spot, syms, fromTrade, tradeIDs) && landedAll(sim, second, market.Spot, syms, fromAgg, aggIDs)
	})
	stop2()
	// Exactly the ids after the position: none missing, none twice, and
	// none the first run had already covered.
	checkIDs(t, sim, second, market.Spot, tradeIDs, syms, fromTrade)
	checkIDs(t, sim, second, market.Spot, aggIDs, syms, fromAgg)
	for _, sym := range syms {
		if second.eventCount(binance.FeedBackfill, sym) == 0 {
			t.Errorf("%s: no backfill reported; events: %q", sym, second.events(""))
		}
	}
}

// checkBookShape checks every complete book a symbol emitted (the last
// may have been cut by the stop): levels 0..n-1 of each side, best bid
// below best ask.
func checkBookShape(t *testing.T, st *store, symbol string, n int) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	type book struct {
		levels    int
		bid, ask  float64
		hasLevels map[string]bool
	}
	books := map[time.Time]*book{}
	for i := range st.points {
		p := &st.points[i]
		if sym, _ := p.Tag(market.TagSymbol); p.Measurement != market.MeasBook || sym != symbol {
			continue
		}
		b := books[p.Time]
		if b == nil {
			b = &book{hasLevels: map[string]bool{}}
			books[p.Time] = b
		}
		side, _ := p.Tag(market.TagSide)
		lv, _ := p.Tag(market.TagLevel)
		b.levels++
		b.hasLevels[side+lv] = true
		if lv == "0" {
			price, _ := p.Field("price")
			if side == market.SideBid {
				b.bid = price.Float()
			} else {
				b.ask = price.Float()
			}
		}
	}
	complete := 0
	for at, b := range books {
		if b.levels > 2*n {
			t.Errorf("%s: the book at %v has %d levels, want %d", symbol, at, b.levels, 2*n)
		}
		if b.levels < 2*n {
			continue
		}
		complete++
		if len(b.hasLevels) != 2*n || b.bid <= 0 || b.bid >= b.ask {
			t.Errorf("%s: the book at %v has levels %v, best bid %v, best ask %v", symbol, at, b.hasLevels, b.bid, b.ask)
		}
	}
	if complete == 0 {
		t.Errorf("%s: no complete book among %d emitted", symbol, len(books))
	}
}

// The futures venues: their own depth sequencing (pu), endpoints and
// streams (markPrice, forceOrder), through a dropped connection.
func TestE2EFutures(t *testing.T) {
	for _, tc := range []struct {
		m    market.Market
		syms []string
	}{
		{market.USDM, []string{"BTCUSDT", "ETHUSDT"}},
		{market.COINM, []string{"BTCUSD_PERP", "ETHUSD_PERP"}},
	} {
		t.Run(tc.m.String(), func(t *testing.T) {
			sim := startSim(t, binancesim.Options{Markets: []market.Market{tc.m},
				Symbols: map[market.Market][]string{tc.m: tc.syms}})
			d := drive(sim)
			defer d.stop()
			st, stop := runPlugin(t, config(sim, tc.m, map[string]any{
				"symbols": tc.syms, "api_key": "test",
				"streams":       []string{"trade", "aggTrade", "depth@100ms", "markPrice@1s", "forceOrder", "bookTicker"},
				"book_depth":    5,
				"book_interval": "100ms",
			}), nil)
			waitFor(t, "trades, books and mark prices of both symbols", 10*time.Second, func() bool {
				for _, sym := range tc.syms {
					for _, meas := range []string{market.MeasTrades, market.MeasBook, market.MeasMarkPrice, market.MeasBookTicker} {
						if st.count(meas, sym) == 0 {
							return false
						}
					}
				}
				return true
			})
			sim.DropAll(binancesim.Abrupt)
			waitFor(t, "the reconnect", 10*time.Second, func() bool { return len(st.events(binance.FeedReconnect)) > 0 })
			settle(t, sim, 6*len(tc.syms))
			d.stop()
			waitLanded(t, "every generated trade", 20*time.Second, sim, st, tc.m, tc.syms, nil, tradeIDs, aggIDs)
			stop()
			checkIDs(t, sim, st, tc.m, tradeIDs, tc.syms, nil)
			checkIDs(t, sim, st, tc.m, aggIDs, tc.syms, nil)
			for _, sym := range tc.syms {
				checkBookShape(t, st, sym, 5)
			}
			t.Logf("%d liquidations; events %q", st.count(market.MeasLiquidations, ""), st.events(""))
		})
	}
}
