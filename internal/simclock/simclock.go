// Package simclock moves a simulator's manual clock (binancesim's, with
// Options.Manual) in real time, for end-to-end tests that start the
// market once the feed is connected and halt it before counting, so that
// every trade generated is one the feed had to deliver.
package simclock

import (
	"context"
	"sync"
	"time"
)

// step is how often the clock moves.
const step = 10 * time.Millisecond

// Driver moves a clock between Start and Stop. The zero Driver is
// stopped; it is safe for concurrent use.
type Driver struct {
	mu     sync.Mutex
	cancel context.CancelFunc // nil when stopped
	done   chan struct{}      // closed when the goroutine has returned
}

// Start calls advance every step with the wall time that passed since
// the last call, so that a late tick on a busy machine does not slow the
// simulation down. Starting a running Driver does nothing.
func (d *Driver) Start(advance func(time.Duration)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		tick := time.NewTicker(step)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				advance(now.Sub(last))
				last = now
			}
		}
	}()
}

// Stop stops the clock: advance is not called after it returns.
// Stopping a stopped Driver does nothing.
func (d *Driver) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.cancel = nil
}
