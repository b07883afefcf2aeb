package binance

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/book"
	"github.com/sluicehq/sluice/plugins/binance/rest"
	"github.com/sluicehq/sluice/plugins/binance/wire"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Runner bounds and periods.
const (
	frameQueue          = 1024   // parsed frames waiting for the runner
	frameRun            = 256    // frames handled between looks at the other channels
	maxPendingIDs       = 50_000 // trade ids held past a hole, per symbol and stream
	housekeeping        = 250 * time.Millisecond
	checkpointEvery     = time.Second
	defaultGapGrace     = time.Second // a hole may be reordering between two connections
	backfillRetry       = 5 * time.Second
	emptyPageRetry      = time.Second
	maxEmptyPages       = 3
	maxBackfillFailures = 3
	snapshotRetryFirst  = 500 * time.Millisecond
	snapshotRetryMax    = 30 * time.Second
)

// runner is one Run of the source. Connection readers parse frames and
// hand them over on frames; shard supervisors report on notes; a REST
// worker answers jobs on results; Reconfigure hands new configs over on
// reconf. Everything else (the id sequences, the books, the stream
// clocks, the emitter, the current config) belongs to the goroutine in
// run, so none of it is locked.
type runner struct {
	// base is the config the run started with, which every goroutine
	// may read: its endpoints, market and connection settings never
	// change within a run (see restartReason). cfg is the config in
	// force, for the runner's goroutine only.
	base  *settings
	cfg   *settings
	log   *slog.Logger
	out   Emitter
	rest  *rest.Client
	dials dialLimiter
	now   func() time.Time

	frames  chan frame
	notes   chan connNote
	jobs    chan restJob
	results chan restResult
	reconf  chan reconfReq
	stopped <-chan struct{}
	done    chan struct{} // closed when run returns

	// Set by run for starting shards later, from its goroutine.
	runCtx    context.Context
	wg        *sync.WaitGroup
	nextShard int // idx of the next shard

	shards  []*shard
	streams map[string]*streamState // by wire name
	// gone are the streams removed by a reconfiguration: their frames
	// still in flight before the UNSUBSCRIBE is acknowledged are
	// dropped.
	gone map[string]bool

	trades map[string]*tradeSeq // by symbol
	aggs   map[string]*tradeSeq
	// carried are the resume position's ids of symbols not configured
	// now, checkpointed as they came so that they are not forgotten.
	carried Position
	names   []string // r.streams' keys, sorted
	books   map[string]*localBook
	// bookTick emits the books; nil while there are none.
	bookTick *time.Ticker
	dirty    bool // the position moved since the last checkpoint
	ready    []sluice.Point
	buf      []sluice.Point

	gapGrace  time.Duration
	badFrames atomic.Int64
	dropped   int64 // ids not kept because a pending buffer was full
	// queueDrops counts the points the host's queue refused in this run;
	// unrecovered says one was refused since the last out.Recovered.
	queueDrops  int64
	unrecovered bool
}

// streamState is what the runner knows of one subscribed stream.
type streamState struct {
	kind     streamKind
	symbol   string
	shard    *shard
	lastSeen time.Time // its last frame, or its subscription
	// judged is when its connection was last replaced for its silence:
	// it is judged again a full stale_after later.
	judged   time.Time
	lastData time.Time // its last frame only
	// quiet: it stayed silent for a whole stale_after on the connection
	// that replaced one for its silence. The stream is quiet, not stalled
	// (a symbol nobody trades), so its silence replaces no more
	// connections, which would cut every other stream on them, until it
	// has data again.
	quiet bool
	// staleSince is, while the stream is reported stale, when it last had
	// data (or was subscribed); zero while it is live.
	staleSince time.Time
	lastKey    int64 // periodic streams: the newest event time or update id emitted
}

// tradeSeq is one symbol's trade or aggTrade ids and the backfill of its
// current hole.
type tradeSeq struct {
	idSeq
	kind       streamKind
	symbol     string
	gapSince   time.Time  // when the current hole was first seen
	gap        *gapRecord // the hole being backfilled, once reported
	inFlight   bool       // a REST page is being fetched
	retryAt    time.Time
	emptyPages int
	failures   int // REST failures in a row
	// qdrop is the ids the host's queue refused that no queue_drop event
	// has reported yet.
	qdrop idRange
}

