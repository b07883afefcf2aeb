package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// sinkLog is one sink's part of the buffer: its log, its cursor, and what
// the buffer counts for it. Fields below "Guarded" are guarded by the
// Buffer's mu.
//
// Entries before next are passed: written, dropped, or kept apart.
// Entries in [next, read) are in the hands of the sink's output (taken,
// not yet written). Entries from read on are unread.
type sinkLog struct {
	name     string
	dir      string
	log      *wal.Log
	maxBytes int64
	whenFull config.WhenFull
	cursor   *cursorFile
	tail     *tail // only this sink's output reads it

	// Guarded by Buffer.mu.
	next, read  uint64
	pending     int64 // points not yet written: at or after next, and kept apart
	appended    uint64
	droppedFull uint64
	feeds       map[string]*sinkFeed
	kept        *keptApart    // the output's batch set aside by drop_oldest; nil if none
	dropReader  *wal.Reader   // drop_oldest's reader, at read when it is not nil
	moved       chan struct{} // closed and replaced when the cursor moves
}

// sinkFeed is what a sink's log holds of one feed.
type sinkFeed struct {
	pending int        // the feed's entries at or after next
	written positionAt // the newest position of its entries before next
}

func newSinkLog(lim SinkLimit, dir string, l *wal.Log) *sinkLog {
	return &sinkLog{
		name: lim.Name, dir: dir, log: l, maxBytes: lim.MaxBytes, whenFull: lim.WhenFull,
		tail:  newTail(tailPoints),
		feeds: make(map[string]*sinkFeed),
		moved: make(chan struct{}),
	}
}

func (sl *sinkLog) feedLocked(feed string) *sinkFeed {
	sf := sl.feeds[feed]
	if sf == nil {
		sf = &sinkFeed{}
		sl.feeds[feed] = sf
	}
	return sf
}

// lagLocked is the bytes the sink has not written: its log from next on,
// and a batch kept apart.
func (sl *sinkLog) lagLocked() int64 {
	lag := sl.log.SizeFrom(sl.next)
	if sl.kept != nil {
		lag += sl.kept.bytes
	}
	return lag
}

// diskBytesLocked is what the sink's part of the buffer takes on disk.
func (sl *sinkLog) diskBytesLocked() int64 {
	n := sl.log.Size()
	if sl.kept != nil {
		n += sl.kept.bytes
	}
	return n
}

// fitsLocked reports whether an entry of size bytes fits the sink's bound.
// One entry always fits an empty log, whatever its size.
func (sl *sinkLog) fitsLocked(size int64) bool {
	lag := sl.lagLocked()
	return lag == 0 || lag+size <= sl.maxBytes
}

// advancedLocked wakes appenders waiting for room.
func (sl *sinkLog) advancedLocked() {
	close(sl.moved)
	sl.moved = make(chan struct{})
}

func (sl *sinkLog) close() error {
	var errs []error
	if sl.dropReader != nil {
		sl.dropReader.Close()
		sl.dropReader = nil
	}
	if sl.kept != nil {
		errs = append(errs, sl.kept.log.Close())
	}
	if sl.cursor != nil {
		errs = append(errs, sl.cursor.close())
	}
	errs = append(errs, sl.log.Close())
	return errors.Join(errs...)
}

// saveCursorLocked saves next in the sink's cursor file.
func (sl *sinkLog) saveCursorLocked() error {
	if err := sl.cursor.save(sl.next); err != nil {
		return fmt.Errorf("save cursor of sink %s: %w", sl.name, err)
	}
	return nil
}

// dropOldestLocked drops the sink's oldest unread entries until an entry
// of size bytes fits, counting their points as dropped for buffer_full.
// The batch its output has in hand is not dropped: it is kept apart first
// (keepApartLocked), so that the cursor, and with it the disk, can move
// on while that batch waits for the sink. It reports whether whole
// segments can now be removed.
func (b *Buffer) dropOldestLocked(sl *sinkLog, size int64) bool {
	moved := false
	var feeds []string
	defer func() {
		for _, f := range feeds {
			b.settleLocked(f)
		}
	}()
	for !sl.fitsLocked(size) {
		if sl.next < sl.read {
			if err := b.keepApartLocked(sl); err != nil {
				b.logger.Error("buffer: drop_oldest cannot set the sink's batch in hand apart; nothing dropped", "sink", sl.name, "error", err)
				break
			}
			moved = true
			continue
		}
		if sl.read > sl.log.LastIndex() {
			break // nothing unread left; the rest is kept apart
		}
		idx, payload, err := sl.readForDrop()
		if err != nil {
			b.logger.Error("buffer: drop_oldest cannot read the sink's log", "sink", sl.name, "error", err)
			break
		}
		if h, err := parseEntryHeader(payload); err == nil {
			sl.droppedFull += uint64(h.NPoints)
			sl.pending -= int64(h.NPoints)
			sf := sl.feedLocked(h.Feed)
			sf.pending--
			if h.Position != nil {
				sf.written = sf.written.newer(b.cappedLocked(h.Feed, positionAt{Seq: h.Seq, Position: h.Position}))
			}
			if len(feeds) == 0 || feeds[len(feeds)-1] != h.Feed {
				feeds = append(feeds, h.Feed)
			}
		}
		sl.read, sl.next = idx+1, idx+1
		moved = true
	}
	if !moved {
		return false
	}
	if err := sl.saveCursorLocked(); err != nil {
		b.logger.Error("buffer", "error", err)
	}
	sl.tail.trim(sl.read)
	sl.advancedLocked()
	return sl.log.Removable(sl.next)
}

