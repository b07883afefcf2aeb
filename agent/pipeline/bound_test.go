package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// switchSink fails every write while down is set: a sink that never
// writes once (a server that is down, refused credentials).
type switchSink struct {
	memSink
	down atomic.Bool
}

func (s *switchSink) Write(ctx context.Context, points []sluice.Point) error {
	if s.down.Load() {
		return errors.New("connection refused")
	}
	return s.memSink.Write(ctx, points)
}

// diskBytes is what a sink's directory takes on disk, as the filesystem
// says.
func diskBytes(t *testing.T, dir, sink string) int64 {
	t.Helper()
	return dirSize(filepath.Join(dir, "sinks", sink))
}

// A sink that never writes stays within its bound on disk, within one
// segment, under every policy, and every point offered to it is either
// still buffered or counted as dropped; a feed routed only to a healthy
// sink neither waits for it nor loses anything. When the sink comes back
// it writes what was kept, each point once.
func TestDeadSinkStaysWithinItsBoundOnDisk(t *testing.T) {
	const (
		maxBytes = 256 << 10
		entries  = 600
		perEntry = 50
	)
	for _, policy := range []config.WhenFull{config.Block, config.DropOldest, config.DropNewest} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			b := openTestBuffer(t, dir,
				SinkLimit{Name: "dead", MaxBytes: maxBytes, WhenFull: policy},
				SinkLimit{Name: "live", MaxBytes: 64 << 20, WhenFull: config.Block})
			seg := segmentBytesFor(0, maxBytes)
			dead, live := &switchSink{}, &memSink{}
			dead.down.Store(true)
			cfg := testCfg(policy)
			cfg.BatchSize, cfg.FlushInterval = 120, 0
			od := NewOutput("dead", dead, cfg, b.Cursor("dead"), discard, nil)
			ol := NewOutput("live", live, cfg, b.Cursor("live"), discard, nil)
			od.Start()
			ol.Start()

			// Two feeds at once: "both" goes to both sinks, "solo" only to
			// the live one, and must never wait for the dead one.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var offered atomic.Int64 // points of "both" Append accepted or refused for room
			var maxDisk atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range entries {
					base := 100000 + i*perEntry
					err := b.Append(ctx, &Entry{Feed: "both", Sinks: []string{"dead", "live"}, Points: pts(base, base+perEntry)})
					if errors.Is(err, context.Canceled) {
						return // block: the dead sink is full
					}
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					offered.Add(perEntry)
					maxDisk.Store(max(maxDisk.Load(), diskBytes(t, dir, "dead")))
				}
			})
			soloCtx, soloCancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer soloCancel()
			for i := range entries {
				base := i * perEntry
				if err := b.Append(soloCtx, &Entry{Feed: "solo", Sinks: []string{"live"}, Points: pts(base, base+perEntry)}); err != nil {
					t.Fatalf("a feed routed only to the live sink was held up: %v", err)
				}
			}
			if policy == config.Block {
				// Give the blocked feed time to fill the dead sink's share.
				deadline := time.Now().Add(10 * time.Second)
				for od.Status().BufferedBytes+wal.RecordSize(1000) < maxBytes && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				cancel()
			}
			wg.Wait()

			st := od.Status()
			if got := diskBytes(t, dir, "dead"); got > maxBytes+seg || maxDisk.Load() > maxBytes+seg {
				t.Errorf("the dead sink takes %d bytes on disk (at most %d during the run); bound %d + one segment %d",
					got, maxDisk.Load(), maxBytes, seg)
			}
			if st.BufferedBytes > maxBytes+wal.RecordSize(1000) {
				t.Errorf("the dead sink has %d bytes waiting, bound %d", st.BufferedBytes, maxBytes)
			}
			if got := uint64(st.BufferedPoints) + st.Dropped[ReasonBufferFull]; got != uint64(offered.Load()) {
				t.Errorf("dead sink: %d buffered + %d dropped = %d, want the %d offered",
					st.BufferedPoints, st.Dropped[ReasonBufferFull], got, offered.Load())
			}
			switch policy {
			case config.Block:
				if st.Dropped[ReasonBufferFull] != 0 || offered.Load() >= entries*perEntry {
					t.Errorf("block: dropped %d, accepted %d of %d", st.Dropped[ReasonBufferFull], offered.Load(), entries*perEntry)
				}
			default:
				if st.Dropped[ReasonBufferFull] == 0 || offered.Load() != entries*perEntry {
					t.Errorf("%s: dropped %d, accepted %d of %d", policy, st.Dropped[ReasonBufferFull], offered.Load(), entries*perEntry)
				}
			}

			// The sink comes back: it writes what it kept, each point once.
			dead.down.Store(false)
			closeOutput(t, od)
			closeOutput(t, ol)
			got := dead.ids()
			if len(got)+int(st.Dropped[ReasonBufferFull]) != int(offered.Load()) {
				t.Errorf("dead sink wrote %d after it came back, dropped %d; %d were offered", len(got), st.Dropped[ReasonBufferFull], offered.Load())
			}
			if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
				t.Error("the dead sink wrote some points twice")
			}
			if policy == config.DropOldest && len(got) > 0 && !slices.Contains(got, int64(100000+(entries-1)*perEntry)) {
				t.Error("drop_oldest did not keep the newest points")
			}
			lv := live.ids()
			if len(lv) != entries*perEntry+int(offered.Load()) {
				t.Errorf("live sink wrote %d points, want %d", len(lv), entries*perEntry+int(offered.Load()))
			}
			if n := od.Status().Dropped[ReasonBufferFull]; n != st.Dropped[ReasonBufferFull] {
				t.Errorf("dropped changed to %d after the sink came back", n)
			}
		})
	}
}