// idRange counts ids from..to (count may be less: not every id between).
type idRange struct {
	count, from, to int64
}

func (g *idRange) add(id int64) {
	if g.count == 0 || id < g.from {
		g.from = id
	}
	g.to = max(g.to, id)
	g.count++
}

type gapRecord struct {
	from, to     int64
	filled, lost int64
}

// localBook is one symbol's local book and its snapshot fetching.
type localBook struct {
	book     *book.Book
	kind     streamKind
	loaded   bool // a snapshot is loaded (the book may still be bridging)
	fetching bool
	retryAt  time.Time
	failures int
}

// connNote is a supervisor's report: the shard's connection went up or
// down, and/or a feed event to write.
type connNote struct {
	shard      *shard
	up, down   bool
	ev         sdk.Event // Kind empty: none
	subscribed []string  // streams just SUBSCRIBEd on the shard's connection
}

// jobQueueSymbols is the fewest symbols the REST job queue has room
// for, so that a feed reconfigured to more symbols than it started with
// still queues every job.
const jobQueueSymbols = 256

func newRunner(cfg *settings, log *slog.Logger, out Emitter) *runner {
	r := &runner{
		base:     cfg,
		cfg:      cfg,
		log:      log.With("feed", cfg.feed),
		out:      out,
		rest:     rest.New(rest.Config{BaseURL: cfg.restURL, Market: cfg.market, APIKey: cfg.apiKey, WeightLimit: cfg.weightLimit}),
		now:      time.Now,
		frames:   make(chan frame, frameQueue),
		notes:    make(chan connNote, 16),
		jobs:     make(chan restJob, 3*max(len(cfg.symbols), jobQueueSymbols)+1),
		results:  make(chan restResult),
		reconf:   make(chan reconfReq),
		done:     make(chan struct{}),
		streams:  map[string]*streamState{},
		gone:     map[string]bool{},
		trades:   map[string]*tradeSeq{},
		aggs:     map[string]*tradeSeq{},
		carried:  Position{Trade: map[string]int64{}, AggTrade: map[string]int64{}},
		books:    map[string]*localBook{},
		gapGrace: defaultGapGrace,
	}
	r.shards = planShards(cfg)
	r.nextShard = len(r.shards)
	shardOf := map[string]*shard{}
	for _, sh := range r.shards {
		for _, name := range sh.streams {
			shardOf[name] = sh
		}
	}
	for _, sym := range cfg.symbols {
		for _, k := range cfg.kinds {
			r.addStream(sym, k, shardOf[streamName(sym, k)])
		}
	}
	slices.Sort(r.names)
	return r
}

// addStream sets up what the runner keeps for one stream carried by sh:
// its clock and, by kind, its id sequence (resumed from a carried id) or
// its book.
func (r *runner) addStream(sym string, k streamKind, sh *shard) {
	name := streamName(sym, k)
	r.names = append(r.names, name)
	// Its silence counts from now: a connection that never comes up
	// leaves it stale a stale_after from now.
	r.streams[name] = &streamState{kind: k, symbol: sym, shard: sh, lastSeen: r.now()}
	delete(r.gone, name)
	switch k.class {
	case classTrade:
		r.trades[sym] = r.newSeq(k, sym, r.carried.Trade)
	case classAggTrade:
		r.aggs[sym] = r.newSeq(k, sym, r.carried.AggTrade)
	case classDepth:
		r.books[sym] = &localBook{book: book.New(r.base.market, sym), kind: k}
	}
}

// newSeq starts a symbol's id sequence, from its carried id if it has
// one (it was dropped from the config, or from the resume position's).
func (r *runner) newSeq(k streamKind, sym string, carried map[string]int64) *tradeSeq {
	s := &tradeSeq{idSeq: idSeq{maxPending: maxPendingIDs}, kind: k, symbol: sym}
	if id, ok := carried[sym]; ok {
		s.resume(id)
		delete(carried, sym)
	}
	return s
}

