package jsonws

import "time"

// budget allows at most n events in any sliding window; n < 0 means no
// limit. It keeps at most n timestamps. Time is passed in so tests need no
// clock.
type budget struct {
	n      int
	window time.Duration
	times  []time.Time // ascending, within the window
}

func newBudget(n int, window time.Duration) *budget {
	return &budget{n: n, window: window}
}

// take records an event at now and reports whether it was within budget.
// An event over budget is not recorded.
func (b *budget) take(now time.Time) bool {
	if b.n < 0 {
		return true
	}
	cut := 0
	for cut < len(b.times) && now.Sub(b.times[cut]) >= b.window {
		cut++
	}
	b.times = append(b.times[:0], b.times[cut:]...)
	if len(b.times) >= b.n {
		return false
	}
	b.times = append(b.times, now)
	return true
}
