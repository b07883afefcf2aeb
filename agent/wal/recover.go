package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Recovery is what Open found and repaired.
type Recovery struct {
	// TruncatedBytes is the torn tail cut from the last segment, and
	// TruncatedRecords the records in it (ones that look whole but fail
	// their checksum; a partial record or garbage counts as 1).
	TruncatedBytes   int64
	TruncatedRecords int
	// Quarantined lists the *.corrupt files Open made: a copy of each
	// segment it skipped a bad record in, or the segment itself when
	// nothing in it could be kept.
	Quarantined []string
	// SkippedBytes is what Open did not keep besides a torn tail: bad
	// records and garbage skipped, and segments set aside whole.
	SkippedBytes int64
	// LostRecords counts the index numbers that went with them: exact
	// for a bad region between valid records; for a bad tail of a sealed
	// segment or a segment set aside whole, every index up to the next
	// segment's first.
	LostRecords uint64
}

var errOverlap = errors.New("segment overlaps the one before it")

// tmpExt ends the name of a file Open writes before renaming it into
// place; one left by a crash is removed at the next Open.
const tmpExt = ".tmp"

// recover reads every segment in l.dir, repairs what it must, and sets up
// l.segs, l.f, l.last, l.size and l.synced.
//
// A bad record followed by valid ones cannot come from a crash (appends
// are sequential, and sealed segments were fsynced): the disk or someone
// else changed it. The segment is copied aside as evidence, the bad
// bytes are skipped, and the valid records on both sides are kept. Only
// bad bytes at the end of the last segment, with nothing valid after
// them, are what a crash mid-write leaves, and are cut off.
func (l *Log) recover() (rec Recovery, err error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return rec, fmt.Errorf("wal: %w", err)
	}
	var (
		firsts []uint64
		dirty  bool // the directory changed and needs an fsync
	)
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if first, ok := parseSegmentName(name); ok {
			firsts = append(firsts, first)
		} else if isTemp(name) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return rec, fmt.Errorf("wal: remove leftover: %w", err)
			}
			dirty = true
		}
	}
	slices.Sort(firsts)

	var (
		kept   []*segment
		buf    []byte
		floor  uint64 = 1 // no new record may take an index below this
		placed        = map[uint64]bool{}
		active *os.File
	)
	defer func() {
		if active != nil && err != nil {
			active.Close()
		}
	}()
	for i, first := range firsts {
		if placed[first] {
			continue // a segment this Open salvaged records into
		}
		s := newSegment(l.dir, first)
		var b []byte
		var fileSize int64
		if b, fileSize, err = readSegment(s.path, buf); err != nil {
			return rec, err
		}
		buf = b[:0]
		sc := scanSegment(b, first)
		tail := sc.tail()
		if int64(len(b)) < fileSize && tail.stop == nil {
			tail.stop, sc.cut = errTooLarge, 1
		}
		from := max(first, floor) // where this segment's own indexes start
		floor = max(floor, tail.next())
		// The segment is the last one unless a later file is not one of
		// its own runs (left by a salvage a crash interrupted); next is
		// where the index numbers go on after it.
		next, last := floor, true
		for _, f := range firsts[i+1:] {
			if !placed[f] && !sc.startsRun(f) {
				next, last = f, false
				break
			}
		}
		clean := len(sc.runs) == 1 && tail.stop == nil

		switch {
		case from > first:
			// Only a hand-made directory gets here; setting it aside
			// keeps an index from standing for two records.
			if err = l.setAside(&rec, s.path, 0, errOverlap, fileSize, from, next); err != nil {
				return rec, err
			}
			dirty = true
			continue
		case clean && len(tail.ends) == 0 && !last:
			// An empty sealed segment holds nothing and breaks the rule
			// that only the active segment may be empty.
			if err = os.Remove(s.path); err != nil {
				return rec, fmt.Errorf("wal: remove empty segment: %w", err)
			}
			dirty = true
			continue
		case clean:
			s.ends = tail.ends
			kept = append(kept, s)
		case len(sc.runs) == 1 && last:
			// A torn tail and nothing else: cut it.
			if active, err = l.cutTail(s.path, tail.end(), fileSize, sc.cut, tail.stop); err != nil {
				return rec, err
			}
			rec.TruncatedBytes += fileSize - int64(tail.end())
			rec.TruncatedRecords += sc.cut
			s.ends = tail.ends
			kept = append(kept, s)
		case len(sc.runs) == 1 && len(tail.ends) == 0:
			// A sealed segment with nothing valid in it.
			if err = l.setAside(&rec, s.path, tail.end(), tail.stop, fileSize, first, next); err != nil {
				return rec, err
			}
			dirty = true
			continue
		default:
			var segs []*segment
			var held uint64
			if segs, held, err = l.salvage(&rec, s, b, fileSize, sc, last, next, placed); err != nil {
				return rec, err
			}
			floor = max(floor, held)
			kept = append(kept, segs...)
			dirty = true
		}
		if last && active == nil {
			path := kept[len(kept)-1].path
			if active, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
				return rec, fmt.Errorf("wal: %w", err)
			}
		}
	}

	// The active segment must go on at floor, so that no index a reader
	// may have seen comes back. When there is none (no segment at all, or
	// the last one was set aside), or it ends below floor (a file set
	// aside held later indexes), a new one starts at floor.
	if active != nil {
		if s := kept[len(kept)-1]; s.next() < floor {
			if err = l.hooks.sync(active); err != nil {
				return rec, fmt.Errorf("wal: sync %s: %w", s.path, err)
			}
			err, active = active.Close(), nil
			if err != nil {
				return rec, fmt.Errorf("wal: %w", err)
			}
			if s.count() == 0 {
				if err = os.Remove(s.path); err != nil {
					return rec, fmt.Errorf("wal: remove empty segment: %w", err)
				}
				kept = kept[:len(kept)-1]
			}
		}
	}
	if active == nil {
		s := newSegment(l.dir, floor)
		if active, err = os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return rec, fmt.Errorf("wal: new segment: %w", err)
		}
		kept = append(kept, s)
		dirty = true
	}
	if dirty {
		if err = syncDir(l.dir); err != nil {
			return rec, err
		}
	}
	// Records a crashed process left in the page cache are made durable
	// now, so that everything a reader can see from here on is.
	if err = l.hooks.sync(active); err != nil {
		return rec, fmt.Errorf("wal: sync %s: %w", kept[len(kept)-1].path, err)
	}
	l.segs = kept
	l.compacted = kept[0].first
	l.f = active
	l.last = kept[len(kept)-1].next() - 1
	l.synced = l.last
	for _, s := range kept {
		l.size += s.size()
	}
	return rec, nil
}

