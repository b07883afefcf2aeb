package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"
)

// SyncPolicy says when appended records are fsynced; doc.go says what
// each one survives.
type SyncPolicy string

const (
	SyncAlways   SyncPolicy = "always"   // fsync before Append returns (grouped across concurrent appenders)
	SyncInterval SyncPolicy = "interval" // a background fsync every SyncInterval
	SyncNever    SyncPolicy = "never"    // fsync only when a segment is sealed and on Close
)

// Defaults for the zero Options.
const (
	DefaultSegmentBytes = 16 << 20
	DefaultSyncInterval = 100 * time.Millisecond
)

// Options configure a Log. The zero value is usable.
type Options struct {
	SegmentBytes int64         // roll to a new segment past this size; default 16 MiB, at most 256 MiB
	Sync         SyncPolicy    // default SyncInterval
	SyncInterval time.Duration // default 100ms (group commit)
	Logger       *slog.Logger  // may be nil
}

func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	o.SegmentBytes = min(o.SegmentBytes, maxSegmentBytes)
	switch o.Sync {
	case "":
		o.Sync = SyncInterval
	case SyncAlways, SyncInterval, SyncNever:
	default:
		return o, fmt.Errorf("wal: unknown sync policy %q (want %q, %q or %q)", o.Sync, SyncAlways, SyncInterval, SyncNever)
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

var (
	// ErrClosed is returned by every method of a closed Log, and by Next
	// once the Log or the Reader is closed.
	ErrClosed = errors.New("wal: closed")
	// ErrCompacted means the records asked for were removed by
	// TruncateFront.
	ErrCompacted = errors.New("wal: index compacted away")
	// ErrOutOfRange means NewReader was asked to start past LastIndex+1.
	// After a power loss with SyncInterval or SyncNever, LastIndex can be
	// lower than a cursor saved before it; clamp such a cursor.
	ErrOutOfRange = errors.New("wal: index past the end of the log")
	// ErrTooLarge is returned by Append for a payload over MaxPayload.
	ErrTooLarge = errors.New("wal: payload too large")
	// ErrCorrupt is returned by Reader.Next for a record that no longer
	// matches its checksum (the disk changed it after Open checked it).
	// Reading on from the next index is possible with a new Reader.
	ErrCorrupt = errors.New("wal: corrupt record")
)

// hooks let tests fail writes and fsyncs and drive the sync timer.
type hooks struct {
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	sync    func(f *os.File) error
	tick    <-chan time.Time // replaces the SyncInterval ticker
}

// Log is an append-only record log in a directory of segment files.
//
// Open repairs and opens it and, with SyncInterval, starts the goroutine
// that fsyncs it; Close syncs, stops that goroutine and releases the
// directory. All methods are safe for concurrent use.
type Log struct {
	dir   string
	opts  Options
	log   *slog.Logger
	hooks hooks
	lock  *os.File // holds the directory lock

	// Lock order: truncMu, syncMu, mu.
	truncMu sync.Mutex // serializes TruncateFront's file removals with Close
	syncMu  sync.Mutex // one fsync of the active segment at a time: group commit
	mu      sync.Mutex

	// Guarded by mu.
	segs []*segment // oldest first; the last one is active
	// compacted: every index below it was removed by TruncateFront (or
	// before Open). Between it and segs[0].first lies a gap that set-aside
	// or skipped records left, which readers jump over.
	compacted uint64
	f         *os.File // the active segment, open for writing
	last      uint64   // index of the newest record
	synced    uint64   // records up to this index are on stable storage
	size      int64    // sum of the segments' sizes
	wbuf      []byte   // encoding buffer for Append
	notify    chan struct{}
	failed    error // sticky: an fsync failed or a failed write could not be undone
	closed    bool

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// maxKeptBuffer bounds the encoding and read buffers kept between calls;
// a larger record gets a buffer of its own that is dropped afterwards.
const maxKeptBuffer = 1 << 20

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Open opens the log in dir, creating dir if needed, and repairs what it
// finds (see Recovery). It fails only on I/O errors, on permissions, when
// another Log has dir open, or for invalid Options; never because of what
// the segment files contain.
func Open(dir string, opts Options) (*Log, Recovery, error) {
	return open(dir, opts, hooks{})
}

func open(dir string, opts Options, h hooks) (*Log, Recovery, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, Recovery{}, err
	}
	if h.writeAt == nil {
		h.writeAt = func(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
	}
	if h.sync == nil {
		h.sync = (*os.File).Sync
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, Recovery{}, fmt.Errorf("wal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, Recovery{}, err
	}
	l := &Log{dir: dir, opts: opts, log: opts.Logger, hooks: h, lock: lock, stop: make(chan struct{})}
	rec, err := l.recover()
	if err != nil {
		lock.Close()
		return nil, rec, err
	}
	if opts.Sync == SyncInterval {
		tick := h.tick
		var t *time.Ticker
		if tick == nil {
			t = time.NewTicker(opts.SyncInterval)
			tick = t.C
		}
		l.wg.Go(func() {
			if t != nil {
				defer t.Stop()
			}
			l.syncLoop(tick)
		})
	}
	return l, rec, nil
}

// syncLoop fsyncs the active segment at each tick if anything was
// appended since the last fsync.
func (l *Log) syncLoop(tick <-chan time.Time) {
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
		}
		l.mu.Lock()
		dirty := l.synced < l.last && l.failed == nil && !l.closed
		last := l.last
		l.mu.Unlock()
		if !dirty {
			continue
		}
		if err := l.syncUpTo(last); err != nil && !errors.Is(err, ErrClosed) {
			// Nobody is waiting for this error: Appends return it from now on.
			l.log.Error("wal: background sync failed; the log refuses appends until reopened", "dir", l.dir, "err", err)
		}
	}
}

// Append writes payload as the record with the next index and returns
// that index. The record is in the kernel when Append returns (one
// pwrite); with SyncAlways it is also on stable storage. On error nothing
// was appended, except after a failed fsync with SyncAlways: the record
// may then be visible to readers but is not acknowledged, and the log
// refuses further appends until reopened.
func (l *Log) Append(payload []byte) (uint64, error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), MaxPayload)
	}
	l.mu.Lock()
	index, err := l.appendLocked(payload)
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if l.opts.Sync == SyncAlways {
		if err := l.syncUpTo(index); err != nil {
			return 0, err
		}
	}
	return index, nil
}