// run connects every shard and processes until ctx ends.
func (r *runner) run(ctx context.Context, resume sluice.Position) error {
	defer close(r.done)
	r.resume(resume)
	ctx, cancel := context.WithCancel(ctx)
	r.stopped = ctx.Done()

	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		r.rest.CloseIdleConnections()
		if r.bookTick != nil {
			r.bookTick.Stop()
		}
	}()
	r.runCtx, r.wg = ctx, &wg
	for _, sh := range r.shards {
		r.startShard(sh)
	}
	wg.Go(func() { r.restWorker(ctx) })
	if r.cfg.market.Futures() && len(r.trades) > 0 && r.cfg.apiKey == "" {
		r.log.Warn("futures trade streams without api_key: Binance requires a key for historicalTrades, so trade gaps will be reported but not backfilled")
	}
	r.log.Info("binance source starting", "market", r.cfg.market.String(), "symbols", len(r.cfg.symbols),
		"streams", len(r.streams), "connections", len(r.shards))

	house := time.NewTicker(housekeeping)
	defer house.Stop()
	r.tickBooks(nil)
	lastCheckpoint := r.now()
	for {
		var err error
		var bookTick <-chan time.Time
		if r.bookTick != nil {
			bookTick = r.bookTick.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f := <-r.frames:
			err = r.handleFrames(ctx, f)
		case n := <-r.notes:
			r.handleNote(n)
		case res := <-r.results:
			err = r.handleResult(ctx, res)
		case <-bookTick:
			r.emitBooks()
		case req := <-r.reconf:
			req.reply <- r.apply(req.cfg)
		case <-house.C:
			now := r.now()
			err = r.scheduleBackfills(ctx, now)
			r.scheduleSnapshots(now)
			r.checkStale(now)
			r.reportQueueDrops()
			r.recover()
			if now.Sub(lastCheckpoint) >= checkpointEvery {
				r.checkpoint()
				lastCheckpoint = now
			}
		}
		if err != nil {
			return err // only ctx ending makes the handlers fail
		}
	}
}

// resume starts the id sequences at a stored position.
func (r *runner) resume(b sluice.Position) {
	if len(b) == 0 {
		return
	}
	pos, err := DecodePosition(b)
	if err != nil {
		r.log.Error("ignoring a resume position that cannot be read; starting from live data", "error", err)
		return
	}
	if pos.Market != r.cfg.market {
		r.log.Warn("ignoring a resume position of another market; starting from live data",
			"position_market", pos.Market.String())
		return
	}
	n := 0
	for _, c := range []struct {
		ids   map[string]int64
		seqs  map[string]*tradeSeq
		carry map[string]int64
	}{{pos.Trade, r.trades, r.carried.Trade}, {pos.AggTrade, r.aggs, r.carried.AggTrade}} {
		for sym, id := range c.ids {
			if s := c.seqs[sym]; s != nil {
				s.resume(id)
				n++
			} else {
				c.carry[sym] = id
			}
		}
	}
	r.log.Info("resuming", "sequences", n, "carried", len(r.carried.Trade)+len(r.carried.AggTrade))
}

// checkpoint records the position if it moved.
func (r *runner) checkpoint() {
	if !r.dirty {
		return
	}
	pos := Position{Market: r.cfg.market, Trade: maps.Clone(r.carried.Trade), AggTrade: maps.Clone(r.carried.AggTrade)}
	if pos.Trade == nil {
		pos.Trade, pos.AggTrade = map[string]int64{}, map[string]int64{}
	}
	for sym, s := range r.trades {
		if s.started {
			pos.Trade[sym] = s.last
		}
	}
	for sym, s := range r.aggs {
		if s.started {
			pos.AggTrade[sym] = s.last
		}
	}
	r.out.Checkpoint(pos.Encode())
	r.dirty = false
}

// event reports e to the host, which writes it as a feed_events point.
// Events wait in a queue of their own: a full point queue loses none.
func (r *runner) event(e sdk.Event) {
	e.Time = r.now()
	r.out.Event(e)
}

// emit hands a live point to the host. While the host's queue is full it
// waits up to queue_wait for room, the connections' frames waiting in
// their sockets meanwhile (after a wait that ran out, not again until a
// point goes in: see sdk.Emitter.EmitWithin). A point the queue refuses
// is counted there, and noted here for recover.
func (r *runner) emit(p sluice.Point) bool {
	if r.out.EmitWithin(r.runCtx, p, r.cfg.queueWait) {
		return true
	}
	r.queueDrops++
	r.unrecovered = true
	if r.queueDrops == 1 || r.queueDrops%10000 == 0 {
		r.log.Warn("the host's queue is full; dropping points (trades and aggTrades are backfilled)", "queue_drops", r.queueDrops)
	}
	return false
}

