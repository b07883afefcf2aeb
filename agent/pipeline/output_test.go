package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// memSink records what it is given; fail, if set, decides each attempt.
type memSink struct {
	mu       sync.Mutex
	got      []int64
	attempts int
	fail     func(attempt int, points []sluice.Point) error
}

func (s *memSink) Open(context.Context) error                          { return nil }
func (s *memSink) Declare(context.Context, []sluice.Measurement) error { return nil }
func (s *memSink) Close() error                                        { return nil }
func (s *memSink) Write(_ context.Context, points []sluice.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.fail != nil {
		if err := s.fail(s.attempts, points); err != nil {
			var rej *sinks.RejectedError
			if !errors.As(err, &rej) {
				return err
			}
			points = points[rej.Rejected:] // the test rejects a prefix
			defer func() { s.got = append(s.got, ids(points)...) }()
			return err
		}
	}
	s.got = append(s.got, ids(points)...)
	return nil
}

func (s *memSink) ids() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func ids(points []sluice.Point) []int64 {
	out := make([]int64, len(points))
	for i, p := range points {
		v, _ := p.Field("id")
		out[i] = v.Int()
	}
	return out
}

func pts(from, to int) []sluice.Point {
	var out []sluice.Point
	for i := from; i < to; i++ {
		out = append(out, sluice.Point{Measurement: "m", Fields: []sluice.Field{{Key: "id", Value: sluice.Int(int64(i))}}})
	}
	return out
}

func seq(from, to int) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, int64(i))
	}
	return out
}

func testCfg(policy config.WhenFull) config.Pipeline {
	return config.Pipeline{BatchSize: 4, FlushInterval: time.Hour, MaxBufferBytes: 1 << 20, WhenFull: policy,
		RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond}
}

// openTestBuffer opens a buffer in dir for the given sinks.
func openTestBuffer(t *testing.T, dir string, limits ...SinkLimit) *Buffer {
	t.Helper()
	b, _, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func appendPts(t *testing.T, b *Buffer, sinks []string, from, to int) error {
	t.Helper()
	return b.Append(context.Background(), &Entry{Feed: "f", Sinks: sinks, Points: pts(from, to)})
}

func closeOutput(t *testing.T, o *Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// entrySize is the encoded size of an entry of pts(0, 5) for sink "s"
// (or the sink named).
func entrySize(t *testing.T, sink ...string) int64 {
	if len(sink) == 0 {
		sink = []string{"s"}
	}
	b, err := appendEntry(nil, &Entry{Feed: "f", Points: pts(0, 5)}, 1, sink)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b)) + 16 // plus the log's record header
}

// Each policy with room for three 5-point entries: five entries arrive
// while the sink's output is not running, so what each keeps is exact.
func TestWhenFullPolicies(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		policy      config.WhenFull
		wantWritten []int64
		wantDropped uint64
		wantBlocked bool
	}{
		{config.Block, seq(0, 15), 0, true},
		{config.DropNewest, seq(0, 15), 10, false},
		{config.DropOldest, seq(10, 25), 10, false},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			max := 3*entrySize(t) + 8 // room for three entries, not four
			b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: max, WhenFull: tc.policy})
			blocked := false
			for i := range 5 {
				err := b.Append(cancelled, &Entry{Feed: "f", Sinks: []string{"s"}, Points: pts(5*i, 5*i+5)})
				if errors.Is(err, context.Canceled) {
					blocked = true
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if blocked != tc.wantBlocked {
				t.Fatalf("append blocked = %v, want %v", blocked, tc.wantBlocked)
			}
			sink := &memSink{}
			o := NewOutput("s", sink, testCfg(tc.policy), b.Cursor("s"), discard, nil)
			st := o.Status()
			if st.BufferedPoints != 15 || st.Dropped[ReasonBufferFull] != tc.wantDropped {
				t.Fatalf("buffered %d, dropped %d; want 15 and %d", st.BufferedPoints, st.Dropped[ReasonBufferFull], tc.wantDropped)
			}
			o.Start()
			closeOutput(t, o)
			if got := sink.ids(); !slices.Equal(got, tc.wantWritten) {
				t.Fatalf("written %v, want %v", got, tc.wantWritten)
			}
			if st = o.Status(); st.Written != 15 || st.BufferedPoints != 0 {
				t.Fatalf("status written=%d buffered=%d", st.Written, st.BufferedPoints)
			}
		})
	}
}