// drop_oldest moves the cursor of a sink that never writes past the batch
// its output has in hand: that batch is kept apart, survives a restart,
// and is written first when the sink is back. Nothing is lost or counted
// twice.
func TestKeptApartBatchSurvivesARestart(t *testing.T) {
	const maxBytes = 64 << 10
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "s", MaxBytes: maxBytes, WhenFull: config.DropOldest}}
	b := openTestBuffer(t, dir, limits...)
	dead := &switchSink{}
	dead.down.Store(true)
	cfg := testCfg(config.DropOldest)
	cfg.BatchSize, cfg.FlushInterval = 100, 0
	o := NewOutput("s", dead, cfg, b.Cursor("s"), discard, nil)
	o.Start()
	// The first entry becomes the output's batch; wait until it is in hand.
	if err := appendPts(t, b, []string{"s"}, 0, 100); err != nil {
		t.Fatal(err)
	}
	for !b.Cursor("s").uncommitted() {
		time.Sleep(time.Millisecond)
	}
	const total = 400 * 100
	for i := 1; i < total/100; i++ {
		if err := appendPts(t, b, []string{"s"}, 100*i, 100*i+100); err != nil {
			t.Fatal(err)
		}
	}
	st := o.Status()
	if st.Dropped[ReasonBufferFull] == 0 {
		t.Fatal("nothing was dropped")
	}
	if got := diskBytes(t, dir, "s"); got > maxBytes+segmentBytesFor(0, maxBytes) {
		t.Errorf("the sink takes %d bytes on disk; bound %d", got, maxBytes)
	}
	if _, err := os.Stat(filepath.Join(dir, "sinks", "s", "kept")); err != nil {
		t.Fatalf("the batch in hand was not kept apart: %v", err)
	}
	// A hard stop: the output gives up its batch, the agent exits.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.Close(ctx)
	b.Close()

	b, rep, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !slices.Equal(rep.KeptApartAgain, []string{"s"}) {
		t.Errorf("recovery report: kept apart %v", rep.KeptApartAgain)
	}
	back := &memSink{}
	o = NewOutput("s", back, cfg, b.Cursor("s"), discard, nil)
	o.Start()
	closeOutput(t, o)
	got := back.ids()
	if len(got) < 100 || !slices.Equal(got[:100], seq(0, 100)) {
		t.Fatalf("the kept batch was not written first: %v...", got[:min(len(got), 5)])
	}
	if len(got)+int(st.Dropped[ReasonBufferFull]) != total {
		t.Errorf("wrote %d, dropped %d; %d were appended", len(got), st.Dropped[ReasonBufferFull], total)
	}
	if !slices.Contains(got, total-1) {
		t.Error("the newest point was not kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "sinks", "s", "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the written kept batch was not removed: %v", err)
	}
}

