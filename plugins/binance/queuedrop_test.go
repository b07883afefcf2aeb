package binance_test

// A slow host (CPU-starved, or its buffer pushing back under when_full:
// block) fills the plugin's queue, which then drops points. Trades and
// aggTrades it drops are backfilled over REST: these tests check that every
// id the exchange generated lands, that the drops are reported, and that
// the position never claims a dropped id yet keeps advancing once the
// drops are repaired.

import (
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// In process, the emitter refuses every point for a while, a few times:
// each refused trade and aggTrade lands exactly once, from REST, with a
// queue_drop event; Recovered ends each freeze; and no checkpoint, not
// even one a host would have ignored, claims an id that had not landed.
func TestInProcessQueueDropsAreBackfilled(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 13, TradeRate: 400})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, market.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade", "aggTrade", "bookTicker"},
	}), nil)
	waitFor(t, "first trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "") > 20 })
	for range 4 {
		time.Sleep(300 * time.Millisecond)
		st.refuse(true)
		time.Sleep(150 * time.Millisecond)
		st.refuse(false)
	}
	time.Sleep(300 * time.Millisecond)
	d.stop()
	waitLanded(t, "every generated trade and aggTrade", 20*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	waitFor(t, "a position covering the last ids", 10*time.Second, func() bool { return covers(sim, st, market.Spot, syms) })
	stop()

	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, syms, nil)
	checkMarks(t, sim, st, market.Spot, syms)
	st.mu.Lock()
	refused, recovered, frozen := st.refused, st.recovered, st.frozen
	st.mu.Unlock()
	if refused == 0 {
		t.Fatal("nothing was refused: the test did not test")
	}
	if recovered == 0 || frozen {
		t.Errorf("Recovered ended %d freezes, frozen at the end: %v; want every freeze ended", recovered, frozen)
	}
	var reported int64
	for _, sym := range syms {
		for _, p := range st.eventPoints(binance.FeedQueueDrop, sym) {
			reported += intField(p, "count")
		}
	}
	if reported == 0 || reported > int64(refused) {
		t.Errorf("queue_drop events report %d ids, of %d points refused", reported, refused)
	}
	t.Logf("%d points refused in 4 windows, %d trade ids reported dropped, %d freezes recovered; events: %q",
		refused, reported, recovered, st.events(binance.FeedQueueDrop))
}

// The real plugin binary behind a tiny queue, streamed to a host whose
// handler stalls now and then: the queue overflows, the host is told of
// the drops, yet every trade and aggTrade id the exchange generated lands
// (duplicates counted, not failed), no batch's position claims an id that
// had not landed, and the position advances to the last ids once the
// drops are repaired.
func TestE2EQueueDropsAreBackfilled(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 17, TradeRate: 1000})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	h := runStalling(t, sim, syms, map[string]any{"queue_wait": "0s"}) // drop as soon as the queue is full
	st, stalls, dropped := h.st, h.stalls, &h.dropped
	waitFor(t, "first trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "") > 20 })
	// A few stalls; more (within a bound) if the queue has not
	// overflowed yet, which depends on how fast this machine drains it.
	n := 0
	for ; n < 4 || (dropped.Load() == 0 && n < 12); n++ {
		stalls <- 400 * time.Millisecond
		time.Sleep(700 * time.Millisecond)
	}
	if dropped.Load() == 0 {
		t.Fatalf("%d stalls of 400ms and the queue of 20 never overflowed: the test did not test", n)
	}
	d.stop()
	waitLanded(t, "every generated trade and aggTrade", 30*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	waitFor(t, "a position covering the last ids", 10*time.Second, func() bool { return covers(sim, st, market.Spot, syms) })
	h.stop()

	checkMarks(t, sim, st, market.Spot, syms)
	for _, k := range []idKind{tradeIDs, aggIDs} {
		ids, copies := duplicates(st, k, syms)
		t.Logf("%s: %d ids landed more than once (%d extra copies)", k.meas, ids, copies)
	}
	var reported int64
	for _, sym := range syms {
		for _, p := range st.eventPoints(binance.FeedQueueDrop, sym) {
			reported += intField(p, "count")
		}
	}
	if reported == 0 || reported > int64(dropped.Load()) {
		t.Errorf("queue_drop events report %d ids; the host counted %d drops", reported, dropped.Load())
	}
	t.Logf("%d stalls; the host counted %d drops, queue_drop events %d trade ids; %d trades, %d aggTrades landed; backfills: %d",
		n, dropped.Load(), reported, st.count(market.MeasTrades, ""), st.count(market.MeasAggTrades, ""), len(st.events(binance.FeedBackfill)))
}

// The same tiny queue and stalling host with the default queue_wait (1s):
// stalls of 400ms are ridden out. The runner waits for room while the
// frames wait in the socket, so the host is told of no drop, no id needs
// REST, and every trade and aggTrade still lands exactly once.
func TestE2EQueueWaitRidesOutShortStalls(t *testing.T) {
	sim := startSim(t, binancesim.Options{Seed: 17, TradeRate: 1000})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	h := runStalling(t, sim, syms, nil)
	st := h.st
	waitFor(t, "first trades", 10*time.Second, func() bool { return st.count(market.MeasTrades, "") > 20 })
	restBefore := sim.Stats().REST
	for range 4 {
		h.stalls <- 400 * time.Millisecond
		time.Sleep(700 * time.Millisecond)
	}
	d.stop()
	waitLanded(t, "every generated trade and aggTrade", 30*time.Second, sim, st, market.Spot, syms, nil, tradeIDs, aggIDs)
	waitFor(t, "a position covering the last ids", 10*time.Second, func() bool { return covers(sim, st, market.Spot, syms) })
	h.stop()

	if n := h.stalled.Load(); n != 4 {
		t.Fatalf("the host stalled %d times, want 4", n)
	}
	if n := h.dropped.Load(); n != 0 {
		t.Errorf("the host counted %d drops; stalls of 400ms are within queue_wait", n)
	}
	if n := sim.Stats().REST - restBefore; n != 0 {
		t.Errorf("%d REST requests during the stalls; nothing should have needed a backfill", n)
	}
	checkIDs(t, sim, st, market.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, market.Spot, aggIDs, syms, nil)
	checkMarks(t, sim, st, market.Spot, syms)
	if evs := st.events(binance.FeedQueueDrop); len(evs) != 0 {
		t.Errorf("%d queue_drop events, want none: %q", len(evs), evs[0])
	}
}

// stallingHost is the real plugin binary behind a 20-point queue,
// streaming trade, aggTrade and bookTicker, to a host that sleeps for each
// duration sent on stalls before it takes its next batch.
type stallingHost struct {
	st      *store
	stop    func() error
	stalls  chan time.Duration
	dropped atomic.Uint64 // drops the batches reported
	stalled atomic.Int64  // stalls done
}

func runStalling(t *testing.T, sim *binancesim.Server, syms []string, extra map[string]any) *stallingHost {
	cfg := map[string]any{"symbols": syms, "streams": []string{"trade", "aggTrade", "bookTicker"}}
	maps.Copy(cfg, extra)
	h := &stallingHost{stalls: make(chan time.Duration, 1)}
	h.st, _, h.stop = runPluginWith(t, config(sim, market.Spot, cfg),
		sdk.StreamOptions{QueueSize: 20, BatchSize: 5, FlushInterval: 10 * time.Millisecond}, func(b *sluice.Batch) {
			h.dropped.Add(b.Dropped)
			select {
			case d := <-h.stalls:
				time.Sleep(d)
				h.stalled.Add(1)
			default:
			}
		})
	return h
}
