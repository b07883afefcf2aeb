package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/internal/logsample"
	"github.com/sluicehq/sluice/sinks"
)

// SinkState is what an output is doing, as shown in status.
type SinkState string

const (
	SinkOK       SinkState = "ok"
	SinkRetrying SinkState = "retrying" // transient write errors
	SinkFailed   SinkState = "failed"   // needs an operator (credentials, read-only disk); still buffering
	SinkStopped  SinkState = "stopped"
)

// ErrClosed is returned by Buffer.Append once the buffer is closed.
var ErrClosed = errors.New("buffer is closed")

// Clock is the time an output runs on; tests substitute their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Output feeds one sink from the disk buffer. A writer goroutine reads the
// entries routed to the sink from its cursor, cuts batches of at least
// cfg.BatchSize points (whole entries, so a batch may exceed it by less
// than one plugin batch), or whatever it has once cfg.FlushInterval has
// passed since the previous write began, and writes each until it
// succeeds, backing off between tries. Only then does the cursor move.
// So a sink idle for a flush interval writes a point at once, and under
// load writes at most once a flush interval (100 ms by default), each
// batch holding what arrived meanwhile: every write costs the sink a
// commit (SQLite: a transaction and an fsync), and writing whatever had
// arrived when the previous write ended cost 8–25 % more agent CPU per
// point at 10 000–80 000 points/s than every 100 ms (BENCHMARKS.md). With a FlushInterval of 0 a batch is whatever had
// arrived when the previous write ended. Bounds and the when_full policy
// are the buffer's (see Buffer.Append).
//
// Lifecycle: NewOutput has no side effects; Start launches the writer;
// Close drains what is buffered within its deadline and stops, and is
// idempotent. What is not written by then stays in the buffer for the
// next start.
type Output struct {
	name  string
	sink  sinks.Sink
	cfg   config.Pipeline
	cur   *SinkCursor
	log   *slog.Logger
	clock Clock

	sinkMu sync.Mutex // a sink is driven by one goroutine at a time

	closeCh chan struct{}
	cancel  context.CancelFunc // hard stop of the writer
	done    chan struct{}
	mu      sync.Mutex
	started bool
	once    sync.Once

	stats outputStats

	// The writer's own: a sink that skips points skips every batch while
	// its cause lasts, so their log line is spaced (skipLogEvery) and
	// says how many were skipped since the previous one.
	skipLog      *logsample.Sampler
	skipUnlogged uint64
}

// skipLogEvery spaces the lines that say a sink skipped points; the
// counters see every point.
const skipLogEvery = 10 * time.Second

type outputStats struct {
	written, batches, retries  atomic.Uint64
	droppedRejected, undecoded atomic.Uint64
	droppedSkipped             atomic.Uint64
	corrupt                    atomic.Uint64 // buffer records skipped; their point count is unknown
	mu                         sync.Mutex
	state                      SinkState
	lastErr                    string
	lastWrite                  time.Time
	writeStarted               time.Time // zero unless a sink Write is in progress
}

// NewOutput returns an output for sink reading from cur; clock may be nil
// for wall time. log should already carry the sink's name.
func NewOutput(name string, sink sinks.Sink, cfg config.Pipeline, cur *SinkCursor, log *slog.Logger, clock Clock) *Output {
	if clock == nil {
		clock = wallClock{}
	}
	o := &Output{
		name: name, sink: sink, cfg: cfg, cur: cur, log: log, clock: clock,
		closeCh: make(chan struct{}),
		done:    make(chan struct{}),
		skipLog: logsample.New(skipLogEvery, clock.Now),
	}
	o.stats.state = SinkOK
	return o
}

// Name is the sink's configured name.
func (o *Output) Name() string { return o.name }

// Sink is the sink this output writes to.
func (o *Output) Sink() sinks.Sink { return o.sink }

// Declare passes a feed's measurements to the sink, between writes.
func (o *Output) Declare(ctx context.Context, ms []sluice.Measurement) error {
	o.sinkMu.Lock()
	defer o.sinkMu.Unlock()
	if err := o.sink.Declare(ctx, ms); err != nil {
		return fmt.Errorf("sink %s: declare: %w", o.name, err)
	}
	return nil
}

// Start launches the writer goroutine.
func (o *Output) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	o.mu.Lock()
	o.cancel, o.started = cancel, true
	o.mu.Unlock()
	go func() {
		defer close(o.done)
		o.writeLoop(ctx)
	}()
}

func (o *Output) closing() bool {
	select {
	case <-o.closeCh:
		return true
	default:
		return false
	}
}