func TestBlockWaitsForRoomThenTakesEverything(t *testing.T) {
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 4 * entrySize(t), WhenFull: config.Block})
	sink := &memSink{}
	o := NewOutput("s", sink, testCfg(config.Block), b.Cursor("s"), discard, nil)
	o.Start()
	var wg sync.WaitGroup
	for w := range 3 { // concurrent feeds, far more than fits at once
		wg.Go(func() {
			for i := range 40 {
				base := w*1000 + 5*i
				if err := appendPts(t, b, []string{"s"}, base, base+5); err != nil {
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	closeOutput(t, o)
	got := sink.ids()
	slices.Sort(got)
	want := append(append(seq(0, 200), seq(1000, 1200)...), seq(2000, 2200)...)
	if !slices.Equal(got, want) {
		t.Fatalf("wrote %d points, want the 600 sent exactly once", len(got))
	}
}

// Power loss took the log's tail, including the entry the positions
// snapshot came from: the feed resumes from the newest entry that
// survived, not from the lost one.
func TestPositionPastTheLogsEndIsNotUsed(t *testing.T) {
	dir := t.TempDir()
	b := openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	for i := range 3 {
		if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"s"}, Position: sluice.Position(fmt.Sprint(i)), Points: pts(i, i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close() // writes positions.json: f at entry 3, position "2"

	// Cut the last record off the only segment, as a power loss would.
	segs, _ := filepath.Glob(filepath.Join(dir, "sinks", "s", "log", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	info, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[0], info.Size()-5); err != nil {
		t.Fatal(err)
	}
	b = openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	if got := string(b.Position("f")); got != "1" {
		t.Fatalf("position after the tail was lost = %q, want \"1\" (the newest entry left)", got)
	}
}

// Feeds declare concurrently as they start; every declaration is kept
// and survives a reopen.
func TestConcurrentDeclarationsAreAllSaved(t *testing.T) {
	dir := t.TempDir()
	b := openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ms := []sluice.Measurement{{Name: fmt.Sprintf("m%d", i), Unique: []string{"id"}}}
			if err := b.Declare(fmt.Sprintf("feed%d", i), ms); err != nil {
				t.Errorf("declare: %v", err)
			}
		})
	}
	wg.Wait()
	b.Close()
	b = openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	if got := len(b.Measurements()); got != 8 {
		t.Fatalf("after reopening, %d measurements are declared, want 8", got)
	}
}

// A feed blocked on a full sink does not hold up a feed routed elsewhere.
func TestBlockedSinkDoesNotStallOtherFeeds(t *testing.T) {
	b := openTestBuffer(t, t.TempDir(),
		SinkLimit{Name: "dead", MaxBytes: 2*entrySize(t, "dead") + 8, WhenFull: config.Block},
		SinkLimit{Name: "live", MaxBytes: 1 << 20, WhenFull: config.Block})
	for i := range 2 { // fill dead's share (two entries); nothing reads it
		if err := appendPts(t, b, []string{"dead"}, 5*i, 5*i+5); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan error, 1)
	go func() { blocked <- b.Append(ctx, &Entry{Feed: "f1", Sinks: []string{"dead"}, Points: pts(100, 105)}) }()

	// While f1 waits, f2 appends to the live sink and its output writes.
	live := &memSink{}
	o := NewOutput("live", live, testCfg(config.Block), b.Cursor("live"), discard, nil)
	o.Start()
	liveCtx, liveCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer liveCancel()
	for i := range 10 {
		err := b.Append(liveCtx, &Entry{Feed: "f2", Sinks: []string{"live"}, Points: pts(1000+5*i, 1005+5*i)})
		if err != nil {
			t.Fatalf("append for the live sink: %v (held up by the blocked feed)", err)
		}
	}
	closeOutput(t, o)
	if got := live.ids(); !slices.Equal(got, seq(1000, 1050)) {
		t.Fatalf("live sink wrote %v while the other feed was blocked", got)
	}
	select {
	case err := <-blocked:
		t.Fatalf("the append to the full sink returned (%v) without room", err)
	default:
	}
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked append: %v", err)
	}
}

func TestRoutingAndRestartResumeAtCursor(t *testing.T) {
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "a", MaxBytes: 1 << 20}, {Name: "b", MaxBytes: 1 << 20}}
	b := openTestBuffer(t, dir, limits...)
	for i := range 4 {
		sinks := []string{"a"}
		if i%2 == 0 {
			sinks = append(sinks, "b")
		}
		if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: sinks, Position: sluice.Position(fmt.Sprint(i)), Points: pts(4*i, 4*i+4)}); err != nil {
			t.Fatal(err)
		}
	}
	// Only a writes before the "crash".
	sa := &memSink{}
	oa := NewOutput("a", sa, testCfg(config.Block), b.Cursor("a"), discard, nil)
	oa.Start()
	closeOutput(t, oa)
	b.Close()

	b = openTestBuffer(t, dir, append(limits, SinkLimit{Name: "late", MaxBytes: 1 << 20})...)
	if got := string(b.Position("f")); got != "3" {
		t.Fatalf("position after reopen = %q, want 3", got)
	}
	outs := map[string]*memSink{"a": {}, "b": {}, "late": {}}
	for name, s := range outs {
		o := NewOutput(name, s, testCfg(config.Block), b.Cursor(name), discard, nil)
		o.Start()
		closeOutput(t, o)
	}
	if got := outs["a"].ids(); len(got) != 0 {
		t.Errorf("a wrote %v again after its cursor passed them", got)
	}
	if got, want := outs["b"].ids(), append(seq(0, 4), seq(8, 12)...); !slices.Equal(got, want) {
		t.Errorf("b wrote %v, want only the entries routed to it: %v", got, want)
	}
	if got := outs["late"].ids(); len(got) != 0 {
		t.Errorf("a sink added later wrote %v; it must start at the head", got)
	}
}