// readForDrop returns the entry at sl.read.
func (sl *sinkLog) readForDrop() (uint64, []byte, error) {
	if sl.dropReader != nil && sl.dropReader.NextIndex() != sl.read {
		sl.dropReader.Close()
		sl.dropReader = nil
	}
	if sl.dropReader == nil {
		r, err := sl.log.NewReader(sl.read)
		if err != nil {
			return 0, nil, err
		}
		sl.dropReader = r
	}
	idx, payload, err := sl.dropReader.Next()
	if err != nil {
		sl.dropReader.Close()
		sl.dropReader = nil
		if errors.Is(err, wal.ErrCorrupt) {
			// Counted by the output when it meets it; here it is skipped.
			return sl.read, nil, nil
		}
		return 0, nil, err
	}
	return idx, payload, nil
}

// keptApart is a batch that a sink's output had in hand when drop_oldest
// needed the cursor to move past it: its entries are copied to a log of
// their own (sinks/<name>/kept), so that they are neither dropped nor
// lost in a crash while the output keeps trying to write them, and the
// sink's log can be truncated behind them. After a restart the output
// writes them first.
type keptApart struct {
	log     *wal.Log
	dir     string
	bytes   int64
	upto    uint64      // the sink's log index after the last entry kept
	entries []keptEntry // what the entries were, when loaded at open
}

type keptEntry struct {
	feed   string
	pos    positionAt
	sinks  []string
	points int
}

func (sl *sinkLog) keptDir() string { return filepath.Join(sl.dir, "kept") }

// keepApartLocked copies the entries in [next, read) to the kept-apart
// log, syncs it, and moves next to read.
func (b *Buffer) keepApartLocked(sl *sinkLog) error {
	if sl.kept == nil {
		l, _, err := wal.Open(sl.keptDir(), wal.Options{Sync: wal.SyncNever, Logger: b.logger.With("sink", sl.name)})
		if err != nil {
			return err
		}
		sl.kept = &keptApart{log: l, dir: sl.keptDir()}
	}
	r, err := sl.log.NewReader(sl.next)
	if err != nil {
		return err
	}
	defer r.Close()
	var feeds []string
	for r.NextIndex() < sl.read {
		_, payload, err := r.Next()
		if err != nil {
			return err
		}
		if _, err := sl.kept.log.Append(payload); err != nil {
			return err
		}
		sl.kept.bytes += wal.RecordSize(len(payload))
		if h, err := parseEntryHeader(payload); err == nil {
			sf := sl.feedLocked(h.Feed)
			sf.pending--
			if h.Position != nil {
				sf.written = sf.written.newer(b.cappedLocked(h.Feed, positionAt{Seq: h.Seq, Position: h.Position}))
			}
			feeds = append(feeds, h.Feed)
		}
	}
	if err := sl.kept.log.Sync(); err != nil {
		return err
	}
	sl.kept.upto = sl.read
	sl.next = sl.read
	for _, f := range feeds {
		b.settleLocked(f)
	}
	return nil
}

// openKept loads a kept-apart batch left by an earlier run, if any.
func (sl *sinkLog) openKept() error {
	dir := sl.keptDir()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, _, err := wal.Open(dir, wal.Options{Sync: wal.SyncNever})
	if err != nil {
		return fmt.Errorf("open kept-apart batch: %w", err)
	}
	k := &keptApart{log: l, dir: dir, bytes: l.Size()}
	r, err := l.NewReader(l.FirstIndex())
	if err != nil {
		l.Close()
		return err
	}
	defer r.Close()
	for {
		_, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.Close()
			return fmt.Errorf("read kept-apart batch: %w", err)
		}
		if h, err := parseEntryHeader(payload); err == nil {
			k.entries = append(k.entries, keptEntry{feed: h.Feed, pos: positionAt{Seq: h.Seq, Position: h.Position}, sinks: h.Sinks, points: h.NPoints})
		}
	}
	if len(k.entries) == 0 {
		l.Close()
		return os.RemoveAll(dir)
	}
	sl.kept = k
	return nil
}

// removeKept deletes a kept-apart batch once it is written.
func (k *keptApart) remove() error {
	return errors.Join(k.log.Close(), os.RemoveAll(k.dir))
}

// SinkCursor is a sink output's handle on its part of the buffer.
type SinkCursor struct {
	b  *Buffer
	sl *sinkLog
}

// entryMark is what an output notes of each entry it takes, for the
// cursor's bookkeeping when it commits.
type entryMark struct {
	idx    uint64
	feed   string
	pos    positionAt
	points int
}

