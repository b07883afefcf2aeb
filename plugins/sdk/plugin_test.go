package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice"
)

// scripted is a Source whose Run is a test-supplied function, given the
// position Resume was given.
type scripted struct {
	run    func(ctx context.Context, resume sluice.Position, out Emitter) error
	resume sluice.Position
}

func (s *scripted) Info() Info { return Info{Name: "scripted", Version: "0.0.1"} }

func (s *scripted) Resume(pos sluice.Position) error {
	s.resume = pos
	return nil
}

func (s *scripted) Configure(_ context.Context, req ConfigureRequest) ([]sluice.Measurement, error) {
	var cfg struct {
		Rate int `json:"rate"`
	}
	if err := req.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Rate < 0 {
		return nil, ConfigErrors{{Key: "rate", Msg: "must not be negative"}}
	}
	return []sluice.Measurement{{Name: "m", Unique: []string{"id"}}}, nil
}

func (s *scripted) Run(ctx context.Context, out Emitter) error {
	return s.run(ctx, s.resume, out)
}

func connect(t *testing.T, src Source) *Client {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: PluginFor(src)})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*Client)
}

func pointN(i int) sluice.Point {
	return sluice.Point{Measurement: "m", Fields: []sluice.Field{field("id", sluice.Int(int64(i)))}, Time: time.Unix(int64(i), 0)}
}

func TestDescribeAndConfigure(t *testing.T) {
	c := connect(t, &scripted{})
	ctx := context.Background()
	info, err := c.Describe(ctx)
	// Capabilities come from what the source implements (it is a
	// Resumer), and from what the SDK does for every source.
	if err != nil || info.Name != "scripted" || info.Version != "0.0.1" || !slices.Equal(info.Capabilities, []string{CapResume, CapUnique, CapEvents}) {
		t.Fatalf("describe = %+v, %v", info, err)
	}
	ms, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":5}`)})
	if err != nil || len(ms) != 1 || ms[0].Name != "m" || ms[0].Unique[0] != "id" {
		t.Fatalf("configure = %+v, %v", ms, err)
	}
	for _, tc := range []struct{ cfg, want string }{
		{`{"rate":-1}`, "rate: must not be negative"},
		{`{"rtae":1}`, "rtae: unknown key"},
		{`{"rate":"fast"}`, "rate: must be an integer, got a string"},
	} {
		_, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(tc.cfg)})
		var ces ConfigErrors
		if !errors.As(err, &ces) || err.Error() != tc.want {
			t.Errorf("config %s: got %v, want ConfigErrors %q", tc.cfg, err, tc.want)
		}
	}
}

// pointsOnly adapts a batcher's send for tests that look only at points,
// drops and positions.
func pointsOnly(f func(ps []sluice.Point, dropped uint64, pos sluice.Position) error) func(*outBatch) error {
	return func(b *outBatch) error { return f(b.points, b.dropped, b.pos) }
}

