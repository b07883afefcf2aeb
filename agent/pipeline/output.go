package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk/backoff"
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

// ErrClosed is returned by Enqueue once the output is closing.
var ErrClosed = errors.New("output is closing")

// Clock is the time an output runs on; tests substitute their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Output feeds one sink. Points are buffered in memory up to
// cfg.BufferSize (plus one batch in flight); when the buffer is full the
// cfg.WhenFull policy decides: block the feeds, drop the oldest buffered
// points, or drop the incoming ones. A writer goroutine cuts batches of
// cfg.BatchSize points, or whatever is buffered once cfg.FlushInterval has
// passed, and writes each until it succeeds, backing off between tries.
//
// Lifecycle: NewOutput has no side effects; Start launches the writer;
// Enqueue may be called from many goroutines; Close drains and stops and is
// idempotent.
type Output struct {
	name  string
	sink  sinks.Sink
	cfg   config.Pipeline
	log   *slog.Logger
	clock Clock

	sinkMu sync.Mutex // a sink is driven by one goroutine at a time

	mu       sync.Mutex
	buf      ring
	inflight int       // points cut into the batch being written
	oldestAt time.Time // when the oldest buffered point arrived
	closing  bool
	space    chan struct{} // signalled when points leave the buffer
	avail    chan struct{} // signalled when points enter it
	closeCh  chan struct{}

	cancel  context.CancelFunc // hard stop of the writer
	done    chan struct{}
	started bool
	once    sync.Once

	stats outputStats
}

type outputStats struct {
	received, written, batches, retries atomic.Uint64
	droppedFull, droppedRejected        atomic.Uint64
	droppedShutdown                     atomic.Uint64
	mu                                  sync.Mutex
	state                               SinkState
	lastErr                             string
	lastWrite                           time.Time
}

