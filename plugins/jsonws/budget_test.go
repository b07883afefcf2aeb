package jsonws

import (
	"testing"
	"time"
)

func TestBudgetSlidingWindow(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	b := newBudget(3, time.Minute)
	for _, step := range []struct {
		sec  int
		want bool
	}{
		{0, true}, {10, true}, {20, true},
		{30, false}, // 3 within the last minute
		{59, false},
		{60, true},  // the event at 0 has left the window
		{65, false}, // 10, 20 and 60 are within it
		{70, true},  // 10 has left
		{200, true}, {201, true}, {202, true}, {203, false},
	} {
		if got := b.take(at(step.sec)); got != step.want {
			t.Fatalf("take at %ds = %v, want %v", step.sec, got, step.want)
		}
	}
	if len(b.times) > 3 {
		t.Errorf("budget keeps %d timestamps for a budget of 3", len(b.times))
	}
	unlimited := newBudget(-1, time.Minute)
	for i := range 1000 {
		if !unlimited.take(at(0)) {
			t.Fatalf("unlimited budget refused event %d", i)
		}
	}
}