// fakeClock fires After channels only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []fakeWait
	waited chan time.Duration
}

type fakeWait struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1e9, 0), waited: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waits = append(c.waits, fakeWait{c.now.Add(d), ch})
	c.waited <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waits[:0]
	for _, w := range c.waits {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waits = kept
}

// nextWait returns the duration of the writer's next wait.
func (c *fakeClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waited:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never waited")
		return 0
	}
}

// A flush interval spaces writes, not points: an idle sink writes a point
// at once; what arrives within the interval after a write began waits for
// its end and goes in one batch; a full batch goes at once.
func TestFlushIntervalSpacesWrites(t *testing.T) {
	clock := newFakeClock()
	var sizes []int // guarded by sink.mu, which Write holds around fail
	sink := &memSink{fail: func(_ int, points []sluice.Point) error {
		sizes = append(sizes, len(points))
		return nil
	}}
	cfg := testCfg(config.Block) // batch size 4
	cfg.FlushInterval = time.Second
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, cfg, b.Cursor("s"), discard, clock)
	o.Start()
	defer closeOutput(t, o)
	waitIDs := func(n int) []int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(sink.ids()) < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return sink.ids()
	}
	if err := appendPts(t, b, []string{"s"}, 0, 1); err != nil {
		t.Fatal(err)
	}
	if got := waitIDs(1); !slices.Equal(got, seq(0, 1)) {
		t.Fatalf("an idle sink wrote %v without the clock moving, want [0]", got)
	}
	if err := appendPts(t, b, []string{"s"}, 1, 3); err != nil { // below batch size
		t.Fatal(err)
	}
	if d := clock.nextWait(t); d != time.Second {
		t.Fatalf("writer waits %v for a partial batch after a write, want the flush interval", d)
	}
	if got := sink.ids(); len(got) != 1 {
		t.Fatalf("wrote %v before the flush interval passed", got)
	}
	clock.Advance(time.Second)
	if got := waitIDs(3); !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("after the interval wrote %v", got)
	}
	if err := appendPts(t, b, []string{"s"}, 3, 7); err != nil { // a full batch
		t.Fatal(err)
	}
	if got := waitIDs(7); !slices.Equal(got, seq(0, 7)) {
		t.Fatalf("a full batch within the interval: wrote %v without the clock moving", got)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if !slices.Equal(sizes, []int{1, 2, 4}) {
		t.Fatalf("batches of %v, want [1 2 4]", sizes)
	}
}

