package sdktest

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Recorder is an sdk.Emitter that keeps everything a source hands it, in
// memory, for unit tests of Run without the gRPC boundary. Nothing is
// dropped and nothing blocks; it is safe for concurrent use. The zero
// value is ready to use.
type Recorder struct {
	mu        sync.Mutex
	points    []sluice.Point
	pos       sluice.Position
	covered   int // points the last position covers
	events    []sdk.Event
	discarded map[string]uint64
	recovered int
	changed   chan struct{} // closed and replaced at every change
}

// Emit records p.
func (r *Recorder) Emit(p sluice.Point) bool {
	r.change(func() { r.points = append(r.points, p) })
	return true
}

// EmitWithin records p.
func (r *Recorder) EmitWithin(_ context.Context, p sluice.Point, _ time.Duration) bool {
	return r.Emit(p)
}

// EmitWait records p, unless ctx has ended.
func (r *Recorder) EmitWait(ctx context.Context, p sluice.Point) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Emit(p)
	return nil
}

// Checkpoint records pos as covering every point recorded so far.
func (r *Recorder) Checkpoint(pos sluice.Position) {
	r.change(func() { r.pos, r.covered = pos, len(r.points) })
}

// Recovered counts the calls.
func (r *Recorder) Recovered() { r.change(func() { r.recovered++ }) }

// Event records ev; a zero Time is now, as the SDK's emitter has it.
func (r *Recorder) Event(ev sdk.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.change(func() { r.events = append(r.events, ev) })
}

// Stale records an sdk.EventStale.
func (r *Recorder) Stale(stream string, since time.Time) {
	r.Event(sdk.Event{Kind: sdk.EventStale, Stream: stream, Since: since})
}

// Live records an sdk.EventLive.
func (r *Recorder) Live(stream string) { r.Event(sdk.Event{Kind: sdk.EventLive, Stream: stream}) }

// Discarded adds n to reason's count.
func (r *Recorder) Discarded(reason string, n uint64) {
	r.change(func() {
		if r.discarded == nil {
			r.discarded = map[string]uint64{}
		}
		r.discarded[reason] += n
	})
}

// Points returns the points recorded so far.
func (r *Recorder) Points() []sluice.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sluice.Point(nil), r.points...)
}

// Position returns the last position recorded and how many of the
// points it covers.
func (r *Recorder) Position() (sluice.Position, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos, r.covered
}

// Events returns the events recorded so far.
func (r *Recorder) Events() []sdk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.Event(nil), r.events...)
}

// Discards returns the discard counts by reason.
func (r *Recorder) Discards() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.discarded)
}

// Recoveries is how many times Recovered was called.
func (r *Recorder) Recoveries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recovered
}

// Wait waits until cond returns true, or ctx ends (its error is
// returned). cond is called once now and again after each change; it may
// call the recorder's methods.
func (r *Recorder) Wait(ctx context.Context, cond func() bool) error {
	for {
		r.mu.Lock()
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed // taken before cond looks: no change is missed
		r.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitPoints waits until at least n points are recorded and returns them.
func (r *Recorder) WaitPoints(ctx context.Context, n int) ([]sluice.Point, error) {
	var ps []sluice.Point
	err := r.Wait(ctx, func() bool {
		ps = r.Points()
		return len(ps) >= n
	})
	return ps, err
}

func (r *Recorder) change(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

var _ sdk.Emitter = (*Recorder)(nil)
