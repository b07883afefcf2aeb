package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// BufferOptions configures the disk buffer.
type BufferOptions struct {
	Dir          string
	Sync         wal.SyncPolicy
	SyncInterval time.Duration
	SegmentBytes int64
}

// SinkLimit is one sink's bound on the buffer: how many bytes of entries
// routed to it may wait unwritten, and what happens past that.
type SinkLimit struct {
	Name     string
	MaxBytes int64
	WhenFull config.WhenFull
}

// snapshotEvery bounds how often positions are snapshotted, which is also
// how long a fully written segment may linger before it is removed.
const snapshotEvery = time.Second

// Buffer is the agent's write-ahead buffer: every normalized batch is
// appended to one on-disk log (agent/wal) before the feed counts it as
// delivered, and each sink reads the log from its own cursor, advancing it
// only after a successful write. Segments are removed once every sink has
// passed them. The feed's position travels inside each entry, so the last
// durable position of every feed survives a crash with its points.
//
// A sink's cursor lives in cursors/<sink> beside the log. A sink with no
// cursor (new in the config) starts at the newest entry: it does not
// replay what others already have. Entries are routed by sink name; an
// entry for a sink that no longer exists is skipped.
//
// Lifecycle: OpenBuffer recovers the log, cursors and positions; Append
// and the sink cursors may then be used concurrently; Close syncs and is
// idempotent.
type Buffer struct {
	log    *wal.Log
	dir    string
	sync   wal.SyncPolicy
	logger *slog.Logger

	mu        sync.Mutex
	cursors   map[string]*cursor
	positions map[string]positionAt // newest appended, per feed: a feed restarting in this process resumes here
	// Positions not yet written by every sink, in append order, and the
	// newest that is: only those are saved in positions.json, so a saved
	// position never runs ahead of what every sink holds, whatever the
	// disk loses of the log's tail.
	unsettled map[string][]positionAt
	settled   map[string]positionAt
	// What each feed declared, saved so that sinks know the uniqueness
	// keys before they write a backlog recovered from the log.
	measurements map[string][]sluice.Measurement
	declareMu    sync.Mutex
	moved        chan struct{} // closed and replaced when a cursor advances
	lastSnapshot time.Time
	closed       bool
	// tail has the newest entries' points, so that outputs that keep up
	// need not decode what they read back.
	tail *tail
}

type positionAt struct {
	Index    uint64          `json:"index"`
	Position sluice.Position `json:"position"`
}

// cursor is one sink's place in the log. Entries before next are written
// (or dropped, or not routed to the sink); entries in [next, read) are
// read by the sink's output and not yet confirmed written.
type cursor struct {
	name     string
	maxBytes int64
	whenFull config.WhenFull
	next     uint64
	read     uint64

	pending     int64 // points routed here at or after next
	appended    uint64
	droppedFull uint64
}

// RecoveryReport says what opening the buffer found.
type RecoveryReport struct {
	wal.Recovery
	Entries        uint64 // entries in the log after recovery
	BadEntries     int    // entries whose content could not be decoded (skipped)
	NewSinks       []string
	RemovedCursors []string
}

// OpenBuffer opens (or creates) the buffer in opts.Dir for the given sinks.
func OpenBuffer(opts BufferOptions, sinks []SinkLimit, logger *slog.Logger) (*Buffer, RecoveryReport, error) {
	var rep RecoveryReport
	l, rec, err := wal.Open(filepath.Join(opts.Dir, "log"), wal.Options{
		SegmentBytes: opts.SegmentBytes, Sync: opts.Sync, SyncInterval: opts.SyncInterval, Logger: logger,
	})
	if err != nil {
		return nil, rep, fmt.Errorf("open buffer: %w", err)
	}
	rep.Recovery = rec
	b := &Buffer{
		log: l, dir: opts.Dir, sync: opts.Sync, logger: logger,
		cursors:      make(map[string]*cursor, len(sinks)),
		positions:    make(map[string]positionAt),
		unsettled:    make(map[string][]positionAt),
		settled:      make(map[string]positionAt),
		measurements: make(map[string][]sluice.Measurement),
		moved:        make(chan struct{}),
		tail:         newTail(tailPoints),
	}
	if err := b.recover(sinks, &rep); err != nil {
		l.Close()
		return nil, rep, err
	}
	return b, rep, nil
}

func (b *Buffer) cursorDir() string { return filepath.Join(b.dir, "cursors") }

