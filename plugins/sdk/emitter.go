package sdk

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
)

// Default plugin-side bounds, used when the host does not set them.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 500
	DefaultFlushInterval = 100 * time.Millisecond

	// maxPendingCheckpoints bounds checkpoints waiting for their points
	// to be batched; past it the oldest goes. Batches are cut close to
	// the newest points, so the newest checkpoints are the ones that count.
	maxPendingCheckpoints = 64

	// maxQueuedEvents bounds the events waiting for the next batch; past
	// it they are coalesced (see eventQueue), never dropped.
	maxQueuedEvents = 1024
	// maxCoalesced bounds the coalesced entries: one per stream for stale
	// and live, one per kind for the rest; past it stale and live are
	// coalesced per kind too.
	maxCoalesced = 256
	// maxDiscardReasons bounds the reasons counted between two batches;
	// past it the counts go to "other".
	maxDiscardReasons = 64
)

// Emitter is how a source hands points, positions and events to the
// host. The SDK gives Run one; a test can give it a fake (sdktest's
// Recorder records everything).
//
// Emit never blocks: the SDK's emitter puts the point on a bounded queue
// and, when the queue is full, drops the point and counts it, so a slow
// host can never stall a WebSocket read loop. The count reaches the host
// in the next batch. EmitWithin waits a bounded time for room first,
// riding out a host's short pause; EmitWait is the blocking form for
// sources that can wait (a REST backfill, a generator).
//
// Checkpoint records a position that covers every point emitted before it
// (call it from the goroutine that emits). A batch carries the newest
// checkpoint whose points are all in that batch or earlier ones.
//
// Event, Stale, Live and Discarded report what happened to the feed
// besides its data. They never block and are never dropped: they wait in
// a bounded queue of their own, apart from the points, and reach the host
// with the next batch, or within a flush interval when no points flow.
//
// Once a point has been dropped, later checkpoints are ignored: the
// position stays at the last one with nothing lost before it, so a
// restarted feed resumes, and backfills, from there. By default that
// lasts for the rest of the stream. A source that repairs its own losses
// (it refetches what it dropped, as a REST backfill can) calls Recovered
// once it has, and checkpoints count again; see Recovered for the
// contract.
type Emitter interface {
	// Emit queues one point. It reports false when the queue was full
	// and the point was dropped.
	Emit(p sluice.Point) bool
	// EmitWithin queues one point, waiting at most wait for room: a host
	// that pauses briefly slows the caller (a WebSocket reader then
	// leaves frames in the socket, as TCP intends) instead of losing the
	// point. It reports false when the queue stayed full for wait, or
	// ctx ended, and the point was dropped and counted, as Emit does.
	// Once a wait has run out, later calls do not wait until a point
	// goes in again, so a stalled host costs one wait, not one per
	// point. A wait of 0 is Emit.
	EmitWithin(ctx context.Context, p sluice.Point, wait time.Duration) bool
	// EmitWait queues one point, waiting for room. It fails only when
	// ctx ends.
	EmitWait(ctx context.Context, p sluice.Point) error
	// Checkpoint records pos as covering every point emitted so far.
	// Only a Resumer's positions come back to it.
	Checkpoint(pos sluice.Position)
	// Recovered tells the emitter that every point dropped so far (every
	// Emit that returned false before this call) is accounted for by the
	// source, so that the checkpoints it records from now on count
	// again. Accounted for means, for each dropped point, one of:
	//
	//   - it has been emitted again, or will be before any checkpoint
	//     whose position covers it is recorded;
	//   - the source's position never covers it, so a resume could not
	//     bring it back anyway (a periodic snapshot, an event without an
	//     id);
	//   - the source gave it up and reported that itself, as it reports
	//     any loss its position passes over.
	//
	// Checkpoints recorded between the drop and Recovered stay ignored:
	// they may claim dropped points. Call Recovered from the goroutine
	// that emits and checkpoints, after the re-emission it relies on has
	// been queued (Emit returned true or EmitWait nil) or is guaranteed
	// to precede the next covering checkpoint; a drop after Recovered
	// freezes checkpoints again until the next call. Without drops it
	// does nothing.
	Recovered()
	// Event reports something that happened to the feed: a gap, a
	// backfill, a reconnect. It never blocks, and the event is never
	// dropped: when events come faster than the host takes them (past
	// 1024 between two batches), events of one kind are coalesced into
	// one whose Count is their sum and whose Message says how many it
	// stands for; stale and live are coalesced per stream, the newest
	// state winning. A zero Time is now. It is safe to call from any
	// goroutine.
	Event(ev Event)
	// Stale reports that stream has had no data since since: the agent
	// shows the feed as stale (in /readyz, status and metrics) until
	// Live(stream). An empty stream stands for the feed as a whole.
	// Calling it again for a stream that is stale already is harmless;
	// the agent keeps the first since. A restarted plugin starts with
	// every stream live.
	Stale(stream string, since time.Time)
	// Live reports that stream has data again after Stale.
	Live(stream string)
	// Discarded counts n messages the source discarded for reason before
	// they became points (a frame too large, a message that is not
	// JSON), so that the agent shows them per reason. Reasons should be
	// few and fixed (snake_case words), as they become metric labels.
	Discarded(reason string, n uint64)
}