func (l *Log) appendLocked(payload []byte) (uint64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if l.failed != nil {
		return 0, l.failed
	}
	index := l.last + 1
	n := int64(recordSize(len(payload)))
	s := l.segs[len(l.segs)-1]
	if s.count() > 0 && s.size()+n > l.opts.SegmentBytes {
		if err := l.roll(); err != nil {
			return 0, err
		}
		s = l.segs[len(l.segs)-1]
	}
	l.wbuf = appendRecord(l.wbuf[:0], index, payload)
	off := s.size()
	w, err := l.hooks.writeAt(l.f, l.wbuf, off)
	if cap(l.wbuf) > maxKeptBuffer {
		l.wbuf = nil
	}
	if err != nil {
		err = fmt.Errorf("wal: append %d to %s: %w", index, s.path, err)
		if w > 0 {
			// Cut the partial record so the next append lands right after
			// the last whole one.
			if terr := l.f.Truncate(off); terr != nil {
				return 0, l.fail(errors.Join(err, fmt.Errorf("wal: undo partial append: %w", terr)))
			}
		}
		return 0, err
	}
	s.ends = append(s.ends, uint32(off+n))
	l.last = index
	l.size += n
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
	return index, nil
}

// roll seals the active segment (fsync, whatever the policy) and starts a
// new one at the next index. Called with mu held.
func (l *Log) roll() error {
	old := l.segs[len(l.segs)-1]
	if err := l.hooks.sync(l.f); err != nil {
		return l.fail(fmt.Errorf("wal: sync %s: %w", old.path, err))
	}
	l.synced = l.last
	s := newSegment(l.dir, l.last+1)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: new segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return l.fail(err)
	}
	if err := l.f.Close(); err != nil {
		// The data is synced; a close error cannot lose it.
		l.log.Warn("wal: close sealed segment", "file", old.path, "err", err)
	}
	old.ends = append([]uint32(nil), old.ends...) // drop append's spare capacity
	l.f = f
	l.segs = append(l.segs, s)
	return nil
}

// fail makes err sticky: after a failed fsync the page cache may have
// dropped the dirty pages, so a later fsync that succeeds proves nothing.
// Only a reopen, which reads back what is really on disk, is safe.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = err
	}
	return l.failed
}