// reader opens a log reader at the sink's read position.
func (sc *SinkCursor) reader() (*wal.Reader, error) {
	sc.b.mu.Lock()
	from := sc.sl.read
	sc.b.mu.Unlock()
	return sc.sl.log.NewReader(from)
}

// take marks entry idx as read by the output and reports whether the
// output should use it: false when drop_oldest has already dropped it.
func (sc *SinkCursor) take(idx uint64) bool {
	sc.b.mu.Lock()
	defer sc.b.mu.Unlock()
	if idx < sc.sl.read {
		return false
	}
	sc.sl.read = idx + 1
	sc.sl.tail.trim(idx)
	return true
}

// points returns the points of the entry at idx, whose header h the
// output has read: from the sink's tail when it still holds them, else
// decoded from the record.
func (sc *SinkCursor) points(idx uint64, h *entryHeader) ([]sluice.Point, error) {
	if ps, ok := sc.sl.tail.get(idx, h.NPoints); ok {
		return ps, nil
	}
	return h.points()
}

// commit records that the output has written (or skipped) everything it
// took, whose entries marks describes; saves the cursor; and removes the
// segments and any kept-apart batch the cursor has passed.
func (sc *SinkCursor) commit(marks []entryMark) error {
	b, sl := sc.b, sc.sl
	b.mu.Lock()
	var feeds []string
	for _, m := range marks {
		sl.pending -= int64(m.points)
		if m.idx < sl.next {
			continue // kept apart: its feed's share was settled then
		}
		sf := sl.feedLocked(m.feed)
		sf.pending--
		if m.pos.Position != nil {
			sf.written = sf.written.newer(b.cappedLocked(m.feed, m.pos))
		}
		if len(feeds) == 0 || feeds[len(feeds)-1] != m.feed {
			feeds = append(feeds, m.feed)
		}
	}
	sl.next = max(sl.next, sl.read)
	if sl.dropReader != nil && sl.dropReader.NextIndex() < sl.next {
		// Its segment may be about to go: an open file would keep the
		// disk space.
		sl.dropReader.Close()
		sl.dropReader = nil
	}
	var kept *keptApart
	if sl.kept != nil && sl.next >= sl.kept.upto {
		kept, sl.kept = sl.kept, nil
	}
	err := sl.saveCursorLocked()
	for _, f := range feeds {
		b.settleLocked(f)
	}
	sl.advancedLocked()
	b.mu.Unlock()
	if kept != nil {
		if kerr := kept.remove(); kerr != nil {
			b.logger.Error("buffer: cannot remove a written kept-apart batch", "sink", sl.name, "error", kerr)
		}
	}
	b.truncate(sl)
	return err
}

// keptApart returns the points of a batch kept apart before a restart,
// which the output writes before anything in the log, and its marks.
func (sc *SinkCursor) keptApart() ([]sluice.Point, error) {
	sc.b.mu.Lock()
	k := sc.sl.kept
	sc.b.mu.Unlock()
	if k == nil || k.entries == nil {
		return nil, nil
	}
	r, err := k.log.NewReader(k.log.FirstIndex())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []sluice.Point
	for {
		_, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		h, err := parseEntryHeader(payload)
		if err != nil {
			continue
		}
		ps, err := h.points()
		if err != nil {
			continue
		}
		out = append(out, ps...)
	}
}

// commitKept records that the batch kept apart before a restart is
// written, and removes it.
func (sc *SinkCursor) commitKept() error {
	b, sl := sc.b, sc.sl
	b.mu.Lock()
	k := sl.kept
	if k == nil {
		b.mu.Unlock()
		return nil
	}
	for _, e := range k.entries {
		sl.pending -= int64(e.points)
	}
	sl.kept = nil
	sl.advancedLocked()
	b.mu.Unlock()
	return k.remove()
}

// uncommitted reports whether the output has taken entries it has not
// committed.
func (sc *SinkCursor) uncommitted() bool {
	sc.b.mu.Lock()
	defer sc.b.mu.Unlock()
	return sc.sl.read > sc.sl.next
}

func (sc *SinkCursor) notify() <-chan struct{} { return sc.sl.log.Notify() }

// BufferStatus is one sink's view of the buffer.
type BufferStatus struct {
	PendingPoints int64  `json:"pending_points"` // not yet written
	PendingBytes  int64  `json:"pending_bytes"`  // of entries not yet written, the quantity the bound limits
	DiskBytes     int64  `json:"disk_bytes"`     // the sink's log and kept-apart batch on disk
	MaxBytes      int64  `json:"max_bytes"`
	Appended      uint64 `json:"appended"`
	DroppedFull   uint64 `json:"dropped_full"`
}

func (sc *SinkCursor) status() BufferStatus {
	sc.b.mu.Lock()
	defer sc.b.mu.Unlock()
	sl := sc.sl
	return BufferStatus{
		PendingPoints: sl.pending, PendingBytes: sl.lagLocked(), DiskBytes: sl.diskBytesLocked(),
		MaxBytes: sl.maxBytes, Appended: sl.appended, DroppedFull: sl.droppedFull,
	}
}