// collect streams until the source ends and returns every batch.
func collect(t *testing.T, c *Client, opts StreamOptions) []*Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var batches []*Batch
	err := c.Stream(ctx, opts, func(b *Batch, invalid int, _ error) error {
		if invalid != 0 {
			t.Errorf("invalid points: %d", invalid)
		}
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	return batches
}

func TestStreamBatchesInOrderWithResumeAndFinalDrain(t *testing.T) {
	const n = 1234
	var gotResume string
	c := connect(t, &scripted{run: func(ctx context.Context, resume sluice.Position, out Emitter) error {
		gotResume = string(resume)
		for i := range n {
			if err := out.EmitWait(ctx, pointN(i)); err != nil {
				return err
			}
			if i%100 == 99 {
				out.Checkpoint(sluice.Position(fmt.Sprint(i)))
			}
		}
		out.Checkpoint(sluice.Position("end"))
		return nil // finished: the SDK must still deliver what is queued
	}})
	batches := collect(t, c, StreamOptions{Resume: sluice.Position("from-here"), BatchSize: 100, QueueSize: 50})
	if gotResume != "from-here" {
		t.Errorf("resume position = %q", gotResume)
	}
	next := 0
	var lastPos string
	for _, b := range batches {
		if len(b.Points) > 100 {
			t.Errorf("batch of %d points exceeds batch size 100", len(b.Points))
		}
		for _, p := range b.Points {
			id, _ := p.Field("id")
			if int(id.Int()) != next {
				t.Fatalf("point %d arrived where %d was expected", id.Int(), next)
			}
			next++
		}
		if b.Position != nil {
			lastPos = string(b.Position)
		}
		if b.Dropped != 0 {
			t.Errorf("dropped %d", b.Dropped)
		}
	}
	if next != n || lastPos != "end" {
		t.Fatalf("got %d points, last position %q; want %d and \"end\"", next, lastPos, n)
	}
}

// Many checkpoints between batch cuts: the batch still carries the newest
// one its points cover, not one from long before.
func TestManyCheckpointsKeepTheNewest(t *testing.T) {
	e := newEmitter(1000)
	for i := range 500 {
		e.Emit(pointN(i))
		e.Checkpoint(sluice.Position(fmt.Sprint(i + 1)))
	}
	e.Emit(pointN(500)) // queued before its checkpoint is recorded
	var got []string
	b := &batcher{e: e, size: 1000, interval: time.Hour,
		send: pointsOnly(func(ps []sluice.Point, _ uint64, pos sluice.Position) error {
			got = append(got, fmt.Sprintf("%d:%s", len(ps), pos))
			return nil
		})}
	done := make(chan struct{})
	close(done)
	if err := b.run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	if want := "[501:500]"; fmt.Sprint(got) != want {
		t.Errorf("batches = %v, want %s", got, want)
	}
}

func TestFullQueueCountsDropsAndFreezesPosition(t *testing.T) {
	e := newEmitter(10)
	e.Checkpoint(sluice.Position("before-loss"))
	var emitted, dropped int
	for i := range 100 { // nothing drains the queue yet
		if e.Emit(pointN(i)) {
			emitted++
		} else {
			dropped++
		}
	}
	e.Checkpoint(sluice.Position("after-loss")) // must be ignored
	if emitted != 10 || dropped != 90 {
		t.Fatalf("emitted %d, dropped %d; want 10 and 90", emitted, dropped)
	}

	var points int
	var drops uint64
	var positions []string
	b := &batcher{e: e, size: 4, interval: time.Hour,
		send: pointsOnly(func(ps []sluice.Point, d uint64, pos sluice.Position) error {
			points += len(ps)
			drops += d
			if pos != nil {
				positions = append(positions, string(pos))
			}
			return nil
		})}
	done := make(chan struct{})
	close(done)
	if err := b.run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	if points != 10 || drops != 90 {
		t.Errorf("host saw %d points and %d drops; want 10 and 90", points, drops)
	}
	if fmt.Sprint(positions) != "[before-loss]" {
		t.Errorf("positions = %v; after a loss only the last loss-free checkpoint may be reported", positions)
	}
}

// EmitWithin rides out a pause: a point waits while the queue is full and
// goes in when room appears within the wait; past the wait (or once ctx
// ends) it is dropped and counted, freezing the position as Emit does,
// and later calls stop waiting until a point goes in again.
func TestEmitWithinWaitsThenDrops(t *testing.T) {
	ctx := context.Background()
	e := newEmitter(1)
	if !e.EmitWithin(ctx, pointN(0), 0) {
		t.Fatal("the first point did not go into an empty queue")
	}
	e.Checkpoint(sluice.Position("p0"))

	// Full; the host takes a point 50ms later, within the 10s wait.
	taken := make(chan sluice.Point, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		taken <- <-e.queue
	}()
	if !e.EmitWithin(ctx, pointN(1), 10*time.Second) {
		t.Fatal("a point waiting 10s for a queue drained after 50ms was dropped")
	}
	if p := <-taken; !p.Time.Equal(pointN(0).Time) {
		t.Fatalf("the host took %v, want point 0", p)
	}
	if e.Dropped() != 0 {
		t.Fatalf("Dropped() = %d after a wait that succeeded, want 0", e.Dropped())
	}

	// Full and nobody drains it: dropped after the wait, counted.
	start := time.Now()
	if e.EmitWithin(ctx, pointN(2), 30*time.Millisecond) {
		t.Fatal("a point went into a queue that stayed full")
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("gave up after %v, before the 30ms wait", waited)
	}
	// The wait ran out: the next call does not wait again.
	start = time.Now()
	if e.EmitWithin(ctx, pointN(3), time.Hour) {
		t.Fatal("a point went into a queue that stayed full")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("waited %v again after a wait ran out", waited)
	}
	// Room again: a point goes in, and the calls after it wait again.
	<-e.queue
	if !e.EmitWithin(ctx, pointN(4), 0) {
		t.Fatal("a point did not go into a queue with room")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if e.EmitWithin(canceled, pointN(5), time.Hour) {
		t.Fatal("a point went into a full queue after ctx ended")
	}
	if e.Dropped() != 3 {
		t.Errorf("Dropped() = %d, want 3", e.Dropped())
	}
	e.Checkpoint(sluice.Position("after-loss"))
	if got := e.covered(e.queued.Load()); string(got) != "p0" {
		t.Errorf("covered position %q, want p0: a checkpoint after a drop must be ignored", got)
	}
}

// A source that repairs what it dropped calls Recovered: checkpoints made
// between the drop and the call stay ignored, later ones count, and a new
// drop freezes them again.
func TestRecoveredResumesCheckpoints(t *testing.T) {
	e := newEmitter(4)
	var taken uint64
	// drain takes n points off the queue as the batcher does and returns
	// the position a batch cut there would carry.
	drain := func(n int) string {
		for range n {
			<-e.queue
			taken++
		}
		return string(e.covered(taken))
	}
	must := func(ok bool, what string) {
		t.Helper()
		if !ok {
			t.Fatal(what)
		}
	}

	e.Recovered() // without a drop: nothing to recover, nothing changes
	must(e.Emit(pointN(0)) && e.Emit(pointN(1)), "emit 0, 1")
	e.Checkpoint(sluice.Position("through-1"))
	must(e.Emit(pointN(2)) && e.Emit(pointN(3)), "emit 2, 3")
	must(!e.Emit(pointN(4)), "the queue is full: 4 must be dropped")
	e.Checkpoint(sluice.Position("through-4")) // claims the dropped point
	if got := drain(4); got != "through-1" {
		t.Fatalf("position after the drop = %q, want through-1", got)
	}

	// The source emits 4 again, but a checkpoint before Recovered still
	// does not count: the emitter cannot know the repair is complete.
	if err := e.EmitWait(context.Background(), pointN(4)); err != nil {
		t.Fatal(err)
	}
	e.Checkpoint(sluice.Position("through-4-early"))
	e.Recovered()
	must(e.Emit(pointN(5)), "emit 5")
	e.Checkpoint(sluice.Position("through-5"))
	if got := drain(1); got != "" {
		t.Fatalf("a batch cut before point 5 carries %q; want none", got)
	}
	if got := drain(1); got != "through-5" {
		t.Fatalf("position after Recovered = %q, want through-5", got)
	}

	// Recovered does not cover drops after it.
	for i := 6; i < 10; i++ {
		must(e.Emit(pointN(i)), fmt.Sprint("emit ", i))
	}
	must(!e.Emit(pointN(10)), "10 must be dropped")
	e.Checkpoint(sluice.Position("through-10"))
	if got := drain(4); got != "" {
		t.Fatalf("position after a second drop = %q, want none", got)
	}
	e.Recovered()
	must(e.Emit(pointN(10)), "emit 10 again")
	e.Checkpoint(sluice.Position("through-10-again"))
	if got := drain(1); got != "through-10-again" {
		t.Fatalf("position after the second Recovered = %q, want through-10-again", got)
	}
	if d := e.Dropped(); d != 2 {
		t.Errorf("dropped = %d, want 2", d)
	}
}

// Through the plugin boundary: a source that drops while the host is
// stalled, emits the dropped points again and calls Recovered delivers
// every point, reports the drops, never a position taken between a drop
// and Recovered, and positions again after it.
func TestRecoveredAcrossTheStream(t *testing.T) {
	stalled := make(chan struct{}) // closed by the source once it has dropped
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		var dropped []int
		i := 0
		out.Checkpoint(sluice.Position("start"))
		for ; len(dropped) < 3; i++ {
			if !out.Emit(pointN(i)) {
				dropped = append(dropped, i)
			}
			if len(dropped) > 0 {
				out.Checkpoint(sluice.Position("frozen"))
			}
		}
		close(stalled)
		for _, id := range dropped { // the repair, as a backfill would
			if err := out.EmitWait(ctx, pointN(id)); err != nil {
				return err
			}
		}
		out.Checkpoint(sluice.Position("frozen"))
		out.Recovered()
		for j := i; j < i+10; j++ {
			if err := out.EmitWait(ctx, pointN(j)); err != nil {
				return err
			}
		}
		out.Checkpoint(sluice.Position(fmt.Sprint("through-", i+9)))
		return nil
	}})
	var (
		seen      = map[int64]int{}
		dropped   uint64
		positions []string
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Stream(ctx, StreamOptions{QueueSize: 8, BatchSize: 1, FlushInterval: time.Millisecond},
		func(b *Batch, _ int, _ error) error {
			select { // hold the first batch until the source has dropped
			case <-stalled:
			case <-ctx.Done():
				return ctx.Err()
			}
			for _, p := range b.Points {
				id, _ := p.Field("id")
				seen[id.Int()]++
			}
			dropped += b.Dropped
			if b.Position != nil {
				positions = append(positions, string(b.Position))
			}
			return nil
		})
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	last := int64(-1)
	for id := range seen {
		last = max(last, id)
	}
	for id := int64(0); id <= last; id++ {
		if seen[id] == 0 {
			t.Errorf("point %d never arrived", id)
		}
	}
	if dropped != 3 {
		t.Errorf("host saw %d drops, want 3", dropped)
	}
	if len(positions) == 0 || positions[0] != "start" || positions[len(positions)-1] != fmt.Sprint("through-", last) {
		t.Errorf("positions = %v; want start first and through-%d last", positions, last)
	}
	for _, p := range positions {
		if p == "frozen" {
			t.Errorf("positions = %v: one taken between a drop and Recovered was delivered", positions)
			break
		}
	}
}

