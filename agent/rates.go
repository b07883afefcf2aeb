package agent

import (
	"context"
	"sync"
	"time"
)

// Rates in status are averaged over rateWindow, from counters sampled
// every rateSampleEvery.
const (
	rateSampleEvery = 2 * time.Second
	rateWindow      = 10 * time.Second
)

// rateTracker turns growing counters into per-second rates over a
// sliding window. Keys that stop being sampled are forgotten.
type rateTracker struct {
	mu     sync.Mutex
	window time.Duration
	series map[string][]rateSample
}

type rateSample struct {
	at time.Time
	v  uint64
}

func newRateTracker(window time.Duration) *rateTracker {
	return &rateTracker{window: window, series: make(map[string][]rateSample)}
}

// sample records each counter's value at now.
func (r *rateTracker) sample(now time.Time, values map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.series {
		if _, ok := values[k]; !ok {
			delete(r.series, k)
		}
	}
	for k, v := range values {
		s := r.series[k]
		if n := len(s); n > 0 && v < s[n-1].v {
			s = s[:0] // the counter restarted (a feed removed and added again)
		}
		s = append(s, rateSample{at: now, v: v})
		// Keep the newest sample at or before the window's start, so the
		// rate covers the whole window once there is enough history.
		drop := 0
		for drop+1 < len(s) && !s[drop+1].at.After(now.Add(-r.window)) {
			drop++
		}
		r.series[k] = append(s[:0], s[drop:]...)
	}
}

// rate is the counter's growth per second over the window, 0 when not
// known yet.
func (r *rateTracker) rate(key string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.series[key]
	if len(s) < 2 {
		return 0
	}
	first, last := s[0], s[len(s)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.v-first.v) / dt
}

// sampleRates samples counters into r every rateSampleEvery, the first
// time at once, until ctx ends.
func sampleRates(ctx context.Context, r *rateTracker, counters func() map[string]uint64) {
	t := time.NewTicker(rateSampleEvery)
	defer t.Stop()
	for {
		r.sample(time.Now(), counters())
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
