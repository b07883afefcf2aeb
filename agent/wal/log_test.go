package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRoundTripAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{SegmentBytes: 2048, Sync: SyncNever})
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("empty log: first %d last %d, want 1 0", l.FirstIndex(), l.LastIndex())
	}
	const n = 3000
	appendRange(t, l, 1, n)
	if files := segmentFiles(t, dir); len(files) < 100 {
		t.Fatalf("%d segment files, want many rolls", len(files))
	}
	if l.FirstIndex() != 1 || l.LastIndex() != n {
		t.Fatalf("first %d last %d, want 1 %d", l.FirstIndex(), l.LastIndex(), n)
	}
	if got, want := l.Size(), dirSize(t, dir); got != want {
		t.Fatalf("Size %d, files hold %d", got, want)
	}
	checkRecords(t, readAll(t, l, 1), seq(1, n))
	checkRecords(t, readAll(t, l, 1777), seq(1777, n))
	checkRecords(t, readAll(t, l, n+1), nil)
}

func TestRecordLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{SegmentBytes: 64, Sync: SyncNever})
	appendRange(t, l, 1, 20) // every record is over 64 bytes: one a segment
	if files := segmentFiles(t, dir); len(files) != 20 {
		t.Fatalf("%d segment files, want 20", len(files))
	}
	big := make([]byte, readChunk*3+5)
	for k := range big {
		big[k] = byte(k)
	}
	if _, err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l, 20)
	if len(recs) != 2 || string(recs[1].payload) != string(big) {
		t.Fatalf("large record did not read back")
	}
	if _, err := l.Append(make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append over MaxPayload: %v, want ErrTooLarge", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncNever, SyncAlways} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, Options{SegmentBytes: 4096, Sync: policy})
			const writers, each = 8, 150
			got := make([][]uint64, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for k := range each {
						i, err := l.Append(fmt.Appendf(nil, "w%d-%d", w, k))
						if err != nil {
							t.Error(err)
							return
						}
						got[w] = append(got[w], i)
					}
				})
			}
			wg.Wait()
			owner := map[uint64]string{}
			for w, idx := range got {
				if !slices.IsSorted(idx) {
					t.Fatalf("writer %d saw indexes out of order", w)
				}
				for k, i := range idx {
					if prev, dup := owner[i]; dup {
						t.Fatalf("index %d given twice (%s)", i, prev)
					}
					owner[i] = fmt.Sprintf("w%d-%d", w, k)
				}
			}
			if len(owner) != writers*each || l.LastIndex() != writers*each {
				t.Fatalf("%d indexes, last %d, want %d", len(owner), l.LastIndex(), writers*each)
			}
			for _, r := range readAll(t, l, 1) {
				if string(r.payload) != owner[r.index] {
					t.Fatalf("index %d holds %q, Append returned it for %q", r.index, r.payload, owner[r.index])
				}
			}
		})
	}
}

func TestReaderSeesLaterAppends(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), Options{SegmentBytes: 1024, Sync: SyncNever})
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := uint64(1)
	for round := range 20 {
		if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: caught-up reader got %v, want io.EOF", round, err)
		}
		n := uint64(round%4 + 1) // 1 to 4 records, so rolls happen between reads
		appendRange(t, l, next, next+n-1)
		for ; n > 0; n-- {
			i, p, err := r.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if i != next || string(p) != string(payloadFor(next)) {
				t.Fatalf("got %d %q, want %d", i, p, next)
			}
			next++
		}
	}
	// A reader made at LastIndex+1 sees what comes next too.
	r2, err := l.NewReader(next)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	appendRange(t, l, next, next+30)
	recs := []record{}
	for {
		i, p, err := r2.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, record{i, slices.Clone(p)})
	}
	checkRecords(t, recs, seq(next, next+30))
}