func TestCheckpointWaitsForItsPoints(t *testing.T) {
	e := newEmitter(100)
	for i := range 3 {
		e.Emit(pointN(i))
	}
	e.Checkpoint(sluice.Position("after-3"))
	e.Emit(pointN(3))
	e.Checkpoint(sluice.Position("after-4"))

	var got []string
	b := &batcher{e: e, size: 2, interval: time.Hour,
		send: pointsOnly(func(ps []sluice.Point, _ uint64, pos sluice.Position) error {
			got = append(got, fmt.Sprintf("%d:%s", len(ps), pos))
			return nil
		})}
	done := make(chan struct{})
	close(done)
	if err := b.run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	// Batches of 2: the first covers no checkpoint, the second covers
	// both and carries the newer.
	if want := "[2: 2:after-4]"; fmt.Sprint(got) != want {
		t.Errorf("batches = %v, want %s", got, want)
	}
}

func TestSourceErrorEndsStream(t *testing.T) {
	c := connect(t, &scripted{run: func(context.Context, sluice.Position, Emitter) error {
		return errors.New("exchange said no")
	}})
	err := c.Stream(context.Background(), StreamOptions{}, func(*Batch, int, error) error { return nil })
	if err == nil || err.Error() != "source failed: exchange said no" {
		t.Fatalf("err = %v", err)
	}
}