func (b *Buffer) recover(sinks []SinkLimit, rep *RecoveryReport) error {
	if err := os.MkdirAll(b.cursorDir(), 0o755); err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	first, head := b.log.FirstIndex(), b.log.LastIndex()+1
	known := make(map[string]bool)
	for _, s := range sinks {
		known[s.Name] = true
		c := &cursor{name: s.Name, maxBytes: s.MaxBytes, whenFull: s.WhenFull}
		next, err := readCursor(filepath.Join(b.cursorDir(), s.Name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			next = head
			rep.NewSinks = append(rep.NewSinks, s.Name)
		case err != nil:
			return fmt.Errorf("open buffer: cursor of sink %s: %w", s.Name, err)
		}
		c.next = min(max(next, first), head)
		c.read = c.next
		b.cursors[s.Name] = c
	}
	entries, _ := os.ReadDir(b.cursorDir())
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".tmp"): // a write a crash cut short
			os.Remove(filepath.Join(b.cursorDir(), name))
		case !known[name]:
			os.Remove(filepath.Join(b.cursorDir(), name))
			rep.RemovedCursors = append(rep.RemovedCursors, name)
		}
	}
	for _, c := range b.cursors { // persist new cursors so a later start agrees
		if err := b.writeCursor(c); err != nil {
			return err
		}
	}

	if raw, err := os.ReadFile(filepath.Join(b.dir, "positions.json")); err == nil {
		if err := json.Unmarshal(raw, &b.settled); err != nil {
			b.logger.Warn("buffer: positions snapshot unreadable; using what the log holds", "error", err)
			b.settled = make(map[string]positionAt)
		}
	}
	// A saved position is one every sink had written, so it is safe to
	// resume from even if the log lost entries after it; any entry the
	// log still holds (older or newer) replaces it as the scan finds it.
	for feed, p := range b.settled {
		p.Index = 0
		b.settled[feed], b.positions[feed] = p, p
	}
	if raw, err := os.ReadFile(filepath.Join(b.dir, "measurements.json")); err == nil {
		if err := json.Unmarshal(raw, &b.measurements); err != nil {
			b.logger.Warn("buffer: saved measurements unreadable", "error", err)
			b.measurements = make(map[string][]sluice.Measurement)
		}
	}
	r, err := b.log.NewReader(first)
	if err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	defer r.Close()
	for {
		idx, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("open buffer: scan: %w", err)
		}
		rep.Entries++
		h, err := parseEntryHeader(payload)
		if err != nil {
			rep.BadEntries++
			continue
		}
		if h.Position != nil {
			p := positionAt{Index: idx, Position: h.Position}
			b.positions[h.Feed] = p
			b.unsettled[h.Feed] = append(b.unsettled[h.Feed], p)
		}
		for _, s := range h.Sinks {
			if c := b.cursors[s]; c != nil && idx >= c.next {
				c.pending += int64(h.NPoints)
			}
		}
	}
	return nil
}