// emitter is the SDK's Emitter: a bounded point queue that the batcher
// drains, the checkpoints waiting for their points, and the event queue.
type emitter struct {
	queue   chan sluice.Point
	dropped atomic.Uint64 // dropped since the last batch was cut
	lost    atomic.Bool   // a point has been dropped since the stream began or Recovered
	queued  atomic.Uint64 // points queued since the stream started
	stalled atomic.Bool   // an EmitWithin wait ran out and no point has gone in since

	mu      sync.Mutex
	pending []checkpoint // ascending seq

	events eventQueue
	now    func() time.Time
}

type checkpoint struct {
	seq uint64 // the number of points queued before it
	pos sluice.Position
}

func newEmitter(queueSize int) *emitter {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	return &emitter{queue: make(chan sluice.Point, queueSize), now: time.Now}
}

func (e *emitter) Emit(p sluice.Point) bool {
	select {
	case e.queue <- p:
		e.queued.Add(1)
		return true
	default:
		e.dropped.Add(1)
		e.lost.Store(true)
		return false
	}
}

func (e *emitter) EmitWithin(ctx context.Context, p sluice.Point, wait time.Duration) bool {
	select {
	case e.queue <- p:
		e.queued.Add(1)
		if e.stalled.Load() {
			e.stalled.Store(false)
		}
		return true
	default:
	}
	if wait > 0 && !e.stalled.Load() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case e.queue <- p:
			e.queued.Add(1)
			return true
		case <-t.C:
			e.stalled.Store(true)
		case <-ctx.Done():
		}
	}
	e.dropped.Add(1)
	e.lost.Store(true)
	return false
}

