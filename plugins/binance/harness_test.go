package binance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// store is what landed: every point a run emitted and every position it
// checkpointed, in order. It stands in for the agent's sinks.
//
// In-process, it can also stand in for a full queue: while refusing, Emit
// refuses every point, and, as sdk.Emitter does, checkpoints are then
// ignored (left out of positions) until the source calls Recovered.
type store struct {
	mu        sync.Mutex
	points    []sluice.Point
	positions []sluice.Position

	refusing  bool
	refused   int
	frozen    bool // a point was refused since the last Recovered
	recovered int  // Recovered calls that ended a freeze
	marks     []mark
}

// mark is one Checkpoint call (or, host side, one batch's position): the
// position, how many points had landed when it was made, and whether a
// host would have ignored it.
type mark struct {
	pos     sluice.Position
	landed  int
	ignored bool
}

func (s *store) add(ps []sluice.Point, pos sluice.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points = append(s.points, ps...)
	if pos != nil {
		s.positions = append(s.positions, pos)
		s.marks = append(s.marks, mark{pos: pos, landed: len(s.points)})
	}
}

// Emit, EmitWait, Checkpoint and Recovered make a store a binance.Emitter
// for the in-process tests.
func (s *store) Emit(p sluice.Point) bool {
	s.mu.Lock()
	if s.refusing {
		s.refused++
		s.frozen = true
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	s.add([]sluice.Point{p}, nil)
	return true
}

// EmitWithin does not wait: a refusing store stands for a queue that
// stays full past any wait.
func (s *store) EmitWithin(_ context.Context, p sluice.Point, _ time.Duration) bool {
	return s.Emit(p)
}
func (s *store) EmitWait(ctx context.Context, p sluice.Point) error {
	s.add([]sluice.Point{p}, nil)
	return ctx.Err()
}
func (s *store) Checkpoint(pos sluice.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = append(s.marks, mark{pos: pos, landed: len(s.points), ignored: s.frozen})
	if !s.frozen {
		s.positions = append(s.positions, pos)
	}
}

// Event stands in for the agent: it writes the event as the
// feed_events point the agent writes.
func (s *store) Event(ev sdk.Event) {
	s.add([]sluice.Point{sdk.EventPoint("test", ev)}, nil)
}

func (s *store) Recovered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen {
		s.recovered++
	}
	s.frozen = false
}

// refuse makes Emit refuse every point (on) or none.
func (s *store) refuse(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusing = on
}

// ids returns how many times each id of a measurement's id field was
// emitted for a symbol.
func (s *store) ids(meas, field, symbol string) map[int64]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]int{}
	for i := range s.points {
		p := &s.points[i]
		if p.Measurement != meas {
			continue
		}
		if sym, _ := p.Tag(market.TagSymbol); sym != symbol {
			continue
		}
		v, ok := p.Field(field)
		if ok {
			out[v.Int()]++
		}
	}
	return out
}

// eventCount counts the feed_events of a kind for a symbol.
func (s *store) eventCount(kind, symbol string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.points {
		p := &s.points[i]
		k, _ := p.Tag(binance.TagKind)
		sym, _ := p.Tag(market.TagSymbol)
		if p.Measurement == binance.MeasFeedEvents && k == kind && sym == symbol {
			n++
		}
	}
	return n
}

// events returns the feed_events of a kind (all kinds if empty), as
// "symbol: message".
func (s *store) events(kind string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i := range s.points {
		p := &s.points[i]
		if p.Measurement != binance.MeasFeedEvents {
			continue
		}
		k, _ := p.Tag(binance.TagKind)
		if kind != "" && k != kind {
			continue
		}
		sym, _ := p.Tag(market.TagSymbol)
		msg, _ := p.Field("message")
		out = append(out, fmt.Sprintf("%s %s: %s", k, sym, msg.Str()))
	}
	return out
}

func (s *store) count(meas, symbol string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.points {
		if s.points[i].Measurement == meas {
			if sym, _ := s.points[i].Tag(market.TagSymbol); symbol == "" || sym == symbol {
				n++
			}
		}
	}
	return n
}

func (s *store) lastPosition() sluice.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.positions) == 0 {
		return nil
	}
	return s.positions[len(s.positions)-1]
}