func (o *Output) writeLoop(ctx context.Context) {
	defer o.setState(SinkStopped, "")
	bo := backoff.New(backoff.Policy{Initial: o.cfg.RetryInitial, Max: o.cfg.RetryMax})

	// A batch that drop_oldest kept apart before a restart is older than
	// anything in the log: it goes first.
	if kept, err := o.cur.keptApart(); err != nil {
		o.log.Error("cannot read the batch kept apart; it stays on disk", "error", err)
	} else if len(kept) > 0 {
		if !o.write(ctx, kept, bo) {
			return
		}
		if err := o.cur.commitKept(); err != nil {
			o.log.Error("cannot remove the written batch kept apart; it may be written again after a restart", "error", err)
		}
	}

	// open (re)opens the reader at the sink's read position, retrying
	// with backoff until it can or the hard stop: an output that gave up
	// would leave its sink unwritten until the agent restarts.
	var r *wal.Reader
	open := func(pause bool) bool {
		if r != nil {
			r.Close()
			r = nil
		}
		for {
			if pause && o.sleep(ctx, bo.Next()) != nil {
				return false
			}
			var err error
			if r, err = o.cur.reader(); err == nil {
				return true
			}
			o.log.Error("cannot read the buffer; trying again", "error", err)
			pause = true
		}
	}
	if !open(false) {
		return
	}
	defer func() {
		if r != nil {
			r.Close()
		}
	}()

	var (
		batch     []sluice.Point
		marks     []entryMark // one per entry taken since the last commit
		lastWrite time.Time   // when the previous write began
	)
	commit := func() {
		if err := o.cur.commit(marks); err != nil {
			o.log.Error("cannot save the buffer cursor; the batch may be written again after a restart", "error", err)
		}
		clear(batch)
		batch, marks = batch[:0], marks[:0]
	}
	for {
		wake := o.cur.notify() // before reading, so no append is missed
		for len(batch) < o.cfg.BatchSize {
			idx, payload, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, wal.ErrCorrupt) {
				// The disk changed the record after it was written: skip
				// it, count it, read on.
				o.stats.corrupt.Add(1)
				o.log.Error("buffer record corrupt on disk; skipped", "error", err)
				o.cur.take(r.NextIndex())
				if !open(false) {
					return
				}
				continue
			}
			if err != nil {
				// The log changed under the reader (a segment removed):
				// reopen at the cursor after a pause.
				o.log.Error("reading the buffer failed; reopening", "error", err)
				if !open(true) {
					return
				}
				continue
			}
			if !o.cur.take(idx) {
				continue // drop_oldest dropped it
			}
			h, err := parseEntryHeader(payload)
			if err != nil {
				o.stats.undecoded.Add(1)
				o.log.Error("buffer entry cannot be decoded; skipped", "index", idx, "error", err)
				continue
			}
			m := entryMark{idx: idx, feed: h.Feed, pos: positionAt{Seq: h.Seq, Position: h.Position}, points: h.NPoints}
			marks = append(marks, m)
			ps, err := o.cur.points(idx, &h)
			if err != nil {
				o.stats.undecoded.Add(uint64(h.NPoints))
				o.log.Error("buffer entry cannot be decoded; skipped", "index", idx, "error", err)
				continue
			}
			batch = append(batch, ps...)
		}

		closing := o.closing()
		now := o.clock.Now()
		due := len(batch) >= o.cfg.BatchSize ||
			(len(batch) > 0 && (closing || !now.Before(lastWrite.Add(o.cfg.FlushInterval))))
		if due {
			lastWrite = now
			if !o.write(ctx, batch, bo) {
				return // hard stop: the batch stays in the buffer
			}
			commit()
			continue
		}
		if len(batch) == 0 && (len(marks) > 0 || o.cur.uncommitted()) {
			// Entries without points (a position only, or skipped) were
			// passed: let the cursor move so their segments can go.
			commit()
		}
		if closing && len(batch) == 0 {
			return
		}
		var timer <-chan time.Time
		if len(batch) > 0 {
			timer = o.clock.After(lastWrite.Add(o.cfg.FlushInterval).Sub(now))
		}
		select {
		case <-wake:
		case <-timer:
		case <-o.closeCh:
		case <-ctx.Done():
			return
		}
	}
}

