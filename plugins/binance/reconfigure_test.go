package binance_test

// Live reconfiguration: a feed's new config applied to the running
// plugin with SUBSCRIBE and UNSUBSCRIBE on its open connections. Like the
// other end-to-end tests these assert on what landed and on what the
// simulated exchange saw, waiting with a bound, never on timing.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// simStreams lists the streams of every open connection at the
// simulator, sorted, and the connections' ids.
func simStreams(sim *binancesim.Server) (streams []string, conns []uint64) {
	for _, c := range sim.Conns() {
		streams = append(streams, c.Streams...)
		conns = append(conns, c.ID)
	}
	slices.Sort(streams)
	return streams, conns
}

// waitStreams waits until the simulator's connections carry exactly want.
func waitStreams(t *testing.T, sim *binancesim.Server, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got, _ = simStreams(sim); slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connections carry %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkContiguous checks that the ids of a symbol that landed are
// contiguous, each once: a symbol removed from the config stops cleanly.
func checkContiguous(t *testing.T, st *store, k idKind, symbol string) {
	t.Helper()
	got := st.ids(k.meas, k.field, symbol)
	lo, hi := minKey(got), int64(0)
	for id, n := range got {
		hi = max(hi, id)
		if n != 1 {
			t.Errorf("%s %s: id %d landed %d times", symbol, k.meas, id, n)
		}
	}
	if len(got) == 0 || int64(len(got)) != hi-lo+1 {
		t.Errorf("%s %s: %d ids landed from %d to %d: not contiguous", symbol, k.meas, len(got), lo, hi)
	}
}

// The real plugin, streaming trades of two symbols, is configured with a
// third symbol and a second stream kind added and one symbol removed: the
// change is made on its connection, without a reconnect, and every trade
// of the symbols it keeps or adds lands exactly once. A market change
// needs a restart and leaves the stream as it was.
func TestE2EReconfigureLive(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 13,
		Symbols: map[market.Market][]string{market.Spot: {"BTCUSDT", "ETHUSDT", "BNBUSDT"}}})
	d := drive(sim)
	defer d.stop()
	st, client, stop := runPluginClient(t, config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT", "ETHUSDT"}, "streams": []string{"trade"},
	}), nil)
	waitFor(t, "trades of both symbols", 10*time.Second, func() bool {
		return st.count(market.MeasTrades, "BTCUSDT") > 10 && st.count(market.MeasTrades, "ETHUSDT") > 10
	})
	waitStreams(t, sim, "btcusdt@trade", "ethusdt@trade")
	_, connsBefore := simStreams(sim)
	before := sim.Stats()

	ctx := context.Background()
	ms, err := client.Configure(ctx, sdk.ConfigureRequest{Feed: "test", Config: config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT", "BNBUSDT"}, "streams": []string{"trade", "aggTrade"},
	})})
	if err != nil {
		t.Fatalf("reconfigure: %v", err)
	}
	if !slices.ContainsFunc(ms, func(m sluice.Measurement) bool { return m.Name == market.MeasAggTrades }) {
		t.Errorf("measurements after the reconfiguration %+v lack %s", ms, market.MeasAggTrades)
	}
	waitStreams(t, sim, "btcusdt@trade", "btcusdt@aggTrade", "bnbusdt@trade", "bnbusdt@aggTrade")
	waitFor(t, "trades and aggregate trades of the new symbol", 10*time.Second, func() bool {
		return st.count(market.MeasTrades, "BNBUSDT") > 10 && st.count(market.MeasAggTrades, "BNBUSDT") > 10 &&
			st.count(market.MeasAggTrades, "BTCUSDT") > 10
	})
	// Batches land in order: BTCUSDT trades emitted after the change
	// landing means every ETHUSDT trade emitted before it has too.
	btc := st.count(market.MeasTrades, "BTCUSDT")
	waitFor(t, "more BTCUSDT trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "BTCUSDT") > btc+20 })
	eth := st.count(market.MeasTrades, "ETHUSDT")

	// A change that needs a restart is refused; the stream goes on
	// as it was.
	_, err = client.Configure(ctx, sdk.ConfigureRequest{Feed: "test", Config: config(sim, market.USDM, map[string]any{
		"symbols": []string{"BTCUSDT", "BNBUSDT"}, "streams": []string{"trade", "aggTrade"},
	})})
	if !errors.Is(err, sdk.ErrRestartNeeded) {
		t.Fatalf("market change while streaming = %v, want ErrRestartNeeded", err)
	}
	// A bad config is refused with the key that is wrong.
	_, err = client.Configure(ctx, sdk.ConfigureRequest{Feed: "test", Config: config(sim, market.Spot, map[string]any{
		"symbols": []string{"BTCUSDT"}, "streams": []string{"trades"},
	})})
	var ces sdk.ConfigErrors
	if !errors.As(err, &ces) || len(ces) != 1 || ces[0].Key != "streams[0]" {
		t.Fatalf("bad config while streaming = %v, want ConfigErrors naming streams[0]", err)
	}
	bnb := st.count(market.MeasTrades, "BNBUSDT")
	waitFor(t, "more BNBUSDT trades after the refusals", 10*time.Second, func() bool {
		return st.count(market.MeasTrades, "BNBUSDT") > bnb+20
	})
	waitStreams(t, sim, "btcusdt@trade", "btcusdt@aggTrade", "bnbusdt@trade", "bnbusdt@aggTrade")

	d.stop()
	kept := []string{"BTCUSDT", "BNBUSDT"}
	waitLanded(t, "every generated trade of the symbols streamed", 20*time.Second, sim, st, market.Spot, kept, nil, tradeIDs, aggIDs)
	// The removed symbol's id stays in the position.
	waitFor(t, "a position with ETHUSDT (removed) and BNBUSDT (added)", 10*time.Second, func() bool {
		p, err := binance.DecodePosition(st.lastPosition())
		return err == nil && p.Trade["ETHUSDT"] > 0 && p.Trade["BNBUSDT"] > 0 && p.AggTrade["BNBUSDT"] > 0
	})
	_, connsAfter := simStreams(sim)
	after := sim.Stats()
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v, want context.Canceled", err)
	}

	checkIDs(t, sim, st, market.Spot, tradeIDs, kept, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, kept, nil)
	if n := st.count(market.MeasTrades, "ETHUSDT"); n != eth {
		t.Errorf("%d ETHUSDT trades landed after it was removed", n-eth)
	}
	checkContiguous(t, st, tradeIDs, "ETHUSDT")
	if after.Accepted != before.Accepted || !slices.Equal(connsAfter, connsBefore) {
		t.Errorf("connections %v (%d accepted) became %v (%d accepted): the change must not reconnect",
			connsBefore, before.Accepted, connsAfter, after.Accepted)
	}
	if after.Requests < before.Requests+2 || after.RateLimited != 0 {
		t.Errorf("%d requests during the change, %d connections closed for their message rate; want an UNSUBSCRIBE and a SUBSCRIBE, none over the limit",
			after.Requests-before.Requests, after.RateLimited)
	}
	if n := len(st.events(binance.FeedReconfigure)); n != 1 {
		t.Errorf("%d reconfigure events, want 1: %q", n, st.events(""))
	}
}