// setAside renames a segment none of whose records Open keeps to
// *.corrupt and counts it: its bytes, and the indexes from to next.
func (l *Log) setAside(rec *Recovery, path string, offset int, reason error, size int64, from, next uint64) error {
	to, err := quarantine(path)
	if err != nil {
		return err
	}
	lost := gap(from, next)
	l.log.Error("wal: quarantined a segment with a bad record", "file", path, "offset", offset, "reason", reason,
		"moved_to", to, "records", lost)
	rec.Quarantined = append(rec.Quarantined, to)
	rec.SkippedBytes += size
	rec.LostRecords += lost
	return nil
}

// salvage keeps the valid records of a segment with bad bytes before its
// end (or, for a sealed segment, at its end): a copy of the file goes
// aside as *.corrupt, the records of each run after a bad region go to a
// segment file of their own, named after the run's first index, and the
// file is cut after its first run (removed if that is empty). It returns
// the segments kept, in order, and the index after the last record of
// any file it had to set aside (see placeRun); it marks in placed the
// files it wrote.
//
// The copy and the new files are durable before the file is cut, so a
// crash at any point leaves every record in the log: the next Open finds
// the same runs again and, finding their files already written, reuses
// them.
func (l *Log) salvage(rec *Recovery, s *segment, b []byte, fileSize int64, sc scan, last bool, next uint64, placed map[uint64]bool) (segs []*segment, held uint64, err error) {
	copyPath, err := l.keepCopy(s.path)
	if err != nil {
		return nil, 0, err
	}
	rec.Quarantined = append(rec.Quarantined, copyPath)
	head := &sc.runs[0]
	if len(head.ends) > 0 {
		segs = append(segs, &segment{first: s.first, path: s.path, ends: head.ends})
	}
	for k := 1; k < len(sc.runs); k++ {
		prev, r := &sc.runs[k-1], &sc.runs[k]
		lost := r.first - prev.next()
		l.log.Error("wal: skipped corrupt records; kept the valid records after them", "file", s.path,
			"offset", prev.end(), "bytes", r.start-prev.end(), "records", lost,
			"first_index", prev.next(), "last_index", r.first-1, "reason", prev.stop, "copy", copyPath)
		rec.SkippedBytes += int64(r.start - prev.end())
		rec.LostRecords += lost
		t := &segment{first: r.first, path: filepath.Join(l.dir, segmentName(r.first)), ends: r.ends}
		l.log.Info("wal: salvaged records into a segment of their own", "file", t.path,
			"first_index", t.first, "last_index", t.next()-1)
		segs = append(segs, t)
	}
	tail := sc.tail()
	if tailBytes := fileSize - int64(tail.end()); tailBytes > 0 {
		if last {
			// The file that ends the log is written without it: cut.
			l.log.Warn("wal: cut a torn or corrupt tail", "file", s.path, "offset", tail.end(),
				"bytes", tailBytes, "records", sc.cut, "reason", tail.stop)
			rec.TruncatedBytes += tailBytes
			rec.TruncatedRecords += sc.cut
		} else {
			lost := gap(tail.next(), next)
			l.log.Error("wal: skipped corrupt records at the end of a sealed segment", "file", s.path,
				"offset", tail.end(), "bytes", tailBytes, "records", lost,
				"first_index", tail.next(), "last_index", tail.next()+lost-1, "reason", tail.stop, "copy", copyPath)
			rec.SkippedBytes += tailBytes
			rec.LostRecords += lost
		}
	}

	// The last run first: the file itself may be the first run's (when
	// garbage came before its first record), and is replaced last.
	for k := len(sc.runs) - 1; k >= 1; k-- {
		r, t := &sc.runs[k], segs[len(segs)-len(sc.runs)+k]
		data := b[r.start:r.end()]
		if t.path == s.path {
			err = l.writeFile(t.path, func(f *os.File) error { _, err := f.Write(data); return err })
		} else {
			var h uint64
			h, err = l.placeRun(rec, t.path, t.first, data)
			held = max(held, h)
			placed[t.first] = true
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if err := syncDir(l.dir); err != nil {
		return nil, 0, err
	}

	switch {
	case len(head.ends) > 0:
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("wal: %w", err)
		}
		defer f.Close()
		if err := f.Truncate(int64(head.end())); err != nil {
			return nil, 0, fmt.Errorf("wal: cut salvaged segment: %w", err)
		}
		if err := l.hooks.sync(f); err != nil {
			return nil, 0, fmt.Errorf("wal: sync %s: %w", s.path, err)
		}
	case segs[0].path != s.path:
		if err := os.Remove(s.path); err != nil {
			return nil, 0, fmt.Errorf("wal: remove salvaged segment: %w", err)
		}
	}
	return segs, held, nil
}

// placeRun writes data, the records of a salvaged run, to the segment
// file path and returns the index after the last valid record of a file
// it had to set aside there (0 if none). A file already there with the
// same bytes was written by a salvage a crash interrupted, and is kept;
// one with other bytes (only in a hand-made directory) is set aside, and
// scanned so that its indexes are not reused.
func (l *Log) placeRun(rec *Recovery, path string, first uint64, data []byte) (uint64, error) {
	var held uint64
	switch size, same, err := sameContent(path, data); {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return 0, err
	case err == nil && same:
		return 0, nil
	case err == nil:
		b, _, err := readSegment(path, nil)
		if err != nil {
			return 0, err
		}
		sc := scanSegment(b, first)
		held = sc.tail().next()
		to, err := quarantine(path)
		if err != nil {
			return 0, err
		}
		l.log.Error("wal: quarantined a segment in the way of salvaged records", "file", path, "moved_to", to)
		rec.Quarantined = append(rec.Quarantined, to)
		rec.SkippedBytes += size
	}
	return held, l.writeFile(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// cutTail truncates the last segment after its last valid record, at
// valid, and returns it open for appending.
func (l *Log) cutTail(path string, valid int, fileSize int64, records int, reason error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := f.Truncate(int64(valid)); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: cut torn tail: %w", err)
	}
	if err := l.hooks.sync(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync %s: %w", path, err)
	}
	l.log.Warn("wal: cut a torn or corrupt tail", "file", path, "offset", valid,
		"bytes", fileSize-int64(valid), "records", records, "reason", reason)
	return f, nil
}

// readSegment reads a segment file into buf (grown as needed), up to the
// largest size a segment can validly have; it also returns the file's
// size, which is larger if there was more.
func readSegment(path string, buf []byte) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("wal: %w", err)
	}
	n := min(fi.Size(), max(maxSegmentBytes, int64(recordSize(MaxPayload))))
	buf = slices.Grow(buf[:0], int(n))[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, 0, fmt.Errorf("wal: read %s: %w", path, err)
	}
	return buf, fi.Size(), nil
}

