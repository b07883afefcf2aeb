package backoff

import (
	"testing"
	"time"
)

func TestNextGrowsCapsAndResets(t *testing.T) {
	for _, r := range []float64{0, 0.999999} {
		b := New(Policy{Initial: 100 * time.Millisecond, Max: time.Second})
		b.rand = func() float64 { return r }
		nominal := []time.Duration{100, 200, 400, 800, 1000, 1000}
		for i, n := range nominal {
			n *= time.Millisecond
			got := b.Next()
			if got < n/2 || got > n {
				t.Fatalf("rand=%v attempt %d: %v, want within [%v, %v]", r, i, got, n/2, n)
			}
		}
		if b.Attempts() != len(nominal) {
			t.Fatalf("attempts = %d", b.Attempts())
		}
		b.Reset()
		if got := b.Next(); got > 100*time.Millisecond {
			t.Fatalf("after reset: %v, want at most the initial delay", got)
		}
	}
}

func TestJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		b := New(Policy{Initial: time.Second, Max: time.Minute})
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("20 first delays took only %d distinct values; jitter is missing", len(seen))
	}
}