// syncUpTo returns once record index is on stable storage. Concurrent
// callers share fsyncs: whoever gets syncMu syncs everything appended so
// far, and those queued behind find their record already covered.
func (l *Log) syncUpTo(index uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	switch {
	case l.synced >= index:
		l.mu.Unlock()
		return nil
	case l.failed != nil:
		l.mu.Unlock()
		return l.failed
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	}
	f, path, last := l.f, l.segs[len(l.segs)-1].path, l.last
	l.mu.Unlock()

	err := l.hooks.sync(f)

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.synced >= index {
			return nil // a roll synced and closed f meanwhile
		}
		if l.failed != nil {
			return l.failed
		}
		return l.fail(fmt.Errorf("wal: sync %s: %w", path, err))
	}
	l.synced = max(l.synced, last)
	return nil
}

// Sync puts every record appended so far on stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	last := l.last
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.syncUpTo(last)
}

// FirstIndex is the oldest index still stored; LastIndex()+1 when the log
// is empty.
func (l *Log) FirstIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].first
}

// LastIndex is the newest index appended; 0 if none ever was.
func (l *Log) LastIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Size is the bytes of all segments on disk.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// SizeFrom is the bytes on disk of the records with index >= index,
// exactly (headers included).
func (l *Log) SizeFrom(index uint64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for i := len(l.segs) - 1; i >= 0; i-- {
		s := l.segs[i]
		if index <= s.first {
			total += s.size()
			continue
		}
		if index < s.next() {
			total += s.size() - s.offset(index)
		}
		break
	}
	return total
}

// Removable reports whether TruncateFront(index) would remove a segment,
// so that a caller can save what it must before the records go.
func (l *Log) Removable(index uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && len(l.segs) > 1 && l.segs[0].next() <= index
}

// TruncateFront removes the segments whose records all have indexes below
// index; the active segment stays. A Reader that has a removed segment
// open still reads it to its end (the file is unlinked, not gone, until
// the Reader moves on); one that still has to open it gets ErrCompacted.
func (l *Log) TruncateFront(index uint64) error {
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	k := 0
	for k < len(l.segs)-1 && l.segs[k].next() <= index {
		l.size -= l.segs[k].size()
		k++
	}
	removed := l.segs[:k:k]
	if k > 0 {
		l.compacted = max(l.compacted, removed[k-1].next())
	}
	l.segs = append([]*segment(nil), l.segs[k:]...)
	l.mu.Unlock()
	if k == 0 {
		return nil
	}

	// Removing outside mu keeps appends and readers going. A file whose
	// removal fails is out of the log now but back at the next Open, as
	// older records; that is harmless.
	var errs []error
	for _, s := range removed {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("wal: truncate front: %w", err))
		}
	}
	if err := syncDir(l.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Notify returns a channel closed by the next Append (or by Close). Call
// it again after each wake-up; call it before reading to EOF so that no
// append slips between the two.
func (l *Log) Notify() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return closedChan
	}
	if l.notify == nil {
		l.notify = make(chan struct{})
	}
	return l.notify
}

// Close syncs the log, stops its goroutine, closes the active segment and
// releases the directory. Readers need closing on their own. Calling
// Close again returns what the first call returned.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Log) close() error {
	close(l.stop)
	l.wg.Wait()
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
	var errs []error
	if l.failed != nil {
		errs = append(errs, l.failed)
	} else if l.synced < l.last {
		if err := l.hooks.sync(l.f); err != nil {
			errs = append(errs, fmt.Errorf("wal: sync %s: %w", l.segs[len(l.segs)-1].path, err))
		} else {
			l.synced = l.last
		}
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("wal: close: %w", err))
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("wal: unlock: %w", err))
	}
	return errors.Join(errs...)
}

// segmentFor returns the segment holding index or, if index is in a gap
// left by a quarantined segment, the next one; the active segment for
// LastIndex+1. Called with mu held, index >= FirstIndex.
func (l *Log) segmentFor(index uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next() > index })
	return l.segs[min(i, len(l.segs)-1)]
}

// syncDir fsyncs a directory so that files created, renamed or removed in
// it stay so after a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: sync dir %s: %w", dir, err)
	}
	return nil
}
