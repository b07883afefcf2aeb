package logsample

import (
	"testing"
	"time"
)

func TestAllowOncePerKindPerInterval(t *testing.T) {
	now := time.Unix(0, 0)
	s := New(10*time.Second, func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		kind    string
		want    bool
	}{
		{0, "gap", true},
		{time.Second, "gap", false},
		{0, "stale", true}, // kinds are independent
		{9 * time.Second, "gap", true},
		{5 * time.Second, "gap", false},
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		if got := s.Allow(st.kind); got != st.want {
			t.Fatalf("step %d (%s): Allow = %v, want %v", i, st.kind, got, st.want)
		}
	}
}