func TestPermanentErrorCrossesTheBoundary(t *testing.T) {
	c := connect(t, &scripted{run: func(context.Context, sluice.Position, Emitter) error {
		return Permanent(fmt.Errorf("handshake refused: 401 Unauthorized"))
	}})
	err := c.Stream(context.Background(), StreamOptions{}, func(*Batch, int, error) error { return nil })
	var perm *PermanentError
	if !errors.As(err, &perm) || err.Error() != "handshake refused: 401 Unauthorized" {
		t.Fatalf("err = %v (%T), want a PermanentError with the source's message", err, err)
	}
}

func TestHostCancelStopsSource(t *testing.T) {
	stopped := make(chan struct{})
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		defer close(stopped)
		for i := 0; ctx.Err() == nil; i++ {
			out.Emit(pointN(i))
			time.Sleep(time.Millisecond)
		}
		return ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	err := c.Stream(ctx, StreamOptions{FlushInterval: time.Millisecond}, func(b *Batch, _ int, _ error) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("source Run did not return after the host cancelled")
	}
}

// live is a scripted source that takes new configs while it runs: Run
// emits points carrying the rate of the config in force.
type live struct {
	scripted
	mu          sync.Mutex
	rate        int64
	configured  []string // configs Configure applied (not validate-only)
	reconfigs   []string // configs Reconfigure was called with
	reconfigErr error    // what Reconfigure returns, if set
}