func TestNotify(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), Options{Sync: SyncNever})
	ch := l.Notify()
	select {
	case <-ch:
		t.Fatal("Notify channel closed before any Append")
	default:
	}
	if l.Notify() != ch {
		t.Fatal("Notify before an Append returned a new channel")
	}
	appendRange(t, l, 1, 1)
	select {
	case <-ch:
	default:
		t.Fatal("Notify channel still open after Append")
	}

	// A consumer that waits on Notify gets every record.
	const n = 500
	done := make(chan []record)
	go func() {
		r, err := l.NewReader(2)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		defer r.Close()
		var got []record
		for len(got) < n {
			wake := l.Notify()
			for {
				i, p, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Error(err)
					close(done)
					return
				}
				got = append(got, record{i, slices.Clone(p)})
			}
			if len(got) < n {
				<-wake
			}
		}
		done <- got
	}()
	appendRange(t, l, 2, n+1)
	select {
	case got := <-done:
		checkRecords(t, got, seq(2, n+1))
	case <-time.After(10 * time.Second):
		t.Fatal("consumer waiting on Notify did not get every record")
	}

	ch = l.Notify()
	l.Close()
	select {
	case <-ch:
	default:
		t.Fatal("Close did not wake a Notify waiter")
	}
	select {
	case <-l.Notify():
	default:
		t.Fatal("Notify after Close returned an open channel")
	}
}

// fixedPayload makes every record exactly 100 bytes on disk.
func fixedPayload(i uint64) []byte { return fmt.Appendf(nil, "%084d", i) }