func readCursor(path string) (uint64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%s: %d bytes, want 8", path, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// writeCursor persists c.next by write-then-rename, so a crash leaves the
// old or the new value. Callers hold b.mu or own c exclusively.
func (b *Buffer) writeCursor(c *cursor) error {
	path := filepath.Join(b.cursorDir(), c.name)
	if err := writeFileAtomic(path, binary.BigEndian.AppendUint64(nil, c.next), b.sync == wal.SyncAlways); err != nil {
		return fmt.Errorf("save cursor of sink %s: %w", c.name, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte, fsync bool) error {
	// A temporary name of its own, so that concurrent writers of the same
	// file never rename each other's half-written copy.
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Position returns the last durable position of a feed (nil if none).
func (b *Buffer) Position(feed string) sluice.Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.positions[feed].Position
}

// Append writes an entry to the log, routed to e.Sinks, under each sink's
// bound: a block sink that is full makes Append wait (until its output
// catches up, or ctx ends); a drop_newest sink that is full is left out of
// the routing and its points counted as dropped; a drop_oldest sink drops
// its oldest unread entries after the append until it fits again.
//
// The entry's points must not change once Append returns: outputs may
// write them from memory (see tail).
//
// Appends from different feeds proceed independently: a feed waiting for a
// full sink does not hold up feeds routed elsewhere. The bound is checked
// before the append, so concurrent appends may overshoot it by one entry
// each.
func (b *Buffer) Append(ctx context.Context, e *Entry) error {
	payload, err := appendEntry(nil, e)
	if err != nil {
		return fmt.Errorf("buffer: encode: %w", err)
	}
	routes := e.Sinks
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		var wait chan struct{}
		var dropped []*cursor
		for _, s := range e.Sinks {
			c := b.cursors[s]
			if c == nil {
				continue
			}
			lag := b.log.SizeFrom(c.next)
			if lag == 0 || lag+int64(len(payload)) <= c.maxBytes {
				continue
			}
			switch c.whenFull {
			case config.DropNewest:
				dropped = append(dropped, c)
			case config.DropOldest:
			default:
				wait = b.moved
			}
		}
		if wait != nil {
			b.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(dropped) > 0 {
			routes = without(e.Sinks, dropped)
			for _, c := range dropped {
				c.droppedFull += uint64(len(e.Points))
			}
			b.mu.Unlock()
			re := *e
			re.Sinks = routes
			if payload, err = appendEntry(payload[:0], &re); err != nil {
				return fmt.Errorf("buffer: encode: %w", err)
			}
		} else {
			b.mu.Unlock()
		}
		break
	}
	idx, err := b.log.Append(payload)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	b.tail.add(idx, e.Points)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Position != nil && idx > b.positions[e.Feed].Index {
		p := positionAt{Index: idx, Position: append(sluice.Position(nil), e.Position...)}
		b.positions[e.Feed] = p
		b.unsettled[e.Feed] = append(b.unsettled[e.Feed], p)
	}
	for _, s := range routes {
		c := b.cursors[s]
		if c == nil {
			continue
		}
		c.pending += int64(len(e.Points))
		c.appended += uint64(len(e.Points))
		if c.whenFull == config.DropOldest {
			b.dropOldestLocked(c)
		}
	}
	return nil
}

func without(sinks []string, drop []*cursor) []string {
	var out []string
outer:
	for _, s := range sinks {
		for _, c := range drop {
			if c.name == s {
				continue outer
			}
		}
		out = append(out, s)
	}
	return out
}

// dropOldestLocked skips c's oldest unread entries until what it has not
// read fits its bound. The batch its output has in hand is left alone.
func (b *Buffer) dropOldestLocked(c *cursor) {
	if b.log.SizeFrom(c.read) <= c.maxBytes {
		return
	}
	r, err := b.log.NewReader(c.read)
	if err != nil {
		b.logger.Error("buffer: drop_oldest", "sink", c.name, "error", err)
		return
	}
	defer r.Close()
	inFlight := c.next < c.read
	for b.log.SizeFrom(c.read) > c.maxBytes {
		idx, payload, err := r.Next()
		if err != nil {
			return
		}
		if h, err := parseEntryHeader(payload); err == nil && h.routedTo(c.name) {
			c.droppedFull += uint64(h.NPoints)
			c.pending -= int64(h.NPoints)
		}
		c.read = idx + 1
		if !inFlight {
			c.next = c.read
		}
	}
	if !inFlight {
		if err := b.writeCursor(c); err != nil {
			b.logger.Error("buffer", "error", err)
		}
		b.advancedLocked()
	}
}

// advancedLocked wakes appenders waiting for room.
func (b *Buffer) advancedLocked() {
	close(b.moved)
	b.moved = make(chan struct{})
}

// commit records that the output of c has written everything it read,
// points of which were routed to it, and removes segments every sink has
// passed.
func (b *Buffer) commit(c *cursor, points int) error {
	b.mu.Lock()
	c.next = c.read
	c.pending -= int64(points)
	err := b.writeCursor(c)
	b.advancedLocked()
	low := c.next
	for _, o := range b.cursors {
		low = min(low, o.next)
	}
	b.settleLocked(low)
	var snap []byte
	if time.Since(b.lastSnapshot) >= snapshotEvery && low > b.log.FirstIndex() {
		snap, _ = json.Marshal(b.settled)
		b.lastSnapshot = time.Now()
	}
	b.mu.Unlock()
	if err != nil || snap == nil {
		return err
	}
	// Positions first: the segments about to go may hold the only copy of
	// a feed's latest position.
	if err := writeFileAtomic(filepath.Join(b.dir, "positions.json"), snap, b.sync != wal.SyncNever); err != nil {
		return fmt.Errorf("save positions: %w", err)
	}
	return b.log.TruncateFront(low)
}

// settleLocked moves the positions of entries every sink has passed
// (index below low) from unsettled to settled.
func (b *Buffer) settleLocked(low uint64) {
	for feed, ps := range b.unsettled {
		i := 0
		for ; i < len(ps) && ps[i].Index < low; i++ {
			b.settled[feed] = ps[i]
		}
		if i == len(ps) {
			delete(b.unsettled, feed)
		} else {
			b.unsettled[feed] = ps[i:]
		}
	}
}

// lowLocked is the lowest sink cursor: every entry below it is written.
func (b *Buffer) lowLocked() uint64 {
	low := b.log.LastIndex() + 1
	for _, c := range b.cursors {
		low = min(low, c.next)
	}
	return low
}

// Declare saves a feed's measurements (and their uniqueness keys), so
// that after a restart every sink learns them before it writes the
// feed's backlog.
func (b *Buffer) Declare(feed string, ms []sluice.Measurement) error {
	// One declaration at a time, so the file ends with the newest set.
	b.declareMu.Lock()
	defer b.declareMu.Unlock()
	b.mu.Lock()
	b.measurements[feed] = ms
	raw, err := json.Marshal(b.measurements)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(b.dir, "measurements.json"), raw, true)
}

// Measurements returns every measurement any feed has declared.
func (b *Buffer) Measurements() []sluice.Measurement {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sluice.Measurement
	for _, feed := range slices.Sorted(maps.Keys(b.measurements)) {
		out = append(out, b.measurements[feed]...)
	}
	return out
}

// BufferStatus is one sink's view of the buffer.
type BufferStatus struct {
	PendingPoints int64  `json:"pending_points"`
	PendingBytes  int64  `json:"pending_bytes"`
	MaxBytes      int64  `json:"max_bytes"`
	Appended      uint64 `json:"appended"`
	DroppedFull   uint64 `json:"dropped_full"`
}

func (b *Buffer) status(c *cursor) BufferStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BufferStatus{
		PendingPoints: c.pending, PendingBytes: b.log.SizeFrom(c.next), MaxBytes: c.maxBytes,
		Appended: c.appended, DroppedFull: c.droppedFull,
	}
}

// Size is the log's size on disk.
func (b *Buffer) Size() int64 { return b.log.Size() }

// Close saves positions and closes the log.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.settleLocked(b.lowLocked())
	snap, _ := json.Marshal(b.settled)
	b.advancedLocked()
	b.mu.Unlock()
	err := writeFileAtomic(filepath.Join(b.dir, "positions.json"), snap, true)
	return errors.Join(err, b.log.Close())
}