// With a flush interval of 0 a partial batch is written at once, without
// waiting on the clock, and what arrives while a write runs is the next
// batch, whole: batches grow with the load.
func TestZeroFlushIntervalWritesWhenTheSinkIsFree(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var sizes []int // guarded by sink.mu, which Write holds around fail
	sink := &memSink{fail: func(attempt int, points []sluice.Point) error {
		sizes = append(sizes, len(points))
		if attempt == 1 {
			close(started)
			<-release
		}
		return nil
	}}
	cfg := testCfg(config.Block)
	cfg.BatchSize, cfg.FlushInterval = 100, 0
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, cfg, b.Cursor("s"), discard, newFakeClock())
	o.Start()
	defer closeOutput(t, o)
	if err := appendPts(t, b, []string{"s"}, 0, 3); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("a partial batch was not written without the clock moving")
	}
	for _, r := range [][2]int{{3, 5}, {5, 9}} {
		if err := appendPts(t, b, []string{"s"}, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.ids()) < 9 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if !slices.Equal(sink.got, seq(0, 9)) || !slices.Equal(sizes, []int{3, 6}) {
		t.Fatalf("wrote %v in batches of %v, want 0..8 in batches of [3 6]", sink.got, sizes)
	}
}

func TestRetriesByErrorClass(t *testing.T) {
	clock := newFakeClock()
	errs := []error{
		errors.New("connection refused"),
		&sinks.RetryAfterError{After: 7 * time.Second, Err: errors.New("429")},
		&sinks.FailedError{Err: errors.New("401 unauthorized")},
	}
	sink := &memSink{fail: func(attempt int, _ []sluice.Point) error {
		if attempt <= len(errs) {
			return errs[attempt-1]
		}
		return nil
	}}
	cfg := testCfg(config.Block)
	cfg.RetryInitial, cfg.RetryMax = time.Second, time.Minute
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, cfg, b.Cursor("s"), discard, clock)
	if err := appendPts(t, b, []string{"s"}, 0, 4); err != nil {
		t.Fatal(err)
	}
	o.Start()
	defer closeOutput(t, o)

	if d := clock.nextWait(t); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("after a transient error the writer waits %v, want backoff within [0.5s, 1s]", d)
	}
	if st := o.Status(); st.State != SinkRetrying || st.LastError != "connection refused" {
		t.Fatalf("state %s (%q) after a transient error", st.State, st.LastError)
	}
	clock.Advance(time.Second)
	if d := clock.nextWait(t); d != 7*time.Second {
		t.Fatalf("after a 429 the writer waits %v, want Retry-After's 7s", d)
	}
	clock.Advance(7 * time.Second)
	if d := clock.nextWait(t); d != time.Minute {
		t.Fatalf("when failed the writer waits %v, want retry_max", d)
	}
	if st := o.Status(); st.State != SinkFailed || st.BufferedPoints != 4 {
		t.Fatalf("state %s, %d buffered after 401; want failed with the 4 points still held", st.State, st.BufferedPoints)
	}
	clock.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.ids()) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := o.Status()
	if got := sink.ids(); !slices.Equal(got, seq(0, 4)) || st.Retries != 3 || st.State != SinkOK {
		t.Fatalf("wrote %v, retries %d, state %s; want 0..3 once, 3 retries, ok", got, st.Retries, st.State)
	}
}

