package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/atomicfile"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// BufferOptions configures the disk buffer.
type BufferOptions struct {
	Dir          string
	Sync         wal.SyncPolicy
	SyncInterval time.Duration
	// SegmentBytes is the most a segment of a sink's log grows to (default
	// wal.DefaultSegmentBytes); a sink's segments are also kept to a
	// quarter of its MaxBytes, so that what its log holds on disk stays
	// within one small segment of its bound.
	SegmentBytes int64
}

// SinkLimit is one sink's bound on the buffer: how many bytes of entries
// may wait unwritten in its log, and what happens past that.
type SinkLimit struct {
	Name     string
	MaxBytes int64
	WhenFull config.WhenFull
}

// minSegmentBytes is the smallest segment a sink's log is given, however
// small its bound.
const minSegmentBytes = 64 << 10

// Buffer is the agent's write-ahead buffer. Every normalized batch is
// appended, as an entry, to the log of each sink it is routed to (one
// agent/wal log per sink, in sinks/<name>/) before the feed counts it as
// delivered; each sink's output reads its own log from its cursor and
// moves the cursor only after a successful write. Segments go as soon as
// the cursor has passed them.
//
// One log per sink is what keeps sinks apart: a sink that never writes
// holds on to its own entries only, so its bound (MaxBytes, on disk) and
// its when_full policy never touch feeds routed elsewhere, and dropping
// frees disk at once. An entry routed to two sinks is written twice.
//
// Each entry carries its feed's position and sequence number. A feed
// resumes from its newest position that every sink it goes to holds
// durably (in its log, written, or kept apart), so a crash between the
// appends of one entry to two logs, or a log whose tail a power loss
// took, makes the feed send that entry again rather than lose it for one
// sink. What the buffer keeps in memory for this does not grow with the
// backlog: per feed its newest and settled positions (and the starts at
// which it went back, until it settles past them), and per sink and feed
// a count and the newest position passed.
//
// A sink's cursor is saved in sinks/<name>/cursor after each write; a
// missing or damaged cursor file makes the sink start again from the
// oldest entry its log holds (entries written again land on themselves).
// A directory in sinks/ for a sink that is no longer configured is kept,
// and reported: configuring the sink again delivers what it holds.
//
// Lifecycle: OpenBuffer migrates a buffer of the older shared-log layout
// and recovers the logs, cursors and positions; Append and the sink
// cursors may then be used concurrently; Close saves the positions and is
// idempotent.
type Buffer struct {
	dir    string
	opts   BufferOptions
	logger *slog.Logger

	mu           sync.Mutex
	sinks        map[string]*sinkLog
	feeds        map[string]*feedState
	measurements map[string][]sluice.Measurement
	closed       bool

	declareMu sync.Mutex // one measurements.json write at a time, so the file ends with the newest set
	saveMu    sync.Mutex // one positions.json write at a time
}

// RecoveryReport says what opening the buffer found.
type RecoveryReport struct {
	wal.Recovery                    // summed over every sink's log
	Entries        uint64           // entries in the sinks' logs after recovery
	BadEntries     int              // entries whose content could not be decoded (skipped)
	NewSinks       []string         // sinks with no cursor yet
	DamagedFiles   []string         // cursor and state files that could not be read, and were done without
	OrphanedSinks  map[string]int64 // logs of sinks no longer configured, and their bytes on disk (kept)
	Migrated       uint64           // entries moved from the older shared-log layout
	MigratedFrom   string           // that layout's directory, removed after the move
	KeptApartAgain []string         // sinks whose batch kept apart by drop_oldest is written first
}