// reportQueueDrops reports a queue_drop event for each sequence whose ids
// the host's queue refused since its last one.
func (r *runner) reportQueueDrops() {
	for _, seqs := range []map[string]*tradeSeq{r.trades, r.aggs} {
		for _, s := range seqs {
			q := s.qdrop
			if q.count == 0 {
				continue
			}
			r.event(sdk.Event{Kind: sdk.EventQueueDrop, Symbol: s.symbol, Stream: s.kind.Name, Count: q.count, FromID: q.from, ToID: q.to,
				Message: fmt.Sprintf("the host's queue was full: %d ids dropped, to be backfilled", q.count)})
			s.qdrop = idRange{}
		}
	}
}

// recover lets the host count checkpoints again once every point its
// queue refused is accounted for: every trade and aggTrade id refused has
// been emitted again or given up and reported (gap_lost). The other
// points refused (books, candles, tickers, events) have no id the
// position covers: a restart could not bring them back either.
//
// The position never claims a refused id before that: requeue puts last
// below it, and last passes it only when the id is emitted again or given
// up. Recover runs on the runner's goroutine, like every Emit and
// Checkpoint, so no checkpoint slips between a drop and the check.
func (r *runner) recover() {
	if !r.unrecovered {
		return
	}
	for _, seqs := range []map[string]*tradeSeq{r.trades, r.aggs} {
		for _, s := range seqs {
			if s.owing() {
				return
			}
		}
	}
	r.out.Recovered()
	r.unrecovered = false
	r.dirty = true // the checkpoints since the drop were ignored
	r.log.Info("every point the host's queue dropped is backfilled or reported; checkpoints resume", "queue_drops", r.queueDrops)
}

// note hands a supervisor's report to the runner.
func (r *runner) note(ctx context.Context, n connNote) {
	select {
	case r.notes <- n:
	case <-ctx.Done():
	}
}

func (r *runner) handleNote(n connNote) {
	if n.up {
		n.shard.up, n.shard.upSince = true, r.now()
	}
	if n.down {
		n.shard.up = false
	}
	for _, name := range n.subscribed {
		// The stream's silence is judged from its subscription, not
		// from when its connection opened.
		if st := r.streams[name]; st != nil && st.shard == n.shard {
			st.lastSeen = r.now()
		}
	}
	if n.ev.Kind != "" {
		r.event(n.ev)
	}
}

// control handles, on a reader's goroutine, what a connection cannot:
// error frames nobody waits for and serverShutdown notices.
func (r *runner) control(sh *shard, c *wsConn, ev wire.Event) {
	var n connNote
	switch ev.Kind {
	case wire.EventServerShutdown:
		c.log.Warn("binance announced a server shutdown; replacing the connection")
		sh.requestReplace(replaceReq{conn: c, kind: FeedReconnect, reason: "serverShutdown notice"})
		n = connNote{shard: sh, ev: sdk.Event{Kind: sdk.EventServerShutdown,
			Message: fmt.Sprintf("connection %d: serverShutdown at %s", c.id, ev.Time.Format(time.RFC3339Nano))}}
	case wire.EventError:
		c.log.Error("binance sent an error", "error", ev.Err)
		n = connNote{shard: sh, ev: sdk.Event{Kind: sdk.EventServerError, Message: fmt.Sprintf("connection %d: %v", c.id, ev.Err)}}
	default:
		c.log.Debug("unsolicited answer", "id", ev.ID, "result", ev.Result)
		return
	}
	select {
	case r.notes <- n:
	case <-r.stopped:
	}
}

// badFrame counts a frame that failed to parse and logs a sample: the
// first ten, then one in a thousand.
func (r *runner) badFrame(err error, data []byte) {
	n := r.badFrames.Add(1)
	if n <= 10 || n%1000 == 0 {
		r.log.Warn("dropping a frame that does not parse", "error", err, "frame", string(data[:min(len(data), 300)]), "bad_frames", n)
	}
}