func TestRejectedPointsAreCountedNotRetried(t *testing.T) {
	sink := &memSink{fail: func(attempt int, _ []sluice.Point) error {
		if attempt == 1 {
			return &sinks.RejectedError{Rejected: 2, Sample: "bad line", Err: errors.New("partial write")}
		}
		return nil
	}}
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, testCfg(config.Block), b.Cursor("s"), discard, nil)
	if err := appendPts(t, b, []string{"s"}, 0, 8); err != nil {
		t.Fatal(err)
	}
	o.Start()
	closeOutput(t, o)
	st := o.Status()
	if got := sink.ids(); !slices.Equal(got, seq(2, 8)) {
		t.Fatalf("wrote %v", got)
	}
	if st.Dropped[ReasonRejected] != 2 || st.Written != 6 || st.Retries != 0 {
		t.Fatalf("dropped %v written %d retries %d", st.Dropped, st.Written, st.Retries)
	}
}

// A sink that reports more points rejected than it was given (a bug in
// the sink) gets the whole batch counted rejected, not a written count
// that wraps.
func TestRejectedCountHeldToTheBatch(t *testing.T) {
	var rejectedSink failSink = func([]sluice.Point) error {
		return &sinks.RejectedError{Rejected: 1000, Sample: "bad line", Err: errors.New("confused")}
	}
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", rejectedSink, testCfg(config.Block), b.Cursor("s"), discard, nil)
	if err := appendPts(t, b, []string{"s"}, 0, 8); err != nil {
		t.Fatal(err)
	}
	o.Start()
	closeOutput(t, o)
	if st := o.Status(); st.Dropped[ReasonRejected] != 8 || st.Written != 0 {
		t.Fatalf("dropped %v written %d; want 8 rejected, 0 written", st.Dropped, st.Written)
	}
}

// Points a sink skips on purpose are dropped (reason skipped), not
// written, and not retried; the rest of the batch counts as written.
func TestSkippedPointsAreCountedNotWritten(t *testing.T) {
	sink := &memSink{fail: func(attempt int, _ []sluice.Point) error {
		if attempt == 1 {
			return &sinks.SkippedError{Skipped: 4, Err: errors.New("redis down")}
		}
		if attempt == 2 {
			return &sinks.SkippedError{Skipped: 1, Err: errors.New("redis went down mid-batch")}
		}
		return nil
	}}
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, testCfg(config.Block), b.Cursor("s"), discard, nil)
	if err := appendPts(t, b, []string{"s"}, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := appendPts(t, b, []string{"s"}, 4, 8); err != nil {
		t.Fatal(err)
	}
	if err := appendPts(t, b, []string{"s"}, 8, 12); err != nil {
		t.Fatal(err)
	}
	o.Start()
	closeOutput(t, o)
	st := o.Status()
	if sink.attempts != 3 || st.Dropped[ReasonSkipped] != 5 || st.Written != 7 || st.Retries != 0 || st.Dropped[ReasonRejected] != 0 {
		t.Fatalf("attempts %d, dropped %v, written %d, retries %d; want 3 attempts, 5 skipped, 7 written, no retry",
			sink.attempts, st.Dropped, st.Written, st.Retries)
	}
	if st.BufferedPoints != 0 || st.State != SinkStopped {
		t.Fatalf("buffered %d, state %s after close; want 0, stopped", st.BufferedPoints, st.State)
	}
}