func (l *live) Configure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error) {
	ms, err := l.scripted.Configure(ctx, req)
	if err == nil && !req.ValidateOnly {
		l.mu.Lock()
		l.configured = append(l.configured, string(req.Config))
		l.mu.Unlock()
	}
	return ms, err
}

func (l *live) Reconfigure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reconfigs = append(l.reconfigs, string(req.Config))
	if l.reconfigErr != nil {
		return nil, l.reconfigErr
	}
	var cfg struct {
		Rate int64 `json:"rate"`
	}
	if err := req.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Rate < 0 {
		return nil, ConfigErrors{{Key: "rate", Msg: "must not be negative"}}
	}
	l.rate = cfg.Rate
	return []sluice.Measurement{{Name: "m2"}}, nil
}

func (l *live) Run(ctx context.Context, out Emitter) error {
	for i := 0; ; i++ {
		l.mu.Lock()
		rate := l.rate
		l.mu.Unlock()
		p := pointN(i)
		p.Fields = append(p.Fields, field("rate", sluice.Int(rate)))
		if err := out.EmitWait(ctx, p); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

var _ Reconfigurer = (*live)(nil)

// streaming runs a stream in the background and reports the rate field of
// every point it receives, until the test ends.
func streaming(t *testing.T, c *Client) <-chan int64 {
	t.Helper()
	rates := make(chan int64, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Stream(ctx, StreamOptions{FlushInterval: time.Millisecond}, func(b *Batch, _ int, _ error) error {
			for _, p := range b.Points {
				v, _ := p.Field("rate")
				select {
				case rates <- v.Int():
				default:
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("stream ended with %v, want context.Canceled", err)
		}
	})
	waitRate(t, rates, func(int64) bool { return true }) // the stream runs
	return rates
}

// waitRate reads rates until one satisfies ok.
func waitRate(t *testing.T, rates <-chan int64, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-rates:
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatal("gave up waiting for a point")
		}
	}
}

// A config sent while the stream runs reaches Reconfigure and takes
// effect in the running source; one sent before goes to Configure, and
// validation goes to Configure whenever it comes.
func TestReconfigureWhileStreaming(t *testing.T) {
	src := &live{}
	c := connect(t, src)
	ctx := context.Background()
	if _, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":1}`)}); err != nil {
		t.Fatal(err)
	}
	rates := streaming(t, c)
	if _, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":-5}`), ValidateOnly: true}); err == nil {
		t.Error("validating a bad config while streaming: no error")
	}
	ms, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":7}`)})
	if err != nil || len(ms) != 1 || ms[0].Name != "m2" {
		t.Fatalf("reconfigure = %+v, %v; want Reconfigure's measurements", ms, err)
	}
	waitRate(t, rates, func(r int64) bool { return r == 7 })
	src.mu.Lock()
	defer src.mu.Unlock()
	if fmt.Sprint(src.configured) != `[{"rate":1}]` || fmt.Sprint(src.reconfigs) != `[{"rate":7}]` {
		t.Errorf("Configure applied %q, Reconfigure got %q; want the first config configured and the second reconfigured",
			src.configured, src.reconfigs)
	}
}