// OpenBuffer opens (or creates) the buffer in opts.Dir for the given sinks.
func OpenBuffer(opts BufferOptions, sinks []SinkLimit, logger *slog.Logger) (*Buffer, RecoveryReport, error) {
	var rep RecoveryReport
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Buffer{
		dir: opts.Dir, opts: opts, logger: logger,
		sinks:        make(map[string]*sinkLog, len(sinks)),
		feeds:        make(map[string]*feedState),
		measurements: make(map[string][]sluice.Measurement),
	}
	if err := b.migrate(sinks, &rep); err != nil {
		return nil, rep, fmt.Errorf("open buffer: migrate %s: %w", filepath.Join(b.dir, legacyLogDir), err)
	}
	if err := os.MkdirAll(b.sinksDir(), 0o755); err != nil {
		return nil, rep, fmt.Errorf("open buffer: %w", err)
	}

	pf, err := readPositions(b.positionsPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		b.logger.Warn("buffer: saved positions unreadable; feeds resume from what the sinks' logs hold", "error", err)
		rep.DamagedFiles = append(rep.DamagedFiles, b.positionsPath())
	}
	if raw, err := readState(b.measurementsPath()); err == nil {
		if err := json.Unmarshal(raw, &b.measurements); err != nil {
			b.logger.Warn("buffer: saved measurements unreadable; they are declared again as feeds start", "error", err)
			rep.DamagedFiles = append(rep.DamagedFiles, b.measurementsPath())
			b.measurements = make(map[string][]sluice.Measurement)
		}
	}

	held := make(map[string]map[string]holding)  // sink → feed → what it holds
	routed := make(map[string]map[string]uint64) // feed → sink → newest seq routed to it, in any log
	for _, lim := range sinks {
		sl, h, err := b.openSink(lim, pf, routed, &rep)
		if err != nil {
			b.closeSinks()
			return nil, rep, err
		}
		b.sinks[lim.Name] = sl
		held[lim.Name] = h
	}
	b.findOrphans(&rep)
	if b.resume(pf, held, routed) {
		// Before the source sends anything again: a restart that found
		// the logs as they are now would resume from the same place, but
		// one after the entries sent again would not know to go back.
		if err := b.savePositions(); err != nil {
			b.closeSinks()
			return nil, rep, fmt.Errorf("open buffer: %w", err)
		}
	}
	return b, rep, nil
}

func (b *Buffer) sinksDir() string         { return filepath.Join(b.dir, "sinks") }
func (b *Buffer) positionsPath() string    { return filepath.Join(b.dir, "positions.json") }
func (b *Buffer) measurementsPath() string { return filepath.Join(b.dir, "measurements.json") }

// segmentBytesFor is the segment size of a sink's log.
func segmentBytesFor(configured, maxBytes int64) int64 {
	seg := configured
	if seg <= 0 {
		seg = wal.DefaultSegmentBytes
	}
	if maxBytes > 0 && maxBytes/4 < seg {
		seg = max(maxBytes/4, minSegmentBytes)
	}
	return seg
}

// holding is what a sink holds of a feed, found when the buffer opens.
type holding struct {
	maxSeq uint64     // the newest entry it holds: in its log, passed, or kept apart
	pos    positionAt // the newest position among those
}

func (h *holding) add(seq uint64, pos sluice.Position) {
	h.maxSeq = max(h.maxSeq, seq)
	if pos != nil {
		h.pos = h.pos.newer(positionAt{Seq: seq, Position: pos})
	}
}