// SinkCursor is a sink output's handle on the buffer.
type SinkCursor struct {
	b *Buffer
	c *cursor
}

// Cursor returns the handle for a configured sink, or nil.
func (b *Buffer) Cursor(sink string) *SinkCursor {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.cursors[sink]; c != nil {
		return &SinkCursor{b: b, c: c}
	}
	return nil
}

// reader opens a log reader at the sink's read position.
func (sc *SinkCursor) reader() (*wal.Reader, error) {
	sc.b.mu.Lock()
	from := sc.c.read
	sc.b.mu.Unlock()
	return sc.b.log.NewReader(from)
}

// take marks entry idx as read by the output and reports whether the
// output should use it: false when drop_oldest has already skipped it.
func (sc *SinkCursor) take(idx uint64) bool {
	sc.b.mu.Lock()
	defer sc.b.mu.Unlock()
	if idx < sc.c.read {
		return false
	}
	sc.c.read = idx + 1
	// Every output has read what is before low (this one is still to
	// take idx's points).
	low := idx
	for _, c := range sc.b.cursors {
		low = min(low, c.read)
	}
	sc.b.tail.trim(low)
	return true
}

func (sc *SinkCursor) commit(points int) error { return sc.b.commit(sc.c, points) }

// points returns the points of the entry at idx, whose header h the
// output has read: from the buffer's tail when it still holds them, else
// decoded from the record.
func (sc *SinkCursor) points(idx uint64, h *entryHeader) ([]sluice.Point, error) {
	if ps, ok := sc.b.tail.get(idx, h.NPoints); ok {
		return ps, nil
	}
	return h.points()
}

// uncommitted reports whether the output has read past its saved cursor.
func (sc *SinkCursor) uncommitted() bool {
	sc.b.mu.Lock()
	defer sc.b.mu.Unlock()
	return sc.c.read > sc.c.next
}
func (sc *SinkCursor) notify() <-chan struct{} { return sc.b.log.Notify() }
func (sc *SinkCursor) status() BufferStatus    { return sc.b.status(sc.c) }