// A batch with points both rejected and skipped counts each, held to
// the batch: rejected first, skipped from what is left.
func TestSkippedAndRejectedHeldToTheBatch(t *testing.T) {
	var both failSink = func([]sluice.Point) error {
		return &sinks.SkippedError{Skipped: 1000, Err: fmt.Errorf("redis down; %w",
			&sinks.RejectedError{Rejected: 3, Sample: "bad", Err: errors.New("too long")})}
	}
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", both, testCfg(config.Block), b.Cursor("s"), discard, nil)
	if err := appendPts(t, b, []string{"s"}, 0, 8); err != nil {
		t.Fatal(err)
	}
	o.Start()
	closeOutput(t, o)
	if st := o.Status(); st.Dropped[ReasonRejected] != 3 || st.Dropped[ReasonSkipped] != 5 || st.Written != 0 || !st.LastWrite.IsZero() {
		t.Fatalf("dropped %v, written %d, last write %v; want 3 rejected, 5 skipped, 0 written, never", st.Dropped, st.Written, st.LastWrite)
	}
}

// A sink that skips every batch (a long outage of what it delivers to)
// gets one log line per skipLogEvery, with what it skipped since the
// previous line.
func TestSkippedLogIsSpaced(t *testing.T) {
	clock := newFakeClock()
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var skipAll failSink = func(points []sluice.Point) error {
		return &sinks.SkippedError{Skipped: len(points), Err: errors.New("redis down")}
	}
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", skipAll, testCfg(config.Block), b.Cursor("s"), log, clock)
	for i := 0; i < 12; i += 4 {
		if err := appendPts(t, b, []string{"s"}, i, i+4); err != nil {
			t.Fatal(err)
		}
	}
	o.Start()
	defer closeOutput(t, o)
	waitStatus(t, o, "12 skipped", func(st OutputStatus) bool { return st.Dropped[ReasonSkipped] == 12 })
	clock.Advance(skipLogEvery - time.Second)
	if err := appendPts(t, b, []string{"s"}, 12, 16); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, o, "16 skipped", func(st OutputStatus) bool { return st.Dropped[ReasonSkipped] == 16 })
	clock.Advance(time.Second)
	if err := appendPts(t, b, []string{"s"}, 16, 20); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, o, "20 skipped", func(st OutputStatus) bool { return st.Dropped[ReasonSkipped] == 20 })

	type line struct {
		Msg          string
		Skipped      int    `json:"skipped"`
		SkippedTotal int    `json:"skipped_total"`
		Error        string `json:"error"`
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, v)
	}
	msg := "sink skipped points on purpose; they are not retried"
	want := []line{{msg, 4, 4, "redis down"}, {msg, 16, 20, "redis down"}}
	if !slices.Equal(got, want) {
		t.Fatalf("log lines %+v, want %+v", got, want)
	}
}

// waitStatus polls o's status until cond holds.
func waitStatus(t *testing.T, o *Output, what string, cond func(OutputStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(o.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, o.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer a logger and a test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// failSink answers every write with its own result.
type failSink func([]sluice.Point) error

func (failSink) Open(context.Context) error                             { return nil }
func (failSink) Declare(context.Context, []sluice.Measurement) error    { return nil }
func (failSink) Close() error                                           { return nil }
func (f failSink) Write(_ context.Context, points []sluice.Point) error { return f(points) }

func TestCloseDeadlineLeavesPointsBuffered(t *testing.T) {
	dir := t.TempDir()
	sink := &memSink{fail: func(int, []sluice.Point) error { return errors.New("down") }}
	b := openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	o := NewOutput("s", sink, testCfg(config.Block), b.Cursor("s"), discard, nil)
	if err := appendPts(t, b, []string{"s"}, 0, 10); err != nil {
		t.Fatal(err)
	}
	o.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := o.Close(ctx)
	if want := "sink s: 10 points not written before the shutdown deadline; they stay buffered for the next start"; fmt.Sprint(err) != want {
		t.Fatalf("close: %v, want %q", err, want)
	}
	b.Close()

	// The next start writes them.
	b = openTestBuffer(t, dir, SinkLimit{Name: "s", MaxBytes: 1 << 20})
	ok := &memSink{}
	o = NewOutput("s", ok, testCfg(config.Block), b.Cursor("s"), discard, nil)
	o.Start()
	closeOutput(t, o)
	if got := ok.ids(); !slices.Equal(got, seq(0, 10)) {
		t.Fatalf("after restart wrote %v", got)
	}
}