func (o *Output) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-o.clock.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write writes one batch until it succeeds or is rejected. It returns
// false only when ctx ends first (a hard stop).
func (o *Output) write(ctx context.Context, batch []sluice.Point, bo *backoff.Backoff) bool {
	for {
		o.sinkMu.Lock()
		o.stats.mu.Lock()
		o.stats.writeStarted = o.clock.Now()
		o.stats.mu.Unlock()
		err := o.sink.Write(ctx, batch)
		o.stats.mu.Lock()
		o.stats.writeStarted = time.Time{}
		o.stats.mu.Unlock()
		o.sinkMu.Unlock()
		if stored, rejected, skipped, settled := sinks.Split(err, len(batch)); settled {
			if rejected > 0 {
				o.stats.droppedRejected.Add(uint64(rejected))
				var rej *sinks.RejectedError
				errors.As(err, &rej)
				o.log.Warn("sink rejected points", "rejected", rejected, "sample", rej.Sample, "error", rej.Err)
			}
			if skipped > 0 {
				o.skipped(skipped, err)
			}
			o.wrote(stored)
			bo.Reset()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		o.stats.retries.Add(1)
		var wait time.Duration
		state := SinkRetrying
		if after, ok := sinks.AsRetryAfter(err); ok {
			wait = after
		} else if sinks.IsFailed(err) {
			state, wait = SinkFailed, o.cfg.RetryMax
		} else {
			wait = bo.Next()
		}
		if o.setState(state, err.Error()) {
			o.log.Error("sink write failed; retrying, points stay buffered", "state", state, "error", err, "retry_in", wait)
		} else {
			o.log.Debug("sink write failed again", "error", err, "retry_in", wait)
		}
		select {
		case <-o.clock.After(wait):
		case <-ctx.Done():
			return false
		}
	}
}

// skipped counts n points the sink skipped on purpose (err: its
// *sinks.SkippedError), logging at most once per skipLogEvery.
func (o *Output) skipped(n int, err error) {
	total := o.stats.droppedSkipped.Add(uint64(n))
	o.skipUnlogged += uint64(n)
	if !o.skipLog.Allow("skipped") {
		return
	}
	var skip *sinks.SkippedError
	errors.As(err, &skip)
	o.log.Warn("sink skipped points on purpose; they are not retried",
		"skipped", o.skipUnlogged, "skipped_total", total, "error", skip.Err)
	o.skipUnlogged = 0
}

// wrote ends a write that stored n points of its batch (the others
// rejected or skipped): the cursor moves on, so the sink is ok again.
func (o *Output) wrote(n int) {
	o.stats.written.Add(uint64(n))
	o.stats.batches.Add(1)
	o.stats.mu.Lock()
	recovered := o.stats.state != SinkOK
	o.stats.state = SinkOK
	if n > 0 {
		o.stats.lastWrite = o.clock.Now()
	}
	o.stats.mu.Unlock()
	if recovered {
		o.log.Info("sink writing again")
	}
}

// setState records the state and error, reporting whether the state changed.
func (o *Output) setState(s SinkState, errMsg string) bool {
	o.stats.mu.Lock()
	defer o.stats.mu.Unlock()
	changed := o.stats.state != s
	o.stats.state = s
	if errMsg != "" {
		o.stats.lastErr = errMsg
	}
	return changed
}

// Close drains the sink's share of the buffer into the sink. Feeds must be
// stopped first. If ctx ends before the drain completes, the writer stops
// and what is left stays in the buffer for the next start; the error says
// how much.
func (o *Output) Close(ctx context.Context) error {
	var err error
	o.once.Do(func() {
		close(o.closeCh)
		o.mu.Lock()
		started := o.started
		o.mu.Unlock()
		if !started {
			return
		}
		select {
		case <-o.done:
		case <-ctx.Done():
			o.cancel()
			<-o.done
		}
		o.cancel()
		if st := o.cur.status(); st.PendingPoints > 0 {
			err = fmt.Errorf("sink %s: %d points not written before the shutdown deadline; they stay buffered for the next start", o.name, st.PendingPoints)
		}
	})
	return err
}

// OutputStatus is a snapshot of an output's counters and state.
type OutputStatus struct {
	Name           string            `json:"name"`
	State          SinkState         `json:"state"`
	BufferedPoints int64             `json:"buffered_points"` // routed here and not yet written
	BufferedBytes  int64             `json:"buffered_bytes"`  // of entries not yet written: what max_bytes bounds
	DiskBytes      int64             `json:"disk_bytes"`      // the sink's share of the buffer on disk
	MaxBytes       int64             `json:"max_bytes"`
	WhenFull       config.WhenFull   `json:"when_full"`
	Received       uint64            `json:"received"`
	Written        uint64            `json:"written"`
	Batches        uint64            `json:"batches"`
	Retries        uint64            `json:"retries"`
	Dropped        map[Reason]uint64 `json:"dropped"`
	CorruptRecords uint64            `json:"corrupt_records,omitempty"` // buffer records lost to disk corruption
	LastError      string            `json:"last_error,omitempty"`
	LastWrite      time.Time         `json:"last_write,omitzero"`
	// WriteStarted is when the sink Write in progress began (zero when
	// none is): a write that never returns is a hung sink.
	WriteStarted time.Time `json:"write_started,omitzero"`
}

// Status returns a snapshot.
func (o *Output) Status() OutputStatus {
	buf := o.cur.status()
	o.stats.mu.Lock()
	defer o.stats.mu.Unlock()
	return OutputStatus{
		Name: o.name, State: o.stats.state,
		BufferedPoints: buf.PendingPoints, BufferedBytes: buf.PendingBytes, DiskBytes: buf.DiskBytes, MaxBytes: buf.MaxBytes,
		WhenFull: o.cfg.WhenFull,
		Received: buf.Appended, Written: o.stats.written.Load(),
		Batches: o.stats.batches.Load(), Retries: o.stats.retries.Load(),
		Dropped: map[Reason]uint64{
			ReasonBufferFull:  buf.DroppedFull,
			ReasonRejected:    o.stats.droppedRejected.Load(),
			ReasonSkipped:     o.stats.droppedSkipped.Load(),
			ReasonUndecodable: o.stats.undecoded.Load(),
		},
		CorruptRecords: o.stats.corrupt.Load(),
		LastError:      o.stats.lastErr, LastWrite: o.stats.lastWrite,
		WriteStarted: o.stats.writeStarted,
	}
}