func TestTruncateFrontAndSizeFrom(t *testing.T) {
	dir := t.TempDir()
	// 100-byte records, 10 to a 1000-byte segment: 1-10, 11-20, ..., 91-95.
	l, _ := openLog(t, dir, Options{SegmentBytes: 1000, Sync: SyncNever})
	for i := uint64(1); i <= 95; i++ {
		if _, err := l.Append(fixedPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkSizes := func(first, last uint64) {
		t.Helper()
		if got, want := l.Size(), int64(last-first+1)*100; got != want {
			t.Fatalf("Size %d, want %d", got, want)
		}
		if got, want := l.Size(), dirSize(t, dir); got != want {
			t.Fatalf("Size %d, files hold %d", got, want)
		}
		for i := uint64(0); i <= last+2; i++ {
			want := int64(0)
			if i <= last {
				want = int64(last-max(i, first)+1) * 100
			}
			if got := l.SizeFrom(i); got != want {
				t.Fatalf("SizeFrom(%d) = %d, want %d", i, got, want)
			}
		}
	}
	checkSizes(1, 95)

	early, err := l.NewReader(5) // holds segment 1 open
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	if err := l.TruncateFront(35); err != nil {
		t.Fatal(err)
	}
	want := []string{segmentName(31), segmentName(41), segmentName(51), segmentName(61), segmentName(71), segmentName(81), segmentName(91)}
	if got := segmentFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files after TruncateFront(35): %v, want %v", got, want)
	}
	if l.FirstIndex() != 31 || l.LastIndex() != 95 {
		t.Fatalf("first %d last %d, want 31 95", l.FirstIndex(), l.LastIndex())
	}
	checkSizes(31, 95)
	if _, err := l.NewReader(30); !errors.Is(err, ErrCompacted) {
		t.Fatalf("NewReader(30): %v, want ErrCompacted", err)
	}
	checkRecordsFixed(t, l, 31, 95)

	// The early reader finishes the removed segment it has open, then
	// finds the next one gone.
	for i := uint64(5); i <= 10; i++ {
		got, p, err := early.Next()
		if err != nil || got != i || string(p) != string(fixedPayload(i)) {
			t.Fatalf("early reader: %d %q %v, want %d", got, p, err, i)
		}
	}
	if _, _, err := early.Next(); !errors.Is(err, ErrCompacted) {
		t.Fatalf("early reader past its segment: %v, want ErrCompacted", err)
	}

	if err := l.TruncateFront(35); err != nil { // nothing more to drop
		t.Fatal(err)
	}
	if err := l.TruncateFront(1 << 40); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []string{segmentName(91)}) {
		t.Fatalf("files after TruncateFront past the end: %v, want only the active segment", got)
	}
	checkSizes(91, 95)
	for i := uint64(96); i <= 120; i++ {
		if _, err := l.Append(fixedPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkSizes(91, 120)
	checkRecordsFixed(t, l, 91, 120)

	// Reopening keeps FirstIndex and LastIndex.
	l.Close()
	l2, rec := openLog(t, dir, Options{SegmentBytes: 1000})
	if l2.FirstIndex() != 91 || l2.LastIndex() != 120 || !isZero(rec) {
		t.Fatalf("reopen: first %d last %d recovery %+v, want 91 120 none", l2.FirstIndex(), l2.LastIndex(), rec)
	}
}

func checkRecordsFixed(t *testing.T, l *Log, first, last uint64) {
	t.Helper()
	recs := readAll(t, l, first)
	if uint64(len(recs)) != last-first+1 {
		t.Fatalf("read %d records, want %d", len(recs), last-first+1)
	}
	for k, r := range recs {
		if r.index != first+uint64(k) || string(r.payload) != string(fixedPayload(r.index)) {
			t.Fatalf("record %d: index %d payload %q", k, r.index, r.payload)
		}
	}
}

func isZero(r Recovery) bool {
	return r.TruncatedBytes == 0 && r.TruncatedRecords == 0 && len(r.Quarantined) == 0 && r.SkippedBytes == 0 && r.LostRecords == 0
}

func TestReopenContinues(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rec := openLog(t, dir, Options{}) // an empty log reopens empty
	if l.FirstIndex() != 1 || l.LastIndex() != 0 || !isZero(rec) {
		t.Fatalf("empty reopen: first %d last %d %+v", l.FirstIndex(), l.LastIndex(), rec)
	}
	for round := range 4 {
		from := l.LastIndex() + 1
		appendRange(t, l, from, from+99)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, rec = openLog(t, dir, Options{SegmentBytes: 3000, Sync: SyncNever})
		if !isZero(rec) {
			t.Fatalf("round %d: clean reopen reported %+v", round, rec)
		}
		if l.FirstIndex() != 1 || l.LastIndex() != from+99 {
			t.Fatalf("round %d: first %d last %d, want 1 %d", round, l.FirstIndex(), l.LastIndex(), from+99)
		}
	}
	checkRecords(t, readAll(t, l, 1), seq(1, 400))
}

func TestSyncPolicies(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			syncs := 0
			synced := make(chan struct{}, 100)
			tick := make(chan time.Time)
			h := hooks{
				sync: func(f *os.File) error {
					mu.Lock()
					syncs++
					mu.Unlock()
					select {
					case synced <- struct{}{}:
					default:
					}
					return f.Sync()
				},
				tick: tick,
			}
			count := func() int { mu.Lock(); defer mu.Unlock(); return syncs }
			drain := func() {
				for len(synced) > 0 {
					<-synced
				}
			}
			l, _ := openHooked(t, dir, Options{SegmentBytes: 1 << 20, Sync: policy}, h)
			drain()
			before := count()
			appendRange(t, l, 1, 10)
			switch policy {
			case SyncAlways:
				if got := count() - before; got != 10 {
					t.Fatalf("%d fsyncs for 10 sequential appends, want 10", got)
				}
			case SyncInterval:
				if got := count() - before; got != 0 {
					t.Fatalf("%d fsyncs before the timer fired, want 0", got)
				}
				drain()
				tick <- time.Now()
				<-synced
				tick <- time.Now() // nothing new: no fsync
				tick <- time.Now() // a receive after the previous tick's work
				if got := count() - before; got != 1 {
					t.Fatalf("%d fsyncs after ticks, want 1", got)
				}
			case SyncNever:
				if got := count() - before; got != 0 {
					t.Fatalf("%d fsyncs, want 0", got)
				}
			}
			l.mu.Lock()
			durable := l.synced
			l.mu.Unlock()
			if policy != SyncNever && durable != 10 {
				t.Fatalf("synced up to %d, want 10", durable)
			}
			before = count()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if policy == SyncNever && count()-before != 1 {
				t.Fatalf("Close did %d fsyncs, want 1", count()-before)
			}
			l, rec := openLog(t, dir, Options{Sync: policy})
			if !isZero(rec) {
				t.Fatalf("reopen: %+v", rec)
			}
			checkRecords(t, readAll(t, l, 1), seq(1, 10))
		})
	}
}