func (e *emitter) EmitWait(ctx context.Context, p sluice.Point) error {
	select {
	case e.queue <- p:
		e.queued.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *emitter) Checkpoint(pos sluice.Position) {
	if e.lost.Load() || len(pos) == 0 {
		return
	}
	cp := checkpoint{seq: e.queued.Load(), pos: pos}
	e.mu.Lock()
	if len(e.pending) >= maxPendingCheckpoints {
		e.pending = append(e.pending[:0], e.pending[1:]...)
	}
	e.pending = append(e.pending, cp)
	e.mu.Unlock()
}

func (e *emitter) Recovered() {
	e.lost.Store(false)
}

func (e *emitter) Event(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	if ev.Kind == EventStale && ev.Since.IsZero() {
		ev.Since = ev.Time
	}
	e.events.push(ev)
}

func (e *emitter) Stale(stream string, since time.Time) {
	e.Event(Event{Kind: EventStale, Stream: stream, Since: since})
}

func (e *emitter) Live(stream string) {
	e.Event(Event{Kind: EventLive, Stream: stream})
}

func (e *emitter) Discarded(reason string, n uint64) {
	if n > 0 {
		e.events.discard(reason, n)
	}
}

// covered pops every checkpoint whose points have all been taken and
// returns the newest of them (nil if none).
func (e *emitter) covered(taken uint64) sluice.Position {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pos sluice.Position
	i := 0
	for ; i < len(e.pending) && e.pending[i].seq <= taken; i++ {
		pos = e.pending[i].pos
	}
	e.pending = e.pending[i:]
	return pos
}

// Dropped is the number of points dropped and not yet reported.
func (e *emitter) Dropped() uint64 { return e.dropped.Load() }

// batcher drains the queue into batches of at most size points, cutting
// a batch when it is full or when interval has passed since the batch
// started, and hands each to send. It returns after a final send once done
// is closed and the queue drained, or with send's error, or when ctx ends.
type batcher struct {
	e        *emitter
	size     int
	interval time.Duration
	send     func(b *outBatch) error
	// legacyFeed, when set, is the feed whose events are sent as
	// feed_events points among the batch's points, for a host that does
	// not write them itself.
	legacyFeed string
	out        outBatch // reused by every send: one allocation less a batch
}

// outBatch is one batch as the plugin sends it.
type outBatch struct {
	points    []sluice.Point
	dropped   uint64
	pos       sluice.Position
	events    []Event
	discarded []Discard
}

func (b *batcher) run(ctx context.Context, done <-chan struct{}) error {
	var (
		points = make([]sluice.Point, 0, b.size)
		taken  uint64
		ticker = time.NewTicker(b.interval)
	)
	defer ticker.Stop()

	flush := func() error {
		dropped := b.e.dropped.Swap(0)
		pos := b.e.covered(taken)
		events, discarded := b.e.events.take()
		if len(points) == 0 && pos == nil && dropped == 0 && len(events) == 0 && len(discarded) == 0 {
			return nil
		}
		out := &b.out
		*out = outBatch{points: points, dropped: dropped, pos: pos, events: events, discarded: discarded}
		if b.legacyFeed != "" {
			for _, ev := range events {
				out.points = append(out.points, EventPoint(b.legacyFeed, ev))
			}
			out.events, out.discarded = nil, nil
		}
		err := b.send(out)
		points = out.points
		*out = outBatch{}
		// send has serialised the points; the backing array can be reused.
		clear(points)
		points = points[:0]
		return err
	}
	take := func(p sluice.Point) error {
		points = append(points, p)
		taken++
		if len(points) >= b.size {
			return flush()
		}
		return nil
	}

	for {
		select {
		case p := <-b.e.queue:
			if err := take(p); err != nil {
				return err
			}
			// Take what else is queued now, up to a batch, with one
			// receive per point rather than a select over every channel.
		more:
			for range b.size {
				select {
				case p := <-b.e.queue:
					if err := take(p); err != nil {
						return err
					}
				default:
					break more
				}
			}
		case <-ticker.C:
			// A ticker rather than a per-batch timer: a partial batch
			// waits at most one interval, and idle checkpoints, drop
			// counts and events still reach the host.
			if err := flush(); err != nil {
				return err
			}
		case <-done:
			// The source has returned: drain what is queued, then stop.
			for {
				select {
				case p := <-b.e.queue:
					if err := take(p); err != nil {
						return err
					}
				default:
					return flush()
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventQueue holds the events and discard counts not yet sent. Its bound
// comes from coalescing, not dropping: see Emitter.Event.
type eventQueue struct {
	mu    sync.Mutex
	queue []Event
	// over holds the events coalesced since the queue filled, n how many
	// each stands for, and at their index by key.
	over []Event
	n    []int
	at   map[string]int

	discarded []Discard
	reasons   map[string]int // index in discarded
}

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) < maxQueuedEvents {
		q.queue = append(q.queue, ev)
		return
	}
	state := ev.Kind == EventStale || ev.Kind == EventLive
	key := "kind\x00" + string(ev.Kind)
	if state {
		key = "stream\x00" + ev.Symbol + "\x00" + ev.Stream
	}
	i, ok := q.at[key]
	if !ok && state && len(q.over) >= maxCoalesced {
		key, state = "kind\x00"+string(ev.Kind), false
		i, ok = q.at[key]
	}
	if !ok {
		if q.at == nil {
			q.at = make(map[string]int)
		}
		q.at[key] = len(q.over)
		q.over = append(q.over, ev)
		q.n = append(q.n, 1)
		return
	}
	q.n[i]++
	if state {
		// The newest state wins; a stream stale all along keeps the
		// first since.
		if prev := q.over[i]; prev.Kind == EventStale && ev.Kind == EventStale && prev.Since.Before(ev.Since) {
			ev.Since = prev.Since
		}
		q.over[i] = ev
		return
	}
	c := &q.over[i]
	c.Count += ev.Count
	if ev.FromID > 0 && (c.FromID == 0 || ev.FromID < c.FromID) {
		c.FromID = ev.FromID
	}
	c.ToID = max(c.ToID, ev.ToID)
	if c.Symbol != ev.Symbol {
		c.Symbol = ""
	}
	if c.Stream != ev.Stream {
		c.Stream = ""
	}
	c.Time = ev.Time
	c.Message = fmt.Sprintf("%d %s events coalesced while events came faster than the host took them; the last: %s", q.n[i], ev.Kind, ev.Message)
}

func (q *eventQueue) discard(reason string, n uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.reasons[reason]
	if !ok && len(q.discarded) >= maxDiscardReasons {
		reason = "other"
		i, ok = q.reasons[reason]
	}
	if !ok {
		if q.reasons == nil {
			q.reasons = make(map[string]int)
		}
		i = len(q.discarded)
		q.reasons[reason] = i
		q.discarded = append(q.discarded, Discard{Reason: reason})
	}
	q.discarded[i].Count += n
}

// take returns what is waiting, in order (queued, then coalesced), and
// empties the queue.
func (q *eventQueue) take() ([]Event, []Discard) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 && len(q.discarded) == 0 {
		return nil, nil
	}
	events := append(q.queue, q.over...)
	discarded := q.discarded
	q.queue, q.over, q.n, q.discarded = nil, nil, nil, nil
	clear(q.at)
	clear(q.reasons)
	return events, discarded
}

var _ Emitter = (*emitter)(nil)