// In process, with one stream per SUBSCRIBE and three streams per
// connection: streams that do not fit open new connections, connections
// left without streams close, a book starts for a depth stream added
// live, the SUBSCRIBE and UNSUBSCRIBE messages stay under Binance's
// message rate, and a symbol removed and added back resumes from its id,
// backfilling what it missed meanwhile.
func TestInProcessReconfigureShards(t *testing.T) {
	defer binance.SetSubscribeLimits(20, 1)()
	syms := []string{"BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT"}
	sim := startSim(t, binancesim.Options{Seed: 17, Symbols: map[market.Market][]string{market.Spot: syms}})
	d := drive(sim)
	defer d.stop()
	cfg := func(symbols []string, streams ...string) []byte {
		return config(sim, market.Spot, map[string]any{"symbols": symbols, "streams": streams,
			"streams_per_connection": 3, "book_interval": "100ms", "book_depth": 5})
	}
	src := binance.New(testLogger(t))
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "test", Config: cfg(syms[:2], "trade")}); err != nil {
		t.Fatal(err)
	}
	st := &store{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.RunTo(ctx, nil, st) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	}()
	reconfigure := func(c []byte) {
		t.Helper()
		if _, err := src.Reconfigure(context.Background(), sdk.ConfigureRequest{Feed: "test", Config: c}); err != nil {
			t.Fatalf("reconfigure: %v", err)
		}
	}
	waitFor(t, "BTCUSDT trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "BTCUSDT") > 10 })

	// 2 streams on one connection become 8: 1 more on it, 3 on a
	// second, 2 on a third.
	reconfigure(cfg(syms, "trade", "depth@100ms"))
	var all []string
	for _, s := range syms {
		all = append(all, strings.ToLower(s)+"@trade", strings.ToLower(s)+"@depth@100ms")
	}
	waitStreams(t, sim, all...)
	if _, conns := simStreams(sim); len(conns) != 3 {
		t.Errorf("%d connections for 8 streams at 3 a connection, want 3", len(conns))
	}
	waitFor(t, "books of every symbol", 10*time.Second, func() bool {
		for _, s := range syms {
			if st.count(market.MeasBook, s) == 0 {
				return false
			}
		}
		return true
	})

	// Down to one symbol's trades: the two connections left empty close.
	reconfigure(cfg(syms[3:], "trade"))
	waitStreams(t, sim, "xrpusdt@trade")
	btcGone := st.count(market.MeasTrades, "BTCUSDT")
	time.Sleep(time.Second) // BTCUSDT trades while it is not configured

	// BTCUSDT back: it resumes from its id and backfills the second.
	reconfigure(cfg([]string{"BTCUSDT", "XRPUSDT"}, "trade"))
	waitStreams(t, sim, "btcusdt@trade", "xrpusdt@trade")
	waitFor(t, "BTCUSDT trades again", 10*time.Second, func() bool { return st.count(market.MeasTrades, "BTCUSDT") > btcGone+10 })
	d.stop()
	waitLanded(t, "every generated BTCUSDT and XRPUSDT trade", 20*time.Second, sim, st, market.Spot, []string{"BTCUSDT", "XRPUSDT"}, nil, tradeIDs)
	// The event follows the points it reports.
	waitFor(t, "BTCUSDT's backfill event", 10*time.Second, func() bool { return st.eventCount(binance.FeedBackfill, "BTCUSDT") > 0 })
	checkIDs(t, sim, st, market.Spot, tradeIDs, []string{"BTCUSDT", "XRPUSDT"}, nil)
	stats := sim.Stats()
	if stats.RateLimited != 0 || stats.Open != 1 {
		t.Errorf("%d connections closed for their message rate, %d open; want none and 1", stats.RateLimited, stats.Open)
	}
	waitFor(t, "a position keeping the ids of the removed symbols", 10*time.Second, func() bool {
		p, err := binance.DecodePosition(st.lastPosition())
		return err == nil && p.Trade["ETHUSDT"] > 0 && p.Trade["BNBUSDT"] > 0 && p.Trade["BTCUSDT"] > 0
	})
	for _, s := range []string{"ETHUSDT", "BNBUSDT"} {
		checkContiguous(t, st, tradeIDs, s)
	}
}