func TestSyncNeverSyncsOnRoll(t *testing.T) {
	syncs := 0
	h := hooks{sync: func(f *os.File) error { syncs++; return f.Sync() }}
	l, _ := openHooked(t, t.TempDir(), Options{SegmentBytes: 1000, Sync: SyncNever}, h)
	syncs = 0
	for i := uint64(1); i <= 25; i++ { // 10 records a segment: two rolls
		if _, err := l.Append(fixedPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if syncs != 2 {
		t.Fatalf("%d fsyncs for two rolls, want 2", syncs)
	}
}

func TestCloseIdempotent(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), Options{})
	appendRange(t, l, 1, 3)
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := l.NewReader(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewReader after Close: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := l.TruncateFront(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("TruncateFront after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Reader.Close: %v", err)
	}
	if _, _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Reader.Close: %v", err)
	}
}

func TestOneLogPerDirectory(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{})
	if _, _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of an open directory succeeded")
	}
	l.Close()
	l2, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

func TestInvalidOptions(t *testing.T) {
	if _, _, err := Open(t.TempDir(), Options{Sync: "sometimes"}); err == nil {
		t.Fatal("Open with an unknown sync policy succeeded")
	}
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	full := false
	h := hooks{writeAt: func(f *os.File, b []byte, off int64) (int, error) {
		if full { // write part of the record, as a filling disk does
			n, _ := f.WriteAt(b[:len(b)/2], off)
			return n, syscall.ENOSPC
		}
		return f.WriteAt(b, off)
	}}
	l, _ := openHooked(t, dir, Options{SegmentBytes: 1000, Sync: SyncAlways}, h)
	appendRange(t, l, 1, 12)
	size := l.Size()
	full = true
	for range 3 {
		if _, err := l.Append(payloadFor(13)); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append on a full disk: %v, want ENOSPC", err)
		}
	}
	if l.LastIndex() != 12 || l.Size() != size || dirSize(t, dir) != size {
		t.Fatalf("after failed appends: last %d size %d files %d, want 12 %d", l.LastIndex(), l.Size(), dirSize(t, dir), size)
	}
	full = false
	appendRange(t, l, 13, 30)
	checkRecords(t, readAll(t, l, 1), seq(1, 30))
	l.Close()
	l, rec := openLog(t, dir, Options{})
	if !isZero(rec) || l.LastIndex() != 30 {
		t.Fatalf("reopen: last %d %+v, want 30 and no repairs", l.LastIndex(), rec)
	}
}

func TestFailedSyncIsSticky(t *testing.T) {
	dir := t.TempDir()
	broken := false
	h := hooks{sync: func(f *os.File) error {
		if broken {
			return syscall.EIO
		}
		return f.Sync()
	}}
	l, _ := openHooked(t, dir, Options{Sync: SyncAlways}, h)
	appendRange(t, l, 1, 5)
	broken = true
	if _, err := l.Append(payloadFor(6)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing fsync: %v, want EIO", err)
	}
	broken = false // a later fsync that works proves nothing
	if _, err := l.Append(payloadFor(7)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after a failed fsync: %v, want the sticky EIO", err)
	}
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync after a failed fsync: %v, want EIO", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close after a failed fsync: %v, want EIO", err)
	}
	// Reopening goes on from what is on disk: record 6 was written.
	l, _ = openLog(t, dir, Options{})
	if l.LastIndex() != 6 {
		t.Fatalf("reopen: last %d, want 6", l.LastIndex())
	}
	appendRange(t, l, 7, 8)
}