// openSink opens one sink's log, cursor and kept-apart batch, and scans
// the log's entry headers (one at a time: memory does not grow with the
// log). It returns what the sink holds of each feed, and adds to routed
// the newest entry of each feed routed to each sink.
func (b *Buffer) openSink(lim SinkLimit, pf positionsFile, routed map[string]map[string]uint64, rep *RecoveryReport) (*sinkLog, map[string]holding, error) {
	dir := filepath.Join(b.sinksDir(), lim.Name)
	l, rec, err := wal.Open(filepath.Join(dir, "log"), wal.Options{
		SegmentBytes: segmentBytesFor(b.opts.SegmentBytes, lim.MaxBytes),
		Sync:         b.opts.Sync, SyncInterval: b.opts.SyncInterval,
		Logger: b.logger.With("sink", lim.Name),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open buffer of sink %s: %w", lim.Name, err)
	}
	addRecovery(&rep.Recovery, rec)
	sl := newSinkLog(lim, dir, l)
	fail := func(err error) (*sinkLog, map[string]holding, error) {
		sl.close()
		return nil, nil, fmt.Errorf("open buffer of sink %s: %w", lim.Name, err)
	}

	cursorPath := filepath.Join(dir, "cursor")
	cf, next, found, err := openCursorFile(cursorPath, b.opts.Sync != wal.SyncNever)
	first, head := l.FirstIndex(), l.LastIndex()+1
	switch {
	case errors.Is(err, errCursorDamaged):
		b.logger.Warn("buffer: a sink's cursor is unreadable; the sink starts again from the oldest entry its log holds (what it had written is written again and lands on itself)",
			"sink", lim.Name, "error", err, "from_index", first)
		rep.DamagedFiles = append(rep.DamagedFiles, cursorPath)
		next = first
	case err != nil:
		return fail(err)
	case !found:
		// A sink new to the buffer has an empty log; a log without its
		// cursor (removed by hand) is read from its start, never skipped.
		next = first
		rep.NewSinks = append(rep.NewSinks, lim.Name)
	}
	sl.cursor = cf
	sl.next = min(max(next, first), head)
	sl.read = sl.next
	if err := cf.save(sl.next); err != nil { // so that a later start agrees
		return fail(fmt.Errorf("save cursor: %w", err))
	}

	held := make(map[string]holding)
	hold := func(feed string, seq uint64, pos sluice.Position, sinks []string) {
		h := held[feed]
		h.add(seq, pos)
		held[feed] = h
		fs := b.feedLocked(feed)
		fs.seq = max(fs.seq, seq)
		r := routed[feed]
		if r == nil {
			r = make(map[string]uint64)
			routed[feed] = r
		}
		for _, s := range sinks {
			r[s] = max(r[s], seq)
		}
	}
	for feed, p := range pf.Written[lim.Name] {
		sl.feedLocked(feed).written = p
		hold(feed, p.Seq, p.Position, nil)
	}
	if err := sl.openKept(); err != nil {
		return fail(err)
	}
	if sl.kept != nil {
		rep.KeptApartAgain = append(rep.KeptApartAgain, lim.Name)
		for _, e := range sl.kept.entries {
			if e.pos.Position != nil {
				sf := sl.feedLocked(e.feed)
				sf.written = sf.written.newer(e.pos)
			}
			hold(e.feed, e.pos.Seq, e.pos.Position, e.sinks)
			sl.pending += int64(e.points)
		}
	}

	err = scanLog(l, first, func(idx uint64, payload []byte) {
		rep.Entries++
		h, err := parseEntryHeader(payload)
		if err != nil {
			rep.BadEntries++
			return
		}
		sf := sl.feedLocked(h.Feed)
		if idx < sl.next {
			if h.Position != nil {
				sf.written = sf.written.newer(positionAt{Seq: h.Seq, Position: h.Position})
			}
		} else {
			sl.pending += int64(h.NPoints)
			sf.pending++
		}
		hold(h.Feed, h.Seq, h.Position, h.Sinks)
	})
	if err != nil {
		return fail(fmt.Errorf("scan: %w", err))
	}
	return sl, held, nil
}

// scanLog calls fn with each record of l from index from on. A record
// the disk changed since Open checked it is passed over: the output that
// reads it meets it again, and counts it.
func scanLog(l *wal.Log, from uint64, fn func(idx uint64, payload []byte)) error {
	r, err := l.NewReader(from)
	if err != nil {
		return err
	}
	defer func() { r.Close() }()
	for {
		idx, payload, err := r.Next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, wal.ErrCorrupt):
			r.Close()
			if r, err = l.NewReader(r.NextIndex() + 1); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			fn(idx, payload)
		}
	}
}