// sameContent returns the size of the file at path and whether it holds
// exactly data, comparing a chunk at a time.
func sameContent(path string, data []byte) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("wal: %w", err)
	}
	if fi.Size() != int64(len(data)) {
		return fi.Size(), false, nil
	}
	chunk := make([]byte, min(len(data), 64<<10))
	for off := 0; off < len(data); {
		n, err := io.ReadFull(f, chunk[:min(len(chunk), len(data)-off)])
		if err != nil {
			return 0, false, fmt.Errorf("wal: read %s: %w", path, err)
		}
		if !bytes.Equal(chunk[:n], data[off:off+n]) {
			return fi.Size(), false, nil
		}
		off += n
	}
	return fi.Size(), true, nil
}

// keepCopy copies the file at path to a free *.corrupt name next to it
// and returns that name.
func (l *Log) keepCopy(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("wal: %w", err)
	}
	defer src.Close()
	to := corruptName(path)
	if err := l.writeFile(to, func(f *os.File) error {
		_, err := io.Copy(f, src)
		return err
	}); err != nil {
		return "", err
	}
	return to, nil
}

// writeFile writes a new file at path through a temporary file that is
// fsynced and renamed into place, so that a crash leaves all of it or
// none. The caller fsyncs the directory.
func (l *Log) writeFile(path string, write func(*os.File) error) error {
	tmp := path + tmpExt
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	err = write(f)
	if err == nil {
		err = l.hooks.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: write %s: %w", path, err)
	}
	return nil
}

// isTemp reports whether name is a file writeFile left behind.
func isTemp(name string) bool {
	base, ok := strings.CutSuffix(name, tmpExt)
	if !ok || len(base) < 20 {
		return false
	}
	_, ok = parseSegmentName(base[:20] + segmentExt)
	return ok
}

// gap is the count of indexes from from up to (not including) to.
func gap(from, to uint64) uint64 {
	if to <= from {
		return 0
	}
	return to - from
}

// corruptName is a free name to set path aside under: <name>.corrupt, or
// <name>.<n>.corrupt if that is taken.
func corruptName(path string) string {
	to := path + ".corrupt"
	for n := 1; ; n++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			return filepath.Clean(to)
		}
		to = fmt.Sprintf("%s.%d.corrupt", path, n)
	}
}

// quarantine renames a segment to a free *.corrupt name and returns it.
func quarantine(path string) (string, error) {
	to := corruptName(path)
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("wal: quarantine: %w", err)
	}
	return to, nil
}