// handleFrames handles f and then the frames already waiting, up to
// frameRun of them: one receive each instead of a select over every
// channel of the run loop per frame (a select locks all of them; at tens
// of thousands of frames a second that was 9% of the plugin's CPU).
func (r *runner) handleFrames(ctx context.Context, f frame) error {
	if err := r.handleFrame(ctx, f); err != nil {
		return err
	}
	for range frameRun - 1 {
		select {
		case f := <-r.frames:
			if err := r.handleFrame(ctx, f); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

func (r *runner) handleFrame(ctx context.Context, f frame) error {
	ev := &f.ev
	if r.gone[ev.Stream] {
		return nil // unsubscribed; its last frames are late
	}
	st := r.streams[ev.Stream]
	if st != nil {
		st.lastSeen, st.lastData, st.quiet = f.received, f.received, false
		if !st.staleSince.IsZero() {
			r.live(ev.Stream, st, fmt.Sprintf("data again after %v of silence", f.received.Sub(st.staleSince).Round(time.Millisecond)))
		}
	}
	switch ev.Kind {
	case wire.EventTrade, wire.EventAggTrade:
		seqs := r.trades
		if ev.Kind == wire.EventAggTrade {
			seqs = r.aggs
		}
		if s := seqs[ev.Symbol]; s != nil && len(f.points) == 1 {
			return r.offer(ctx, s, ev.ID, f.points[0], false)
		}
	case wire.EventDepthUpdate:
		r.applyDepth(ev)
		return nil
	default:
		// Periodic streams: during a handover both connections send
		// the same events; keep the first.
		if key := dedupeKey(ev); st != nil && key != 0 {
			if key <= st.lastKey {
				return nil
			}
			st.lastKey = key
		}
	}
	for _, p := range f.points {
		r.emit(p)
	}
	return nil
}

// dedupeKey orders the events of one periodic stream: the update id where
// the frame has one, else the event time.
func dedupeKey(ev *wire.Event) int64 {
	switch ev.Kind {
	case wire.EventBookTicker, wire.EventPartialDepth:
		return ev.ID
	}
	if ev.Time.IsZero() {
		return 0
	}
	return ev.Time.UnixNano()
}

// offer passes one trade or aggTrade through its sequence and emits what
// it releases: live points without blocking, backfilled ones waiting for
// room.
func (r *runner) offer(ctx context.Context, s *tradeSeq, id int64, p sluice.Point, backfill bool) error {
	ready, res := s.offer(id, p, r.ready[:0])
	switch res {
	case offerPending:
		if s.gapSince.IsZero() {
			s.gapSince = r.now()
		}
	case offerDropped:
		r.dropped++
		if r.dropped == 1 || r.dropped%10000 == 0 {
			r.log.Warn("too many ids wait for a backfill; dropping the newest, to be backfilled later",
				"symbol", s.symbol, "stream", s.kind.Name, "dropped", r.dropped)
		}
	}
	if res == offerReleased || res == offerPending {
		if s.gap != nil && backfill {
			s.gap.filled++
		}
	}
	if backfill {
		if err := r.emitReady(ctx, ready, true); err != nil {
			return err
		}
	} else {
		r.emitLive(s, id, ready)
	}
	r.settleGap(s)
	return nil
}

// emitReady emits the points a sequence released, waiting for room when
// wait is set, else (a live point) without blocking.
func (r *runner) emitReady(ctx context.Context, ready []sluice.Point, wait bool) error {
	if len(ready) == 0 {
		return nil
	}
	r.dirty = true
	for i := range ready {
		if wait {
			if err := r.out.EmitWait(ctx, ready[i]); err != nil {
				return err
			}
		} else {
			r.emit(ready[i])
		}
	}
	clear(ready)
	r.ready = ready[:0]
	return nil
}

// emitLive emits what a live id released (ids first, first+1, ... in
// order) without blocking. When the host's queue refuses one, that id
// goes back to s as a hole, to be backfilled over REST, and the points
// after it wait behind it: none is emitted out of order or twice.
func (r *runner) emitLive(s *tradeSeq, first int64, ready []sluice.Point) {
	if len(ready) == 0 {
		return
	}
	r.dirty = true
	for i := range ready {
		if r.emit(ready[i]) {
			continue
		}
		id := first + int64(i)
		s.requeue(id, ready[i:])
		s.qdrop.add(id)
		if s.gapSince.IsZero() {
			s.gapSince = r.now()
		}
		break
	}
	clear(ready)
	r.ready = ready[:0]
}

// settleGap reports a backfilled hole once every id of it is done.
func (r *runner) settleGap(s *tradeSeq) {
	if _, _, open := s.hole(); !open {
		s.gapSince = time.Time{}
	}
	g := s.gap
	if g == nil || s.last < g.to {
		return
	}
	s.gap, s.emptyPages = nil, 0
	if g.filled > 0 {
		msg := fmt.Sprintf("backfilled %d of %d missing ids over REST", min(g.filled, g.to-g.from+1), g.to-g.from+1)
		if g.lost > 0 {
			msg += fmt.Sprintf("; %d given up", g.lost)
		}
		r.log.Info("gap backfilled", "symbol", s.symbol, "stream", s.kind.Name, "from_id", g.from, "to_id", g.to, "filled", g.filled, "lost", g.lost)
		r.event(sdk.Event{Kind: sdk.EventBackfill, Symbol: s.symbol, Stream: s.kind.Name, Message: msg,
			Count: min(g.filled, g.to-g.from+1), FromID: g.from, ToID: g.to})
	}
	if _, _, open := s.hole(); open && s.gapSince.IsZero() {
		s.gapSince = r.now()
	}
}

// giveUp abandons every id of s up to and including id, reporting why.
func (r *runner) giveUp(ctx context.Context, s *tradeSeq, id int64, why string) error {
	from := s.last + 1
	ready, lost := s.skipTo(id, r.ready[:0])
	if err := r.emitReady(ctx, ready, true); err != nil {
		return err
	}
	r.dirty = true
	if lost > 0 {
		if s.gap != nil {
			s.gap.lost += lost
		}
		r.log.Warn("giving up missing ids", "symbol", s.symbol, "stream", s.kind.Name, "from_id", from, "to_id", id, "count", lost, "why", why)
		r.event(sdk.Event{Kind: sdk.EventGapLost, Symbol: s.symbol, Stream: s.kind.Name, Message: why,
			Count: lost, FromID: from, ToID: id})
	}
	r.settleGap(s)
	return nil
}

// checkStale reports every stream silent past its stale_after as stale,
// once, whether its connection is up or not (a stream whose connection
// is down has no data either), and replaces the connection of a stream
// silent that long on it, reporting it stale again each time. A stream
// stays stale, in the host's eyes, until its next frame (see live).
func (r *runner) checkStale(now time.Time) {
	for _, name := range r.names {
		st := r.streams[name]
		d := r.cfg.stale[st.kind.Name]
		if d <= 0 {
			continue
		}
		// On its connection: from its last frame or subscription, the
		// connection's start, or the last replacement it caused.
		onConn := st.lastSeen
		for _, t := range []time.Time{st.shard.upSince, st.judged} {
			if t.After(onConn) {
				onConn = t
			}
		}
		replace := st.shard.up && now.Sub(onConn) > d && !st.quiet
		if replace && !st.judged.IsZero() && st.lastData.Before(st.judged) {
			// Silent before the last replacement and for a whole
			// stale_after since, on a new connection: quiet.
			st.quiet, replace = true, false
			r.log.Info("quiet stream: its silence replaces no more connections", "stream", name, "silent", now.Sub(st.lastSeen).Round(time.Millisecond).String())
		}
		if !replace && (!st.staleSince.IsZero() || now.Sub(st.lastSeen) <= d) {
			continue
		}
		if st.staleSince.IsZero() {
			st.staleSince = st.lastSeen
		}
		silent := now.Sub(st.lastSeen).Round(time.Millisecond)
		msg := fmt.Sprintf("%s silent for %v (stale_after %v)", name, silent, d)
		switch {
		case replace:
			st.judged = now
			msg += "; replacing its connection"
			st.shard.requestReplace(replaceReq{kind: FeedReconnect, reason: "stale stream " + name})
		case !st.shard.up:
			msg += "; its connection is down"
		}
		r.log.Warn("stale stream", "stream", name, "silent", silent.String(), "stale_after", d.String(), "replacing", replace)
		r.event(sdk.Event{Kind: sdk.EventStale, Symbol: st.symbol, Stream: st.kind.Name, Message: msg, Since: st.staleSince})
	}
}

// live reports a stale stream live again: it has data, or it is gone.
func (r *runner) live(name string, st *streamState, why string) {
	r.log.Info("stream live again", "stream", name, "stale_since", st.staleSince, "why", why)
	r.event(sdk.Event{Kind: sdk.EventLive, Symbol: st.symbol, Stream: st.kind.Name, Message: name + ": " + why})
	st.staleSince = time.Time{}
}
