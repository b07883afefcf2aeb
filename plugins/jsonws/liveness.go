package jsonws

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// liveness says whether the feed is stale: no data (a message a rule
// matched, an alive rule included) for stale_after, whether connected or
// not. It reports the feed stale once per silence (sdk.EventStale, for
// the feed as a whole) and live again at the next data (sdk.EventLive);
// the agent shows the feed stale in between.
//
// Lifecycle: newLiveness, then watch runs on its own goroutine until its
// ctx ends; data and markStale may be called from any goroutine.
type liveness struct {
	after time.Duration // 0: never stale
	now   func() time.Time
	out   sdk.Emitter
	log   *slog.Logger

	last  atomic.Int64 // Unix ns of the last data, or of the start
	stale atomic.Bool  // reported stale and not live again

	mu    sync.Mutex // orders the reports
	since time.Time  // the last data before the current silence
}

func newLiveness(after time.Duration, now func() time.Time, out sdk.Emitter, log *slog.Logger) *liveness {
	l := &liveness{after: after, now: now, out: out, log: log}
	l.last.Store(now().UnixNano())
	return l
}

// data records a message that proves the feed alive, received at t.
func (l *liveness) data(t time.Time) {
	if l == nil {
		return
	}
	l.last.Store(t.UnixNano())
	// After the store: a markStale that missed it has set stale first,
	// and is seen here.
	if !l.stale.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stale.Load() {
		return
	}
	l.stale.Store(false)
	silent := t.Sub(l.since).Round(time.Millisecond)
	l.log.Info("feed live again", "silent", silent.String())
	l.out.Event(sdk.Event{Kind: sdk.EventLive, Time: t, Message: fmt.Sprintf("data again after %v", silent)})
}

// markStale reports the feed stale with msg, unless it is already or has
// had data within stale_after.
func (l *liveness) markStale(msg string) {
	if l == nil || l.after <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale.Load() {
		return
	}
	// Before reading last: a data that this read misses sees it.
	l.stale.Store(true)
	now := l.now()
	last := time.Unix(0, l.last.Load())
	if now.Sub(last) < l.after {
		l.stale.Store(false)
		return
	}
	l.since = last
	l.log.Warn("feed stale", "since", last.UTC().Format(time.RFC3339), "stale_after", l.after.String())
	l.out.Event(sdk.Event{Kind: sdk.EventStale, Time: now, Since: last, Message: msg})
}

// watch reports the feed stale once it has had no data for stale_after,
// until ctx ends.
func (l *liveness) watch(ctx context.Context) {
	if l.after <= 0 {
		return
	}
	t := time.NewTimer(l.after)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wait := l.after
		if !l.stale.Load() {
			due := time.Unix(0, l.last.Load()).Add(l.after)
			if d := due.Sub(l.now()); d > 0 {
				wait = d
			} else {
				l.markStale(fmt.Sprintf("stale: no data for %s", l.after))
			}
		}
		t.Reset(wait)
	}
}