// resume sets each feed's resume position after a start. Logs lose only
// their newest entries (a crash between the appends of one entry to two
// logs; a power loss), so a sink that lacks the newest entry routed to it
// may lack any entry after the newest it holds: the feed then resumes
// from that sink's newest position, and the source sends the rest again.
// Otherwise it resumes from the newest position any sink holds. Never
// from before its settled position.
//
// Going back is recorded as a rewind (saved by the caller before the
// source starts), and positions from before earlier rewinds are capped
// by them: the entries sent again are numbered after those positions'
// entries, so numbers alone would make the feed skip, at the next start,
// what the source had not yet sent again. It reports whether it recorded
// a rewind.
func (b *Buffer) resume(pf positionsFile, held map[string]map[string]holding, routed map[string]map[string]uint64) bool {
	for feed, seq := range pf.Seq {
		fs := b.feedLocked(feed)
		fs.seq = max(fs.seq, seq)
	}
	for feed, p := range pf.Settled {
		fs := b.feedLocked(feed)
		fs.settled = p
		fs.seq = max(fs.seq, p.Seq)
	}
	for feed, rs := range pf.Rewinds {
		b.feedLocked(feed).rewinds = rs
	}
	rewound := false
	for feed, fs := range b.feeds {
		fs.settled = capRewinds(fs.rewinds, fs.settled)
		for _, sl := range b.sinks {
			if sf := sl.feeds[feed]; sf != nil {
				sf.written = capRewinds(fs.rewinds, sf.written)
			}
		}
		var best positionAt
		var short *holding // the sink lacking an entry routed to it that holds the least
		for sink, hs := range held {
			h := hs[feed]
			h.pos = capRewinds(fs.rewinds, h.pos)
			best = best.newer(h.pos)
			if routed[feed][sink] > h.maxSeq && (short == nil || h.maxSeq < short.maxSeq) {
				short = &h
			}
		}
		ahead := best
		if short != nil {
			best = short.pos
		}
		fs.newest = fs.settled.newer(best)
		if ahead.Seq > fs.newest.Seq {
			fs.rewinds = append(fs.rewinds, rewind{From: fs.newest.Seq, Seq: fs.seq, Position: fs.newest.Position})
			rewound = true
		}
		b.settleLocked(feed)
	}
	return rewound
}

// cappedLocked returns a position read from one of feed's entries as
// resume left it: capped by the feed's rewinds.
func (b *Buffer) cappedLocked(feed string, p positionAt) positionAt {
	if fs := b.feeds[feed]; fs != nil {
		return capRewinds(fs.rewinds, p)
	}
	return p
}