func TestNewReaderRange(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), Options{})
	appendRange(t, l, 1, 5)
	if _, err := l.NewReader(7); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("NewReader(7) with last 5: %v, want ErrOutOfRange", err)
	}
	if _, err := l.NewReader(0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("NewReader(0): %v, want ErrCompacted", err)
	}
}

func TestReaderDetectsLaterCorruption(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{Sync: SyncNever})
	appendRange(t, l, 1, 5)
	// Flip a payload byte of record 3 behind the Log's back.
	path := filepath.Join(dir, segmentName(1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i := uint64(1); i < 3; i++ {
		off += recordSize(len(payloadFor(i)))
	}
	b[off+headerSize+1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 1; i <= 2; i++ {
		if _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Next on a changed record: %v, want ErrCorrupt", err)
	}
	checkRecords(t, readAll(t, l, 4), seq(4, 5))
}

// TestEverythingAtOnce runs appenders, a tailing reader, the sync timer
// and TruncateFront behind the reader together, for the race detector and
// to check the reader sees every index once, in order.
func TestEverythingAtOnce(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), Options{SegmentBytes: 4096, Sync: SyncInterval, SyncInterval: time.Millisecond})
	const writers, each = 4, 300
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := l.Append(make([]byte, 100)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	readerDone := make(chan error, 1)
	go func() {
		r, err := l.NewReader(1)
		if err != nil {
			readerDone <- err
			return
		}
		defer r.Close()
		want := uint64(1)
		for want <= writers*each {
			wake := l.Notify()
			for {
				i, _, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					readerDone <- err
					return
				}
				if i != want {
					readerDone <- fmt.Errorf("reader got %d, want %d", i, want)
					return
				}
				want++
				if want%50 == 0 {
					if err := l.TruncateFront(want); err != nil {
						readerDone <- err
						return
					}
				}
			}
			if want <= writers*each {
				<-wake
			}
		}
		readerDone <- nil
	}()
	wg.Wait()
	select {
	case err := <-readerDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reader did not reach the end")
	}
	if l.FirstIndex() <= 1 || l.SizeFrom(l.FirstIndex()) != l.Size() {
		t.Fatalf("first %d, SizeFrom(first) %d, Size %d", l.FirstIndex(), l.SizeFrom(l.FirstIndex()), l.Size())
	}
}

// A gap that skipped or set-aside records left is no compaction: once
// TruncateFront removed what comes before the gap, a reader at an index
// in the gap (the cursor of a sink that read everything before it) jumps
// to the records after it, and only indexes really removed are
// ErrCompacted.
func TestReaderCrossesAGapAtTheFront(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, Options{SegmentBytes: 2 << 10, Sync: SyncNever})
	appendRange(t, l, 1, 60)
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("want at least 4 segments, got %v", segs)
	}
	l.Close()
	// Take the second segment away: a gap between the first and third.
	second, _ := parseSegmentName(segs[1])
	third, _ := parseSegmentName(segs[2])
	if err := os.Remove(filepath.Join(dir, segs[1])); err != nil {
		t.Fatal(err)
	}
	l, _ = openLog(t, dir, Options{SegmentBytes: 2 << 10, Sync: SyncNever})

	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := uint64(1); i < second; i++ {
		if idx, _, err := r.Next(); err != nil || idx != i {
			t.Fatalf("Next = %d, %v; want %d", idx, err, i)
		}
	}
	// What was read goes; the reader's next index is in the gap.
	if err := l.TruncateFront(second); err != nil {
		t.Fatal(err)
	}
	if idx, _, err := r.Next(); err != nil || idx != third {
		t.Fatalf("after the front was removed, Next = %d, %v; want %d (past the gap)", idx, err, third)
	}
	r2, err := l.NewReader(second)
	if err != nil {
		t.Fatalf("a reader in the gap: %v", err)
	}
	defer r2.Close()
	if idx, _, err := r2.Next(); err != nil || idx != third {
		t.Fatalf("a reader in the gap: Next = %d, %v; want %d", idx, err, third)
	}
	if _, err := l.NewReader(second - 1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a reader at a removed index: %v, want ErrCompacted", err)
	}
}
