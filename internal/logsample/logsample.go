// Package logsample throttles repeated log lines: counters see every
// event, the log sees one line per kind per interval, so a flood of bad
// frames cannot flood the journal.
package logsample

import (
	"sync"
	"time"
)

// Sampler decides whether a line of some kind may be logged now. The zero
// value is not usable; use New. It is safe for concurrent use.
type Sampler struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
}

// New returns a Sampler allowing one line per kind per every; now may be
// nil for the wall clock.
func New(every time.Duration, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{every: every, now: now, last: make(map[string]time.Time)}
}

// Allow reports whether a line of this kind may be logged, and if so
// starts its interval.
func (s *Sampler) Allow(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if last, ok := s.last[kind]; ok && now.Sub(last) < s.every {
		return false
	}
	s.last[kind] = now
	return true
}