// findOrphans reports the logs of sinks that are not configured. They are
// kept: configuring the sink again delivers what they hold.
func (b *Buffer) findOrphans(rep *RecoveryReport) {
	entries, err := os.ReadDir(b.sinksDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || b.sinks[e.Name()] != nil {
			continue
		}
		if rep.OrphanedSinks == nil {
			rep.OrphanedSinks = make(map[string]int64)
		}
		rep.OrphanedSinks[e.Name()] = dirSize(filepath.Join(b.sinksDir(), e.Name()))
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// addRecovery adds what one log's Open repaired to a sum over logs.
func addRecovery(sum *wal.Recovery, r wal.Recovery) {
	sum.TruncatedBytes += r.TruncatedBytes
	sum.TruncatedRecords += r.TruncatedRecords
	sum.Quarantined = append(sum.Quarantined, r.Quarantined...)
	sum.LostRecords += r.LostRecords
	sum.SkippedBytes += r.SkippedBytes
}

// feedLocked returns the state of a feed, creating it.
func (b *Buffer) feedLocked(feed string) *feedState {
	fs := b.feeds[feed]
	if fs == nil {
		fs = &feedState{}
		b.feeds[feed] = fs
	}
	return fs
}

// Position returns the position a feed resumes from (nil if none): the
// newest one that reached the disk buffer, with its points, for every
// sink the feed goes to.
func (b *Buffer) Position(feed string) sluice.Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fs := b.feeds[feed]; fs != nil {
		return fs.newest.Position
	}
	return nil
}

// Append writes an entry to the log of each sink it is routed to, under
// each sink's bound: a block sink that is full makes Append wait (until
// its output catches up, or ctx ends); a drop_newest sink that is full is
// left out and the entry's points counted as dropped for it; a drop_oldest
// sink drops its oldest unread entries until the new one fits (its output's
// batch in hand is kept apart, see keepApartLocked).
//
// Appends of one feed are serialised; appends of different feeds proceed
// independently, and a feed waits only for the sinks it is routed to. The
// bound is checked before the append, so concurrent appends to one sink
// may overshoot it by one entry each.
//
// The entry's points must not change once Append returns: outputs may
// write them from memory (see tail).
func (b *Buffer) Append(ctx context.Context, e *Entry) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	fs := b.feedLocked(e.Feed)
	b.mu.Unlock()

	fs.appendMu.Lock()
	defer fs.appendMu.Unlock()
	b.mu.Lock()
	seq := fs.seq + 1
	b.mu.Unlock()
	payload, err := appendEntry(nil, e, seq, e.Sinks)
	if err != nil {
		return fmt.Errorf("buffer: encode: %w", err)
	}
	targets, truncate, err := b.admit(ctx, e, wal.RecordSize(len(payload)))
	if err != nil {
		return err
	}
	if len(targets) != len(e.Sinks) {
		// Record only the sinks that get the entry.
		names := make([]string, len(targets))
		for i, sl := range targets {
			names[i] = sl.name
		}
		if payload, err = appendEntry(payload[:0], e, seq, names); err != nil {
			return fmt.Errorf("buffer: encode: %w", err)
		}
	}
	for _, sl := range truncate {
		b.truncate(sl)
	}
	var errs []error
	for _, sl := range targets {
		idx, err := sl.log.Append(payload)
		if err != nil {
			errs = append(errs, fmt.Errorf("buffer of sink %s: %w", sl.name, err))
			b.unadmit(sl, e)
			continue
		}
		sl.tail.add(idx, e.Points)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// The sequence number is used even if an append failed: some log may
	// hold the entry.
	fs.seq = seq
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if e.Position != nil {
		fs.newest = positionAt{Seq: seq, Position: slices.Clone(e.Position)}
	}
	b.settleLocked(e.Feed)
	return nil
}

// admit waits until every block sink the entry goes to has room for size
// more bytes, then applies the other sinks' policies and counts the entry
// in each sink that takes it (before it is appended, so that an output
// that reads it at once never sees counts below zero). It returns the
// sinks to append to, and those whose drop_oldest freed whole segments.
func (b *Buffer) admit(ctx context.Context, e *Entry, size int64) (targets, truncate []*sinkLog, err error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, nil, ErrClosed
		}
		var wait chan struct{}
		for _, name := range e.Sinks {
			if sl := b.sinks[name]; sl != nil && sl.whenFull != config.DropNewest && sl.whenFull != config.DropOldest && !sl.fitsLocked(size) {
				wait = sl.moved
				break
			}
		}
		if wait != nil {
			b.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		for _, name := range e.Sinks {
			sl := b.sinks[name]
			if sl == nil {
				continue
			}
			if !sl.fitsLocked(size) {
				switch sl.whenFull {
				case config.DropNewest:
					sl.droppedFull += uint64(len(e.Points))
					continue
				case config.DropOldest:
					if b.dropOldestLocked(sl, size) {
						truncate = append(truncate, sl)
					}
				}
			}
			sl.pending += int64(len(e.Points))
			sl.appended += uint64(len(e.Points))
			sl.feedLocked(e.Feed).pending++
			targets = append(targets, sl)
		}
		b.mu.Unlock()
		return targets, truncate, nil
	}
}

// unadmit takes back what admit counted for an entry whose append failed.
func (b *Buffer) unadmit(sl *sinkLog, e *Entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sl.pending -= int64(len(e.Points))
	sl.appended -= uint64(len(e.Points))
	sl.feedLocked(e.Feed).pending--
}