// NewOutput returns an output for sink; clock may be nil for wall time.
// log should already carry the sink's name.
func NewOutput(name string, sink sinks.Sink, cfg config.Pipeline, log *slog.Logger, clock Clock) *Output {
	if clock == nil {
		clock = wallClock{}
	}
	o := &Output{
		name: name, sink: sink, cfg: cfg, log: log, clock: clock,
		space:   make(chan struct{}, 1),
		avail:   make(chan struct{}, 1),
		closeCh: make(chan struct{}),
		done:    make(chan struct{}),
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

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Enqueue adds points to the buffer under the when_full policy. It blocks
// only under the block policy, until there is room or ctx ends (then it
// returns ctx.Err() with the rest of the points not taken).
func (o *Output) Enqueue(ctx context.Context, points []sluice.Point) error {
	o.stats.received.Add(uint64(len(points)))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		o.stats.droppedShutdown.Add(uint64(len(points)))
		return ErrClosed
	}
	for i := 0; i < len(points); {
		if o.buf.len() == 0 {
			o.oldestAt = o.clock.Now()
		}
		if o.buf.len() < o.cfg.BufferSize {
			o.buf.push(points[i])
			i++
			continue
		}
		switch o.cfg.WhenFull {
		case config.DropNewest:
			o.stats.droppedFull.Add(uint64(len(points) - i))
			signal(o.avail)
			return nil
		case config.DropOldest:
			o.buf.popFront()
			o.stats.droppedFull.Add(1)
		default: // block
			signal(o.avail)
			o.mu.Unlock()
			select {
			case <-o.space:
				o.mu.Lock()
			case <-ctx.Done():
				o.mu.Lock()
				return ctx.Err()
			}
			if o.closing {
				o.stats.droppedShutdown.Add(uint64(len(points) - i))
				return ErrClosed
			}
		}
	}
	signal(o.avail)
	return nil
}

// cut waits until a batch is due and takes it from the buffer. It returns
// nil when the output is closing and the buffer is empty, or ctx ends.
func (o *Output) cut(ctx context.Context, batch []sluice.Point) []sluice.Point {
	for {
		o.mu.Lock()
		n, closing := o.buf.len(), o.closing
		due := n >= o.cfg.BatchSize || (n > 0 && (closing || !o.clock.Now().Before(o.oldestAt.Add(o.cfg.FlushInterval))))
		if due {
			batch = o.buf.popInto(batch, o.cfg.BatchSize)
			o.inflight = len(batch)
			if o.buf.len() > 0 {
				o.oldestAt = o.clock.Now()
			}
			o.mu.Unlock()
			signal(o.space)
			return batch
		}
		var wait <-chan time.Time
		if n > 0 {
			wait = o.clock.After(o.oldestAt.Add(o.cfg.FlushInterval).Sub(o.clock.Now()))
		}
		o.mu.Unlock()
		if closing && n == 0 {
			return nil
		}
		select {
		case <-o.avail:
		case <-wait:
		case <-o.closeCh:
		case <-ctx.Done():
			return nil
		}
	}
}

func (o *Output) writeLoop(ctx context.Context) {
	var batch []sluice.Point
	bo := backoff.New(backoff.Policy{Initial: o.cfg.RetryInitial, Max: o.cfg.RetryMax})
	for {
		batch = o.cut(ctx, batch[:0])
		if len(batch) == 0 {
			o.setState(SinkStopped, "")
			return
		}
		ok := o.write(ctx, batch, bo)
		o.mu.Lock()
		o.inflight = 0
		o.mu.Unlock()
		if !ok {
			o.stats.droppedShutdown.Add(uint64(len(batch)))
			o.setState(SinkStopped, "")
			return
		}
		clear(batch)
	}
}

// write writes one batch until it succeeds or is rejected. It returns
// false only when ctx ends first (a hard stop).
func (o *Output) write(ctx context.Context, batch []sluice.Point, bo *backoff.Backoff) bool {
	for {
		o.sinkMu.Lock()
		err := o.sink.Write(ctx, batch)
		o.sinkMu.Unlock()
		var rejected *sinks.RejectedError
		switch {
		case err == nil:
			o.wrote(len(batch))
			bo.Reset()
			return true
		case errors.As(err, &rejected):
			o.stats.droppedRejected.Add(uint64(rejected.Rejected))
			o.wrote(len(batch) - rejected.Rejected)
			o.log.Warn("sink rejected points", "rejected", rejected.Rejected, "sample", rejected.Sample, "error", rejected.Err)
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

func (o *Output) wrote(n int) {
	o.stats.written.Add(uint64(n))
	o.stats.batches.Add(1)
	o.stats.mu.Lock()
	recovered := o.stats.state != SinkOK
	o.stats.state, o.stats.lastWrite = SinkOK, o.clock.Now()
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

// Close stops taking points and drains the buffer into the sink. If ctx
// ends first, the writer is stopped hard and what is left is counted as
// dropped for shutdown; the error says how many.
func (o *Output) Close(ctx context.Context) error {
	var err error
	o.once.Do(func() {
		o.mu.Lock()
		o.closing = true
		started := o.started
		o.mu.Unlock()
		close(o.closeCh)
		signal(o.space) // wake a blocked Enqueue so it sees closing
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
		o.mu.Lock()
		left := o.buf.len()
		for o.buf.len() > 0 {
			o.buf.popFront()
		}
		o.mu.Unlock()
		if left > 0 {
			o.stats.droppedShutdown.Add(uint64(left))
		}
		if n := o.stats.droppedShutdown.Load(); n > 0 {
			err = fmt.Errorf("sink %s: %d points not written before the shutdown deadline", o.name, n)
		}
	})
	return err
}

// OutputStatus is a snapshot of an output's counters and state.
type OutputStatus struct {
	Name      string            `json:"name"`
	State     SinkState         `json:"state"`
	Buffered  int               `json:"buffered"` // waiting, including the batch being written
	Capacity  int               `json:"capacity"`
	WhenFull  config.WhenFull   `json:"when_full"`
	Received  uint64            `json:"received"`
	Written   uint64            `json:"written"`
	Batches   uint64            `json:"batches"`
	Retries   uint64            `json:"retries"`
	Dropped   map[Reason]uint64 `json:"dropped"`
	LastError string            `json:"last_error,omitempty"`
	LastWrite time.Time         `json:"last_write,omitzero"`
}

// Status returns a snapshot.
func (o *Output) Status() OutputStatus {
	o.mu.Lock()
	buffered := o.buf.len() + o.inflight
	o.mu.Unlock()
	o.stats.mu.Lock()
	defer o.stats.mu.Unlock()
	return OutputStatus{
		Name: o.name, State: o.stats.state,
		Buffered: buffered, Capacity: o.cfg.BufferSize, WhenFull: o.cfg.WhenFull,
		Received: o.stats.received.Load(), Written: o.stats.written.Load(),
		Batches: o.stats.batches.Load(), Retries: o.stats.retries.Load(),
		Dropped: map[Reason]uint64{
			ReasonBufferFull: o.stats.droppedFull.Load(),
			ReasonRejected:   o.stats.droppedRejected.Load(),
			ReasonShutdown:   o.stats.droppedShutdown.Load(),
		},
		LastError: o.stats.lastErr, LastWrite: o.stats.lastWrite,
	}
}
