package synth

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	type step struct {
		at   time.Time
		due  uint64
		next time.Time // after the call
	}
	for _, tc := range []struct {
		name  string
		rate  float64
		steps []step
	}{
		{"4000/s in 5ms ticks", 4000, []step{
			{ms(0), 0, ms(0.25)},
			{ms(5), 20, ms(5.25)},
			{ms(10), 20, ms(10.25)},
			{ms(10.2), 0, ms(10.25)},
			{ms(1000), 3960, ms(1000.25)},
		}},
		{"100000/s", 100000, []step{
			{ms(5), 500, ms(5.01)},
			{ms(2005), 100000, ms(2005.01)}, // a second's worth at most; the rest is let go
			{ms(2010), 500, ms(2010.01)},
		}},
		{"5/s, one point per 200ms", 5, []step{
			{ms(5), 0, ms(200)},
			{ms(199.999), 0, ms(200)},
			{ms(200), 1, ms(400)},
			{ms(400), 1, ms(600)},
			{ms(1000), 3, ms(1200)},
		}},
		{"3/s: next is never before the point is due", 3, []step{
			{ms(333.333334), 1, ms(666.666667)},
			{ms(666.666667), 1, ms(1000)},
			{ms(1000), 1, ms(1333.333334)},
		}},
		{"1/s", 1, []step{
			{ms(999), 0, ms(1000)},
			{ms(1000), 1, ms(2000)},
			{ms(60_000), 1, ms(61_000)}, // a host that held the source up a minute gets one point, not sixty
		}},
		{"below 1/s", 0.5, []step{
			{ms(1000), 0, ms(2000)},
			{ms(2000), 1, ms(4000)},
		}},
		{"a clock before the start", 10, []step{
			{ms(-50), 0, ms(100)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer(tc.rate, t0)
			for i, s := range tc.steps {
				if got := p.due(s.at); got != s.due {
					t.Errorf("step %d: due at %s = %d, want %d", i, s.at.Sub(t0), got, s.due)
				}
				if got := p.next(); !got.Equal(s.next) {
					t.Errorf("step %d: next %s, want %s", i, got.Sub(t0), s.next.Sub(t0))
				}
			}
		})
	}
}