// settleLocked moves a feed's settled position up to the newest position
// below which every sink has passed all of the feed's entries: for each
// sink still holding some of them, the newest position it has passed
// bounds it. Sinks write in order, so everything of the feed before that
// position is passed in that sink too.
func (b *Buffer) settleLocked(feed string) {
	fs := b.feeds[feed]
	if fs == nil {
		return
	}
	cand := fs.newest
	for _, sl := range b.sinks {
		if sf := sl.feeds[feed]; sf != nil && sf.pending > 0 && sf.written.Seq < cand.Seq {
			cand = sf.written
		}
	}
	fs.settled = fs.settled.newer(cand)
}

// truncate removes the segments of sl's log that its cursor has passed,
// after saving the positions they may hold the only copy of.
func (b *Buffer) truncate(sl *sinkLog) {
	b.mu.Lock()
	next := sl.next
	b.mu.Unlock()
	if !sl.log.Removable(next) {
		return
	}
	if err := b.savePositions(); err != nil {
		b.logger.Error("buffer: cannot save positions; written segments stay until it can", "sink", sl.name, "error", err)
		return
	}
	if err := sl.log.TruncateFront(next); err != nil && !errors.Is(err, wal.ErrClosed) {
		b.logger.Error("buffer: removing written segments failed", "sink", sl.name, "error", err)
	}
}

// savePositions writes positions.json: every feed's settled position and
// sequence number, and per sink the newest position it passed.
func (b *Buffer) savePositions() error {
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	b.mu.Lock()
	pf := positionsFile{
		Version: positionsVersion,
		Seq:     make(map[string]uint64, len(b.feeds)),
		Settled: make(map[string]positionAt, len(b.feeds)),
		Written: make(map[string]map[string]positionAt, len(b.sinks)),
	}
	for name, fs := range b.feeds {
		pf.Seq[name] = fs.seq
		if fs.settled.Seq > 0 || fs.settled.Position != nil {
			pf.Settled[name] = fs.settled
		}
		// A rewind numbered below the settled position no longer
		// matters: every position it caps is older than that one.
		var rs []rewind
		for _, r := range fs.rewinds {
			if r.Seq >= fs.settled.Seq {
				rs = append(rs, r)
			}
		}
		if len(rs) > 0 {
			if pf.Rewinds == nil {
				pf.Rewinds = make(map[string][]rewind)
			}
			pf.Rewinds[name] = rs
		}
	}
	for name, sl := range b.sinks {
		w := make(map[string]positionAt)
		for feed, sf := range sl.feeds {
			if sf.written.Seq > 0 {
				w[feed] = sf.written
			}
		}
		pf.Written[name] = w
	}
	b.mu.Unlock()
	raw, err := json.Marshal(pf)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(b.positionsPath(), raw); err != nil {
		return fmt.Errorf("save positions: %w", err)
	}
	return nil
}

// Declare saves a feed's measurements (and their uniqueness keys), so
// that after a restart every sink learns them before it writes the
// feed's backlog.
func (b *Buffer) Declare(feed string, ms []sluice.Measurement) error {
	b.declareMu.Lock()
	defer b.declareMu.Unlock()
	b.mu.Lock()
	b.measurements[feed] = ms
	raw, err := json.Marshal(b.measurements)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.Write(b.measurementsPath(), raw)
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

// Size is the bytes the buffer's sink logs take on disk.
func (b *Buffer) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, sl := range b.sinks {
		n += sl.diskBytesLocked()
	}
	return n
}

// Close saves positions and closes every log.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, sl := range b.sinks {
		sl.advancedLocked() // wake appenders waiting for room: they see closed
	}
	b.mu.Unlock()
	err := b.savePositions()
	return errors.Join(err, b.closeSinks())
}

func (b *Buffer) closeSinks() error {
	var errs []error
	for _, sl := range b.sinks {
		errs = append(errs, sl.close())
	}
	return errors.Join(errs...)
}

// Cursor returns the handle for a configured sink, or nil.
func (b *Buffer) Cursor(sink string) *SinkCursor {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sl := b.sinks[sink]; sl != nil {
		return &SinkCursor{b: b, sl: sl}
	}
	return nil
}