// A source that cannot be reconfigured answers ErrRestartNeeded to a
// config sent while it streams, and keeps streaming.
func TestReconfigureWithoutReconfigurerNeedsRestart(t *testing.T) {
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		for i := 0; ; i++ {
			if err := out.EmitWait(ctx, pointN(i)); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}})
	rates := streaming(t, c)
	_, err := c.Configure(context.Background(), ConfigureRequest{Feed: "f", Config: []byte(`{"rate":3}`)})
	if !errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("configure while streaming = %v, want ErrRestartNeeded", err)
	}
	var ces ConfigErrors
	if errors.As(err, &ces) {
		t.Errorf("ErrRestartNeeded also reads as ConfigErrors %v", ces)
	}
	for range 10 {
		waitRate(t, rates, func(int64) bool { return true })
	}
}

// Reconfigure's ConfigErrors reach the host as ConfigErrors and its
// ErrRestartNeeded, with the reason, as ErrRestartNeeded; either way the
// stream goes on with the config it had.
func TestReconfigureRejectedKeepsStreaming(t *testing.T) {
	src := &live{}
	c := connect(t, src)
	ctx := context.Background()
	if _, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":2}`)}); err != nil {
		t.Fatal(err)
	}
	rates := streaming(t, c)
	if _, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":3}`)}); err != nil {
		t.Fatal(err)
	}
	waitRate(t, rates, func(r int64) bool { return r == 3 })

	_, err := c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":-1}`)})
	var ces ConfigErrors
	if !errors.As(err, &ces) || err.Error() != "rate: must not be negative" || errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("bad config while streaming = %v, want ConfigErrors naming rate", err)
	}

	src.mu.Lock()
	src.reconfigErr = fmt.Errorf("%w: market changed", ErrRestartNeeded)
	src.mu.Unlock()
	_, err = c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":9}`)})
	if !errors.Is(err, ErrRestartNeeded) || err.Error() != "this change needs a restart: market changed" {
		t.Fatalf("restart-only change = %v, want ErrRestartNeeded with the reason", err)
	}

	src.mu.Lock()
	src.reconfigErr = errors.New("half applied")
	src.mu.Unlock()
	_, err = c.Configure(ctx, ConfigureRequest{Feed: "f", Config: []byte(`{"rate":9}`)})
	if !errors.Is(err, ErrRestartNeeded) || err.Error() != "this change needs a restart: half applied" {
		t.Fatalf("failed reconfigure = %v, want ErrRestartNeeded with the error", err)
	}

	// The stream goes on, at the rate last applied.
	for range 20 {
		if r := waitRate(t, rates, func(int64) bool { return true }); r != 3 {
			t.Fatalf("a point with rate %d after rejected reconfigurations; want 3", r)
		}
	}
}

func tag(k, v string) sluice.Tag                  { return sluice.Tag{Key: k, Value: v} }
func field(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }
