package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"
	"github.com/sluicehq/sluice/bench/internal/profile"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// runResult is one run: one agent and plugin streaming the run's kinds
// through every stage.
type runResult struct {
	Name    string   `json:"name"`
	Streams []string `json:"streams"`
	Symbols int      `json:"symbols"`
	// Connections the plugin opened and the streams on them, as the
	// simulator saw them; SubscribeSec from the agent's start until every
	// stream was subscribed.
	Connections  int     `json:"connections"`
	StreamsOn    int     `json:"streams_subscribed"`
	SubscribeSec float64 `json:"subscribe_s"`
	// WarmupSec is from the first generated event until every depth book
	// had its REST snapshot (runs with depth); nil stage otherwise.
	WarmupSec float64        `json:"warmup_s,omitempty"`
	Warmup    *stageResult   `json:"warmup,omitempty"`
	Stages    []*stageResult `json:"stages"`
	// What the simulator generated over the whole run, and what landed.
	Generated          binancesim.Activity `json:"generated"`
	TradesLanded       int64               `json:"trades_landed"`
	TradesMissing      int64               `json:"trades_missing"` // not landed by the end of the drain
	BookTickersLanded  int64               `json:"book_tickers_landed"`
	BookTickersMissing int64               `json:"book_tickers_missing"`
	BookRows           int64               `json:"book_rows"`
	DrainSec           float64             `json:"drain_s"`
	// BufferedEnd is what the sink had not written when the run ended:
	// not lost (the disk buffer keeps it), but not landed in time.
	BufferedEnd int64 `json:"buffered_points_end"`
	// From the agent's status at the end.
	PluginDropped   uint64            `json:"plugin_dropped"`
	PluginDiscarded map[string]uint64 `json:"plugin_discarded,omitempty"`
	Events          map[string]uint64 `json:"events,omitempty"`
	// PeakRSSMB is VmHWM of the agent and the plugin.
	PeakRSSMB map[string]float64 `json:"peak_rss_mib"`
	// Exchange is the simulator's count of connections, slow consumers
	// cut and REST requests.
	Exchange binancesim.Stats `json:"exchange"`
	DBMB     float64          `json:"db_mib"`
	Note     string           `json:"note,omitempty"`
}

// stageResult is one load stage (or the warm-up): what was generated per
// second, what each process spent, and the lag of what was generated in
// it.
type stageResult struct {
	Scale float64 `json:"scale"`
	Sec   float64 `json:"seconds"`
	// Generated per second over all symbols.
	Events      float64 `json:"events_per_s"`
	Trades      float64 `json:"trades_per_s"`
	BookTickers float64 `json:"book_tickers_per_s"`
	DepthEvents float64 `json:"depth_events_per_s"`
	DepthLevels float64 `json:"depth_levels_per_event"`
	// BookRows is rows landed in the book table per second; PointsIn the
	// points the agent took from the plugin per second, Written those the
	// sink wrote, and Buffered the points taken and not yet written at
	// the stage's end (the disk buffer's backlog).
	BookRows float64 `json:"book_rows_per_s"`
	PointsIn float64 `json:"points_in_per_s"`
	Written  float64 `json:"written_per_s"`
	Buffered int64   `json:"buffered_points_end"`
	// Landed is the share of what the stage generated (trades and
	// bookTickers) that landed by the end of the run.
	Landed map[string]float64 `json:"landed_share"`
	// CPU in cores (CPU seconds per second) of the agent, the plugin and
	// this harness (simulator and poller); RSS (VmRSS) at the stage's end.
	CPU   map[string]float64 `json:"cpu_cores"`
	RSSMB map[string]float64 `json:"rss_mib"`
	Load1 float64            `json:"load1_end"`
	// Lag per kind (trades, book_ticker, book) of what was generated in
	// this stage.
	Lag map[string]lagStats `json:"lag"`

	gen map[string]int64 // generated in the stage, by table
}

type lagStats struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

// runOne starts the simulator and an agent streaming the given kinds of
// every symbol, waits until all are subscribed, then runs the warm-up (with
// depth) and the stages on the wall clock, and measures from outside what
// landed, when, and what each process spent.
func runOne(ctx context.Context, o options, name string, streams []string) (*runResult, error) {
	res := &runResult{Name: name, Streams: streams, Symbols: o.symbols, PeakRSSMB: map[string]float64{}}
	syms := binancesim.SyntheticSymbols(market.Spot, o.symbols)
	sim := binancesim.New(binancesim.Options{
		Markets:    []market.Market{market.Spot},
		Symbols:    map[market.Market][]string{market.Spot: syms},
		TradeRate:  baseTradeRate * o.scales[0],
		TakerShare: takerShare,
		Skew:       skew,
		Manual:     true,
		Seed:       1,
	})
	srv := httptest.NewServer(sim)
	defer func() { srv.Close(); sim.Close() }()
	ws, rest := binancesim.URLs(srv.URL, market.Spot)

	dir := filepath.Join(o.workDir, name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	started := time.Now()
	ag, err := startAgent(o, name, dir, ws, rest, syms, streams)
	if err != nil {
		return nil, err
	}
	defer ag.Stop()

	want := len(syms) * len(streams)
	f, err := ag.WaitFeed(ctx, feedName, 2*time.Minute, 100*time.Millisecond, func() bool {
		n := 0
		for _, c := range sim.Conns() {
			n += len(c.Streams)
		}
		return n >= want
	})
	if err != nil {
		return nil, fmt.Errorf("not every stream subscribed: %w", err)
	}
	res.SubscribeSec = time.Since(started).Seconds()
	for _, c := range sim.Conns() {
		res.Connections++
		res.StreamsOn += len(c.Streams)
	}
	pids := map[string]int{"agent": ag.Pid(), "plugin": f.Pid}

	st, err := openStore(filepath.Join(dir, "data", "sluice.db"))
	if err != nil {
		return nil, err
	}
	defer st.close()
	withBT := slices.Contains(streams, "bookTicker")
	withDepth := slices.Contains(streams, "depth@100ms")
	ids := newIDHistory(syms)

	// The stages, on the wall clock: the warm-up (depth books loading)
	// first, then one per scale. A generated thing belongs to the stage
	// its generation time falls in.
	type span struct {
		from time.Time
		st   *stageResult
	}
	var (
		spansMu sync.Mutex
		spans   []span
	)
	stageOf := func(t time.Time) *stageResult {
		spansMu.Lock()
		defer spansMu.Unlock()
		for i := len(spans) - 1; i >= 0; i-- {
			if !t.Before(spans[i].from) {
				return spans[i].st
			}
		}
		if len(spans) > 0 {
			return spans[0].st
		}
		return nil
	}
	lags := map[*stageResult]map[string][]float64{}
	var lagMu sync.Mutex
	addLag := func(kind string, gen, seen time.Time) {
		s := stageOf(gen)
		if s == nil {
			return
		}
		lagMu.Lock()
		if lags[s] == nil {
			lags[s] = map[string][]float64{}
		}
		lags[s][kind] = append(lags[s][kind], float64(seen.Sub(gen))/float64(time.Millisecond))
		lagMu.Unlock()
	}

	// The simulator's clock started at the first connection; it stands
	// still until the drive below moves it with the wall clock. Event
	// times (T, E) are virtual: offset maps them to the wall clock.
	offset := time.Since(sim.Now())

	// The poller: new rows of each table, by rowid, every pollEvery.
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() {
		pollDone <- st.poll(pollCtx, func(kind string, sym string, v int64, seen time.Time) {
			switch kind {
			case "trades", "book":
				addLag(kind, time.Unix(0, v).Add(offset), seen)
			case "book_ticker":
				if gen, ok := ids.genTime(sym, v); ok {
					addLag(kind, gen, seen)
				}
			}
		})
	}()
	defer func() {
		stopPoll()
		<-pollDone
	}()

	// Drive the simulator's clock with the wall clock; note each symbol's
	// update id as it moves, for the bookTicker lag.
	type mark struct {
		at        time.Time
		cpu       map[string]float64
		act       binancesim.Activity
		bookRows  int64
		status    feedStatus
		selfCPU   float64
		stageSpec *stageResult
	}
	snap := func(s *stageResult) mark {
		m := mark{at: time.Now(), cpu: map[string]float64{}, act: sim.Activity(market.Spot), stageSpec: s}
		for k, pid := range pids {
			m.cpu[k], _ = procstat.CPUSeconds(pid)
		}
		m.selfCPU = procstat.SelfCPUSeconds()
		m.bookRows = st.maxRowID(ctx, "book")
		m.status, _ = statusOf(ag)
		return m
	}
	finish := func(a, b mark) {
		s := a.stageSpec
		sec := b.at.Sub(a.at).Seconds()
		s.Sec = sec
		s.Events = float64(b.act.Events-a.act.Events) / sec
		s.Trades = float64(b.act.Trades-a.act.Trades) / sec
		s.BookTickers = float64(b.act.BookTickers-a.act.BookTickers) / sec
		s.DepthEvents = float64(b.act.DepthEvents-a.act.DepthEvents) / sec
		if d := b.act.DepthEvents - a.act.DepthEvents; d > 0 {
			s.DepthLevels = float64(b.act.DepthLevels-a.act.DepthLevels) / float64(d)
		}
		s.BookRows = float64(b.bookRows-a.bookRows) / sec
		s.PointsIn = float64(b.status.Points-a.status.Points) / sec
		s.Written = float64(b.status.Written-a.status.Written) / sec
		s.Buffered = b.status.Buffered
		s.gen = map[string]int64{"trades": b.act.Trades - a.act.Trades, "book_ticker": b.act.BookTickers - a.act.BookTickers}
		s.CPU = map[string]float64{"harness": (b.selfCPU - a.selfCPU) / sec}
		s.RSSMB = map[string]float64{}
		for k, pid := range pids {
			s.CPU[k] = (b.cpu[k] - a.cpu[k]) / sec
			s.RSSMB[k], _ = procstat.RSSMB(pid)
		}
		s.Load1 = procstat.LoadAvg()
	}

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	drive := func(until func(now time.Time) bool) error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case now := <-tick.C:
				sim.Advance(now.Sub(last))
				last = now
				if withBT {
					ids.note(time.Now(), sim.UpdateIDs(market.Spot))
				}
				if until(now) {
					return nil
				}
			}
		}
	}

	clockStart := sim.Now().Add(offset)
	last = clockStart
	if withDepth {
		w := &stageResult{Scale: o.scales[0]}
		spansMu.Lock()
		spans = append(spans, span{clockStart, w})
		spansMu.Unlock()
		m0 := snap(w)
		var loadedAt time.Time
		err := drive(func(now time.Time) bool {
			if loadedAt.IsZero() && sim.Stats().REST >= int64(len(syms)) {
				loadedAt = now
			}
			// A book is emitted at most book_interval (1s) after its
			// snapshot: give the last ones two.
			return !loadedAt.IsZero() && now.Sub(loadedAt) >= 2*time.Second || now.Sub(clockStart) >= o.warmupMax
		})
		if err != nil {
			return nil, err
		}
		if loadedAt.IsZero() {
			res.Note = fmt.Sprintf("only %d of %d depth snapshots served within %v", sim.Stats().REST, len(syms), o.warmupMax)
			loadedAt = time.Now()
		}
		res.WarmupSec = loadedAt.Sub(clockStart).Seconds()
		finish(m0, snap(w))
		res.Warmup = w
		log.Printf("  warm-up: every book loaded %.0fs after the first event", res.WarmupSec)
	}
	for i, scale := range o.scales {
		s := &stageResult{Scale: scale}
		sim.SetTradeRate(market.Spot, baseTradeRate*scale)
		m0 := snap(s)
		spansMu.Lock()
		spans = append(spans, span{m0.at, s})
		spansMu.Unlock()
		from := m0.at
		if err := drive(func(now time.Time) bool { return now.Sub(from) >= o.stage }); err != nil {
			return nil, err
		}
		finish(m0, snap(s))
		res.Stages = append(res.Stages, s)
		// More than 5 s of input waiting in the disk buffer: the sink
		// falls behind, and the next stages only fall further.
		if behind := float64(s.Buffered) > 5*s.PointsIn; behind && !o.allStages && i < len(o.scales)-1 {
			res.Note = fmt.Sprintf("stages after ×%g skipped: %d points waiting in the disk buffer at its end (%.0f s of input)",
				scale, s.Buffered, float64(s.Buffered)/s.PointsIn)
			break
		}
	}

	// Drain: the clock stops; wait until every trade and bookTicker has
	// landed and the agent has written everything it took for longer
	// than a book_interval (the plugin's last books come up to a second
	// after the last diff: an empty disk buffer before them is not the
	// end), progress stops for 10s, or o.drain.
	res.Generated = sim.Activity(market.Spot)
	drainFrom := time.Now()
	var lastProgress = drainFrom
	var doneSince time.Time
	prev := int64(math.MinInt64)
	for time.Since(drainFrom) < o.drain && time.Since(lastProgress) < 10*time.Second {
		n, _ := st.count(ctx, "trades")
		b, _ := st.count(ctx, "book_ticker")
		fs, answered := statusOf(ag)
		left := fs.Buffered
		// An agent that did not answer has not shown that it is done.
		done := answered && (!slices.Contains(streams, "trade") || n >= res.Generated.Trades) && (!withBT || b >= res.Generated.BookTickers) && left == 0
		if !done {
			doneSince = time.Time{}
		} else if doneSince.IsZero() {
			doneSince = time.Now()
		} else if time.Since(doneSince) > drainQuiet {
			break
		}
		if p := n + b - left; p != prev {
			prev, lastProgress = p, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.DrainSec = time.Since(drainFrom).Seconds()
	time.Sleep(2 * pollEvery) // the poller's last look
	stopPoll()
	if err := <-pollDone; err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	pollDone <- nil // for the deferred wait

	// Loss: trade ids per symbol against what was generated, bookTicker
	// rows against the changes of the top of the book.
	if slices.Contains(streams, "trade") {
		landed, err := st.tradeCounts(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range syms {
			gen := sim.TradeCount(market.Spot, s)
			got := landed[s]
			res.TradesLanded += got
			if got < gen {
				res.TradesMissing += gen - got
			}
		}
	}
	if withBT {
		res.BookTickersLanded, _ = st.count(ctx, "book_ticker")
		res.BookTickersMissing = max(0, res.Generated.BookTickers-res.BookTickersLanded)
	}
	res.BookRows = st.maxRowID(ctx, "book")
	res.Exchange = sim.Stats()
	fs, answered := statusOf(ag)
	if !answered {
		return nil, errors.New("the agent did not answer its status at the end of the run")
	}
	res.PluginDropped, res.PluginDiscarded, res.Events = fs.PluginDropped, fs.PluginDiscarded, fs.Events
	res.BufferedEnd = fs.Buffered
	for k, pid := range pids {
		res.PeakRSSMB[k], _ = procstat.PeakRSSMB(pid)
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", "sluice.db")); err == nil {
		res.DBMB = float64(fi.Size()) / (1 << 20)
	}
	lagMu.Lock()
	defer lagMu.Unlock()
	for s, byKind := range lags {
		s.Lag = map[string]lagStats{}
		for k, v := range byKind {
			s.Lag[k] = summarize(v)
		}
	}
	for _, s := range append([]*stageResult{res.Warmup}, res.Stages...) {
		if s == nil {
			continue
		}
		s.Landed = map[string]float64{}
		for k, n := range s.gen {
			if n > 0 {
				s.Landed[k] = float64(s.Lag[k].N) / float64(n)
			}
		}
	}
	return res, nil
}

// feedName is the feed the run's feed file defines.
const feedName = "binance"

// feedStatus is the feed's status with its sink's counts.
type feedStatus struct {
	agent.FeedStatus
	// From the sink: written, and received but not yet written.
	Written  uint64
	Buffered int64
}

// drainQuiet is how long the drain must find everything landed and the
// disk buffer empty: longer than the default book_interval (1 s).
const drainQuiet = 2 * time.Second

// statusOf is the feed's status and its sink's counts, asked up to three
// times (a busy agent can miss the harness's deadline); ok is false, and
// the status zero, when the agent did not answer.
func statusOf(ag *harness.Proc) (f feedStatus, ok bool) {
	for try := range 3 {
		if try > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		st, ok := ag.Status()
		if !ok || len(st.Feeds) != 1 {
			continue
		}
		f := feedStatus{FeedStatus: st.Feeds[0]}
		if len(st.Sinks) == 1 {
			f.Written, f.Buffered = st.Sinks[0].Written, st.Sinks[0].BufferedPoints
		}
		return f, true
	}
	return feedStatus{}, false
}

// startAgent writes the agent's config and one feed file, as a user would
// (every setting at its default), and starts the agent.
func startAgent(o options, name, dir, ws, rest string, syms, streams []string) (*harness.Proc, error) {
	addr := harness.FreeAddr()
	feeds := filepath.Join(dir, "feeds.d")
	if err := os.MkdirAll(feeds, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: %s
http: {listen: %q, socket: ""}
log: {level: warn}
sinks:
  db:
    type: sqlite
    path: sluice.db
`, filepath.Join(dir, "data"), filepath.Join(o.binDir, "plugins"), feeds, addr)
	feed := fmt.Sprintf(`# The whole of (simulated) Binance spot: every symbol, trades, best bid
# and ask, and a local order book of each.
feeds:
  %s:
    plugin: binance
    sinks: [db]
    config:
      market: spot
      ws_url: %s
      rest_url: %s
      streams: [%s]
`, feedName, ws, rest, strings.Join(streams, ", "))
	if o.bookInterval != "" {
		feed += "      book_interval: " + o.bookInterval + "\n"
	}
	if o.bookDepth != 0 {
		feed += fmt.Sprintf("      book_depth: %d\n", o.bookDepth)
	}
	feed += "      symbols:\n"
	var b strings.Builder
	b.WriteString(feed)
	for _, s := range syms {
		b.WriteString("        - " + s + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "sluice.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(feeds, "binance.yaml"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	spec := harness.AgentSpec{Bin: filepath.Join(o.binDir, "sluice"), Config: filepath.Join(dir, "sluice.yaml"),
		Addr: addr, Log: filepath.Join(dir, "log.txt")}
	if o.profile != "" {
		spec.Env = []string{
			profile.EnvPrefix + "=" + filepath.Join(o.profile, "whole-"+strings.ReplaceAll(name, "@", "-")),
			fmt.Sprintf("%s=%s", profile.EnvFor, o.profileFor)}
	}
	return harness.StartAgent(spec)
}