// An empty or garbled cursor file (what a power loss can leave) does not
// stop the buffer from opening: the sink starts again from the oldest
// entry its log holds.
func TestDamagedCursorFileReplaysFromTheOldestEntry(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":   {},
		"garbled": []byte("\x00\x01garbage that is no cursor at all, two slots long or more....."),
		"short":   {0x52, 0x55, 0x43},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			limits := []SinkLimit{{Name: "s", MaxBytes: 1 << 20}}
			b := openTestBuffer(t, dir, limits...)
			for i := range 3 {
				if err := appendPts(t, b, []string{"s"}, 10*i, 10*i+10); err != nil {
					t.Fatal(err)
				}
			}
			sink := &memSink{}
			o := NewOutput("s", sink, testCfg(config.Block), b.Cursor("s"), discard, nil)
			o.Start()
			closeOutput(t, o)
			b.Close()
			if err := os.WriteFile(filepath.Join(dir, "sinks", "s", "cursor"), content, 0o644); err != nil {
				t.Fatal(err)
			}
			b, rep, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
			if err != nil {
				t.Fatalf("open with a damaged cursor: %v", err)
			}
			defer b.Close()
			if len(rep.DamagedFiles) != 1 {
				t.Errorf("damaged files reported: %v", rep.DamagedFiles)
			}
			again := &memSink{}
			o = NewOutput("s", again, testCfg(config.Block), b.Cursor("s"), discard, nil)
			o.Start()
			closeOutput(t, o)
			if got := again.ids(); !slices.Equal(got, seq(0, 30)) {
				t.Errorf("after the damaged cursor, wrote %v; want the log from its start", got)
			}
		})
	}
}

// A damaged positions.json (or measurements.json) is reported and done
// without.
func TestDamagedStateFilesAreDoneWithout(t *testing.T) {
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "s", MaxBytes: 1 << 20}}
	b := openTestBuffer(t, dir, limits...)
	if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"s"}, Position: sluice.Position("p1"), Points: pts(0, 1)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for _, f := range []string{"positions.json", "measurements.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{\"trunc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, rep, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(rep.DamagedFiles) != 2 {
		t.Errorf("damaged files: %v", rep.DamagedFiles)
	}
	if got := string(b.Position("f")); got != "p1" {
		t.Errorf("position = %q, want the one the log holds", got)
	}
}

// A crash between the appends of one entry to two sinks' logs leaves it
// in one: the feed resumes from before it, so the sink that lacks it gets
// it again from the source.
func TestEntryMissingFromOneLogResumesBeforeIt(t *testing.T) {
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "a", MaxBytes: 1 << 20}, {Name: "b", MaxBytes: 1 << 20}}
	b := openTestBuffer(t, dir, limits...)
	for i := range 3 {
		e := &Entry{Feed: "f", Sinks: []string{"a", "b"}, Position: sluice.Position(fmt.Sprint(i)), Points: pts(i, i+1)}
		if err := b.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	// Entries routed to a alone do not make b short.
	if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"a"}, Position: sluice.Position("3"), Points: pts(3, 4)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openTestBuffer(t, dir, limits...)
	if got := string(b.Position("f")); got != "3" {
		t.Fatalf("position = %q, want 3 (b was never meant to get entry 3)", got)
	}
	b.Close()

	// Take entry 2 (position "2") from b's log, as a crash between its two
	// appends would have.
	segs, _ := filepath.Glob(filepath.Join(dir, "sinks", "b", "log", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	raw, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	last, _ := appendEntry(nil, &Entry{Feed: "f", Position: sluice.Position("2"), Points: pts(2, 3)}, 3, []string{"a", "b"})
	if err := os.WriteFile(segs[0], raw[:len(raw)-int(wal.RecordSize(len(last)))], 0o644); err != nil {
		t.Fatal(err)
	}
	b = openTestBuffer(t, dir, limits...)
	if got := string(b.Position("f")); got != "1" {
		t.Fatalf("position = %q, want 1: b lacks the entry of position 2", got)
	}
}

// What the buffer keeps in memory does not grow with a sink's backlog:
// 20 000 entries with a 4 KiB position each wait for a sink that never
// writes, and neither appending them nor opening the buffer on them takes
// memory in proportion (each position kept would be 80 MiB).
func TestMemoryDoesNotGrowWithTheBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MiB")
	}
	const entries, posBytes = 20000, 4 << 10
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "down", MaxBytes: 1 << 30}, {Name: "up", MaxBytes: 1 << 30}}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	b, _, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	up := &memSink{}
	o := NewOutput("up", up, testCfg(config.Block), b.Cursor("up"), discard, nil)
	o.Start()
	for i := range entries {
		pos := make(sluice.Position, posBytes)
		pos[0], pos[1] = byte(i), byte(i>>8)
		if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"down", "up"}, Position: pos, Points: pts(i, i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	closeOutput(t, o)
	grown := int64(heap()) - int64(before)
	t.Logf("heap grew %d KiB with %d entries waiting", grown>>10, entries)
	if grown > 16<<20 {
		t.Errorf("heap grew %d MiB with %d entries of a %d-byte position waiting for a sink", grown>>20, entries, posBytes)
	}
	b.Close()

	before = heap()
	b, _, err = OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	grown = int64(heap()) - int64(before)
	t.Logf("opening the backlog took %d KiB of heap", grown>>10)
	if grown > 16<<20 {
		t.Errorf("opening a buffer with %d entries waiting took %d MiB of heap", entries, grown>>20)
	}
	if st := b.Cursor("down").status(); st.PendingPoints != entries {
		t.Errorf("after reopening, %d points wait for the sink, want %d", st.PendingPoints, entries)
	}
	if p := b.Position("f"); len(p) != posBytes || p[0] != byte((entries-1)&0xff) || p[1] != byte((entries-1)>>8) {
		t.Error("the feed does not resume from its newest position")
	}
}

// cutLastEntries cuts the newest n records from a sink's only segment, as
// a power loss before the log's group commit reached them would.
func cutLastEntries(t *testing.T, dir, sink string, n int) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "sinks", sink, "log", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments of %s: %v", sink, segs)
	}
	l, _, err := wal.Open(filepath.Dir(segs[0]), wal.Options{Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	keep := l.SizeFrom(l.FirstIndex()) - l.SizeFrom(l.LastIndex()+1-uint64(n))
	l.Close()
	if err := os.Truncate(segs[0], keep); err != nil {
		t.Fatal(err)
	}
}

// A feed that resumed from behind a sink's newest position (another sink
// lacked the entries after it) has the source send those entries again,
// under new sequence numbers. Until a position comes with them, the feed
// is no further than where it resumed, even though a sink still holds
// the older entries' newer positions with lower sequence numbers: a
// restart in between must not resume from those and skip, for the sink
// that lacked them, what the source had not yet sent again.
func TestResumeAfterGoingBackIgnoresPositionsFromBeforeIt(t *testing.T) {
	dir := t.TempDir()
	limits := []SinkLimit{{Name: "a", MaxBytes: 1 << 20}, {Name: "b", MaxBytes: 1 << 20}}
	ab := []string{"a", "b"}
	appendAt := func(b *Buffer, pos string, from, to int) {
		t.Helper()
		e := &Entry{Feed: "f", Sinks: ab, Points: pts(from, to)}
		if pos != "" {
			e.Position = sluice.Position(pos)
		}
		if err := b.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	wantAt := func(b *Buffer, want, why string) {
		t.Helper()
		if got := string(b.Position("f")); got != want {
			t.Fatalf("position %q, want %s: %s", got, want, why)
		}
	}
	b := openTestBuffer(t, dir, limits...)
	appendAt(b, "1", 0, 10)  // entry 1
	appendAt(b, "", 10, 20)  // entry 2
	appendAt(b, "3", 20, 30) // entry 3
	appendAt(b, "", 30, 40)  // entry 4
	b.Close()

	// b loses entries 3 and 4: the feed goes back to position 1.
	cutLastEntries(t, dir, "b", 2)
	b = openTestBuffer(t, dir, limits...)
	wantAt(b, "1", "b lacks the entries after it")
	// The source sends again what came after position 1 (entry 5); the
	// agent is killed before the batch that carries a position again
	// (the copy is what a kill leaves: no Close saves anything).
	appendAt(b, "", 10, 20)
	killed := t.TempDir()
	copyDir(t, dir, killed)
	b.Close()
	dir = killed

	b = openTestBuffer(t, dir, limits...)
	wantAt(b, "1", "b has not been sent again what position 3 covers")
	if got, _ := b.Settled("f"); got != nil && string(got) != "1" {
		t.Fatalf("settled %q, want at most 1", got)
	}
	// Once a position comes with the entries sent again, it is where the
	// feed resumes.
	appendAt(b, "", 20, 30)
	appendAt(b, "3", 30, 40)
	b.Close()
	b = openTestBuffer(t, dir, limits...)
	wantAt(b, "3", "it came after going back")
	b.Close()

	// Going back again, further than the first time, and a restart before
	// a new position: the positions from before either time are ignored.
	cutLastEntries(t, dir, "b", 4)
	b = openTestBuffer(t, dir, limits...)
	wantAt(b, "1", "b lacks entries 5 to 8")
	appendAt(b, "", 10, 20)
	b.Close()
	b = openTestBuffer(t, dir, limits...)
	defer b.Close()
	wantAt(b, "1", "after going back twice")
}

// copyDir copies the regular files under src to dst, as a killed agent
// left them.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