// testLogger logs to the test's output when -v is given, else nowhere
// (the failure message says what to rerun).
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// startSim starts a simulated spot market whose clock the test moves in
// small steps from a goroutine (see drive), so that the test can stop the
// market and compare what landed with everything it generated.
func startSim(t *testing.T, opts binancesim.Options) *binancesim.Server {
	t.Helper()
	opts.Manual = true
	if opts.Markets == nil {
		opts.Markets = []market.Market{market.Spot}
	}
	if opts.Symbols == nil {
		opts.Symbols = map[market.Market][]string{market.Spot: {"BTCUSDT", "ETHUSDT"}}
	}
	if opts.TradeRate == 0 {
		opts.TradeRate = 200
	}
	return binancesim.Start(t, opts)
}

// driver moves a manual Sim's clock in real time until stopped.
type driver struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func drive(sim *binancesim.Server) *driver {
	ctx, cancel := context.WithCancel(context.Background())
	d := &driver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sim.Advance(10 * time.Millisecond)
			}
		}
	}()
	return d
}

func (d *driver) stop() {
	d.cancel()
	<-d.done
}

// config returns a feed config for the simulated market m.
func config(sim *binancesim.Server, m market.Market, extra map[string]any) json.RawMessage {
	c := map[string]any{
		"market":   m.String(),
		"ws_url":   sim.WSURL(m),
		"rest_url": sim.RESTURL(m),
	}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// waitFor polls cond every 20ms until it holds or the time is up.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// idKind is a measurement whose points carry a per-symbol id, and where
// the simulator's ground truth for it is.
type idKind struct {
	meas, field string
	truth       func(sim *binancesim.Server, m market.Market, symbol string) []int64
}

var (
	tradeIDs = idKind{market.MeasTrades, "trade_id", func(sim *binancesim.Server, m market.Market, sym string) []int64 {
		var out []int64
		for _, tr := range sim.Trades(m, sym) {
			out = append(out, tr.ID)
		}
		return out
	}}
	aggIDs = idKind{market.MeasAggTrades, "agg_id", func(sim *binancesim.Server, m market.Market, sym string) []int64 {
		var out []int64
		for _, a := range sim.AggTrades(m, sym) {
			out = append(out, a.ID)
		}
		return out
	}}
)

// checkIDs compares the ids that landed for each symbol with the ids the
// exchange generated from from[symbol] on (0: from the first id that
// landed): every one exactly once, nothing else.
func checkIDs(t *testing.T, sim *binancesim.Server, st *store, m market.Market, k idKind, symbols []string, from map[string]int64) {
	t.Helper()
	for _, sym := range symbols {
		got := st.ids(k.meas, k.field, sym)
		start := from[sym]
		if start == 0 {
			start = minKey(got)
		}
		var missing, dups, extra []int64
		want := map[int64]bool{}
		for _, id := range k.truth(sim, m, sym) {
			if id < start {
				continue
			}
			want[id] = true
			switch n := got[id]; {
			case n == 0:
				missing = append(missing, id)
			case n > 1:
				dups = append(dups, id)
			}
		}
		for id := range got {
			if !want[id] {
				extra = append(extra, id)
			}
		}
		if len(want) == 0 {
			t.Errorf("%s %s: the exchange generated none from id %d", sym, k.meas, start)
		}
		if len(missing)+len(dups)+len(extra) > 0 {
			t.Errorf("%s %s: %d generated from id %d, %d distinct landed; missing %s, duplicated %s, not generated %s",
				sym, k.meas, len(want), start, len(got), short(missing), short(dups), short(extra))
		}
	}
}

// settle waits until the open connections together carry all n streams
// and have done so for half a second, so that a trade the plugin missed
// while it reconnected has a later id to reveal it before the market
// halts. Without it, a fault just before the halt can leave a hole with
// nothing after it, which no feed could see.
func settle(t *testing.T, sim *binancesim.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var since time.Time
	for {
		covered := map[string]bool{}
		for _, c := range sim.Conns() {
			for _, s := range c.Streams {
				covered[s] = true
			}
		}
		switch {
		case len(covered) < n:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= 500*time.Millisecond:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connections did not carry all %d streams for 500ms within 20s: %+v", n, sim.Conns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLanded waits until landedAll holds; past limit it reports, per
// symbol and kind, the ids missing, duplicated or never generated, and the
// feed events, before failing.
func waitLanded(t *testing.T, what string, limit time.Duration, sim *binancesim.Server, st *store, m market.Market, symbols []string, from map[string]int64, kinds ...idKind) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !landedAll(sim, st, m, symbols, from, kinds...) {
		if time.Now().After(deadline) {
			for _, k := range kinds {
				checkIDs(t, sim, st, m, k, symbols, from)
			}
			t.Fatalf("gave up after %v waiting for %s; events: %q", limit, what, st.events(""))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// landedAll reports whether every id generated from from[symbol] on (0:
// from the first that landed) has landed, for every symbol and kind.
func landedAll(sim *binancesim.Server, st *store, m market.Market, symbols []string, from map[string]int64, kinds ...idKind) bool {
	for _, k := range kinds {
		for _, sym := range symbols {
			got := st.ids(k.meas, k.field, sym)
			start := from[sym]
			if start == 0 {
				start = minKey(got)
			}
			for _, id := range k.truth(sim, m, sym) {
				if id >= start && got[id] == 0 {
					return false
				}
			}
		}
	}
	return true
}

func minKey(m map[int64]int) int64 {
	first := true
	var lo int64
	for k := range m {
		if first || k < lo {
			lo, first = k, false
		}
	}
	return lo
}

func short(ids []int64) string {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	s := fmt.Sprint(ids[:min(len(ids), 10)])
	if len(ids) > 10 {
		s += fmt.Sprintf("...(%d)", len(ids))
	}
	return strings.TrimSpace(s)
}

// eventPoints returns the feed_events points of a kind for a symbol.
func (s *store) eventPoints(kind, symbol string) []sluice.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sluice.Point
	for i := range s.points {
		p := s.points[i]
		k, _ := p.Tag(binance.TagKind)
		sym, _ := p.Tag(market.TagSymbol)
		if p.Measurement == binance.MeasFeedEvents && k == kind && sym == symbol {
			out = append(out, p)
		}
	}
	return out
}

func intField(p sluice.Point, key string) int64 {
	v, _ := p.Field(key)
	return v.Int()
}

// checkMarks checks that no position the run made (in-process, every
// Checkpoint call, even those a host ignores) claims an id that had not
// landed when it was made: from the first id that landed for the symbol
// up to the position's id, every id the exchange generated must be among
// the points before it.
func checkMarks(t *testing.T, sim *binancesim.Server, st *store, m market.Market, symbols []string) {
	t.Helper()
	st.mu.Lock()
	marks := slices.Clone(st.marks)
	st.mu.Unlock()
	for _, k := range []idKind{tradeIDs, aggIDs} {
		for _, sym := range symbols {
			truth := k.truth(sim, m, sym)
			first := minKey(st.ids(k.meas, k.field, sym))
			for _, mk := range marks {
				p, err := binance.DecodePosition(mk.pos)
				if err != nil {
					t.Fatalf("position %s: %v", mk.pos, err)
				}
				claim, ok := p.Trade[sym]
				if k.meas == market.MeasAggTrades {
					claim, ok = p.AggTrade[sym]
				}
				if !ok {
					continue
				}
				landed := st.idsBefore(k.meas, k.field, sym, mk.landed)
				var missing []int64
				for _, id := range truth {
					if id >= first && id <= claim && !landed[id] {
						missing = append(missing, id)
					}
				}
				if len(missing) > 0 {
					t.Errorf("%s %s: a position (ignored by the host: %v) claims id %d, but %s had not landed",
						sym, k.meas, mk.ignored, claim, short(missing))
					break
				}
			}
		}
	}
}

// idsBefore returns the ids of a measurement's id field for a symbol among
// the first n points.
func (s *store) idsBefore(meas, field, symbol string, n int) map[int64]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for i := range s.points[:n] {
		p := &s.points[i]
		if p.Measurement != meas {
			continue
		}
		if sym, _ := p.Tag(market.TagSymbol); sym != symbol {
			continue
		}
		if v, ok := p.Field(field); ok {
			out[v.Int()] = true
		}
	}
	return out
}

// covers reports whether the last position landed covers every id the
// exchange generated for each symbol, trades and aggTrades.
func covers(sim *binancesim.Server, st *store, m market.Market, symbols []string) bool {
	p, err := binance.DecodePosition(st.lastPosition())
	if err != nil {
		return false
	}
	for _, sym := range symbols {
		for _, k := range []idKind{tradeIDs, aggIDs} {
			truth := k.truth(sim, m, sym)
			pos := p.Trade
			if k.meas == market.MeasAggTrades {
				pos = p.AggTrade
			}
			if id, ok := pos[sym]; len(truth) > 0 && (!ok || id < truth[len(truth)-1]) {
				return false
			}
		}
	}
	return true
}

// duplicates counts the ids of a measurement that landed more than once,
// over the given symbols, and the extra copies.
func duplicates(st *store, k idKind, symbols []string) (ids, copies int) {
	for _, sym := range symbols {
		for _, n := range st.ids(k.meas, k.field, sym) {
			if n > 1 {
				ids++
				copies += n - 1
			}
		}
	}
	return ids, copies
}
