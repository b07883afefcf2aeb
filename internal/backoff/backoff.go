// Package backoff computes capped exponential backoff with jitter, the one
// retry pacing that the agent (sink retries, plugin restarts) and plugins
// (reconnects) share.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a backoff shape: the first delay, the cap, and the growth
// factor (2 when zero).
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
}

// Backoff hands out successive delays. The zero value is not usable; use
// New. It is not safe for concurrent use.
type Backoff struct {
	p       Policy
	attempt int
	rand    func() float64 // in [0,1); injectable for tests
}

// New returns a Backoff following p.
func New(p Policy) *Backoff {
	if p.Multiplier <= 1 {
		p.Multiplier = 2
	}
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return &Backoff{p: p, rand: rand.Float64}
}

// Next returns the delay before the next attempt. The nominal delay is
// Initial·Multiplier^attempts, capped at Max; the result is drawn from its
// upper half ("equal jitter") so that restarts of many feeds spread out
// while each still waits at least half the nominal delay.
func (b *Backoff) Next() time.Duration {
	d := float64(b.p.Initial)
	for i := 0; i < b.attempt && d < float64(b.p.Max); i++ {
		d *= b.p.Multiplier
	}
	d = min(d, float64(b.p.Max))
	b.attempt++
	return time.Duration(d/2 + b.rand()*d/2)
}

// Attempts is the number of delays handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset starts again from Initial, after a success or a healthy period.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits d, or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
