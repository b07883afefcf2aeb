package pipeline

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

func TestTailKeepsTheNewestPoints(t *testing.T) {
	tl := newTail(10)
	for idx := range uint64(4) {
		tl.add(idx, pts(0, 4))
	}
	tl.add(9, pts(0, 11)) // more than the tail holds: not kept
	for idx, want := range []bool{false, false, true, true} {
		if _, ok := tl.get(uint64(idx), 4); ok != want {
			t.Errorf("entry %d kept: %v, want %v", idx, ok, want)
		}
	}
	if _, ok := tl.get(3, 5); ok {
		t.Error("an entry was returned for a record of another size")
	}
	if _, ok := tl.get(9, 11); ok {
		t.Error("an entry larger than the tail was kept")
	}
	if tl.points != 8 || len(tl.order) != 2 || len(tl.byIdx) != 2 {
		t.Errorf("tail holds %d points in %d/%d entries, want 8 in 2", tl.points, len(tl.order), len(tl.byIdx))
	}
}

// pointerSink records, for each point written, its id and whether its
// fields are the very ones appended (taken from the tail) or a copy
// (decoded from the log).
type pointerSink struct {
	memSink
	appended map[*sluice.Field]bool
	mu       sync.Mutex
	shared   []bool
}

func (s *pointerSink) Write(ctx context.Context, points []sluice.Point) error {
	s.mu.Lock()
	for _, p := range points {
		s.shared = append(s.shared, s.appended[&p.Fields[0]])
	}
	s.mu.Unlock()
	return s.memSink.Write(ctx, points)
}

// An output that has fallen behind the tail decodes what it reads back;
// the newest entries it takes from memory. Either way it writes every
// point once, in order.
func TestOutputTakesTheTailAndDecodesTheRest(t *testing.T) {
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	b.sinks["s"].tail = newTail(10)
	sink := &pointerSink{appended: map[*sluice.Field]bool{}}
	for i := range 6 {
		ps := pts(5*i, 5*i+5)
		for j := range ps {
			sink.appended[&ps[j].Fields[0]] = true
		}
		if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"s"}, Points: ps}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testCfg(config.Block)
	cfg.BatchSize, cfg.FlushInterval = 100, 0
	o := NewOutput("s", sink, cfg, b.Cursor("s"), discard, newFakeClock())
	o.Start()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.ids()) < 30 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	closeOutput(t, o)
	if got := sink.ids(); !slices.Equal(got, seq(0, 30)) {
		t.Fatalf("wrote %v, want 0..29", got)
	}
	want := slices.Concat(make([]bool, 20), []bool{true, true, true, true, true, true, true, true, true, true})
	if !slices.Equal(sink.shared, want) {
		t.Errorf("points taken from the tail: %v, want the last 10", sink.shared)
	}
	// Read by its only output, an entry leaves the tail; the last one
	// stays until the output reads on.
	if n := b.sinks["s"].tail.points; n > 5 {
		t.Errorf("the tail still holds %d points the output has written", n)
	}
}

// Each sink's tail lets an entry go once that sink's output has read it:
// an idle sink keeps its own, and does not hold the busy one's.
func TestEachSinkKeepsItsOwnTail(t *testing.T) {
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20}, SinkLimit{Name: "idle", MaxBytes: 1 << 20})
	sink := &memSink{}
	cfg := testCfg(config.Block)
	cfg.BatchSize, cfg.FlushInterval = 100, 0
	o := NewOutput("s", sink, cfg, b.Cursor("s"), discard, newFakeClock())
	o.Start()
	for i := range 4 {
		if err := appendPts(t, b, []string{"s", "idle"}, 5*i, 5*i+5); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.ids()) < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	closeOutput(t, o)
	if n := b.sinks["idle"].tail.points; n != 20 {
		t.Errorf("the idle sink's tail holds %d points; its output has read none of the 20", n)
	}
	if n := b.sinks["s"].tail.points; n > 5 {
		t.Errorf("the busy sink's tail still holds %d points its output has written", n)
	}
}
