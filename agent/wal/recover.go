package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Recovery is what Open found and repaired.
type Recovery struct {
	TruncatedBytes   int64    // torn/corrupt tail cut from the last segment
	TruncatedRecords int      // records (complete-looking but failing CRC) cut from the tail; a partial record counts as 1
	Quarantined      []string // segment files renamed aside (*.corrupt) because of a bad record before the tail
	LostRecords      uint64   // index numbers that vanished with quarantined segments (best effort: gap between neighbours)
}

var errOverlap = errors.New("segment overlaps the one before it")

// recover reads every segment in l.dir, repairs what it must, and sets up
// l.segs, l.f, l.last, l.size and l.synced.
//
// A segment before the last with a bad record is renamed aside whole: its
// tail is not torn by a crash (it was fsynced when sealed), so the disk or
// someone else changed it, and keeping its evidence matters more than
// salvaging its first records. The last segment's bad tail is what a
// crash mid-write leaves, and is cut off.
func (l *Log) recover() (rec Recovery, err error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return rec, fmt.Errorf("wal: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)

	var (
		kept     []*segment
		buf      []byte
		floor    uint64 = 1 // no new record may take an index below this
		lostFrom uint64     // first index of a run of quarantined segments, 0 if none pending
		dirty    bool       // the directory changed and needs an fsync
		active   *os.File
	)
	defer func() {
		if active != nil && err != nil {
			active.Close()
		}
	}()
	for i, first := range firsts {
		s := newSegment(l.dir, first)
		var b []byte
		var fileSize int64
		if b, fileSize, err = readSegment(s.path, buf); err != nil {
			return rec, err
		}
		buf = b[:0]
		sc := scanSegment(b, first)
		if int64(len(b)) < fileSize && sc.bad == nil {
			sc.bad, sc.cut = errTooLarge, 1
		}
		from := max(first, floor) // where this segment's own indexes start
		floor = max(floor, first+uint64(len(sc.ends)))
		if from > first {
			// Only a hand-made directory gets here; renaming it aside keeps
			// an index from standing for two records.
			sc = scan{bad: errOverlap}
		}

		switch last := i == len(firsts)-1; {
		case last && sc.bad != errOverlap:
			if sc.bad != nil {
				if active, err = l.cutTail(s.path, sc, fileSize); err != nil {
					return rec, err
				}
				rec.TruncatedBytes += fileSize - sc.valid()
				rec.TruncatedRecords += sc.cut
			} else if active, err = os.OpenFile(s.path, os.O_RDWR, 0); err != nil {
				return rec, fmt.Errorf("wal: %w", err)
			}
		case sc.bad != nil:
			var to string
			if to, err = quarantine(s.path); err != nil {
				return rec, err
			}
			l.log.Error("wal: quarantined a segment with a bad record", "file", s.path, "offset", sc.valid(), "reason", sc.bad, "moved_to", to)
			rec.Quarantined = append(rec.Quarantined, to)
			dirty = true
			if lostFrom == 0 {
				lostFrom = from
			}
			continue
		case len(sc.ends) == 0:
			// An empty sealed segment holds nothing and breaks the rule
			// that only the active segment may be empty.
			if err = os.Remove(s.path); err != nil {
				return rec, fmt.Errorf("wal: remove empty segment: %w", err)
			}
			dirty = true
			continue
		}
		s.ends = sc.ends
		if lostFrom != 0 {
			rec.LostRecords += first - lostFrom
			lostFrom = 0
		}
		kept = append(kept, s)
	}

	// No usable last segment (none at all, or the last one was set aside):
	// start one at floor, so no index a reader may have seen comes back.
	if active == nil {
		s := newSegment(l.dir, floor)
		if active, err = os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return rec, fmt.Errorf("wal: new segment: %w", err)
		}
		if lostFrom != 0 {
			rec.LostRecords += floor - lostFrom
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
	l.f = active
	l.last = kept[len(kept)-1].next() - 1
	l.synced = l.last
	for _, s := range kept {
		l.size += s.size()
	}
	return rec, nil
}

// cutTail truncates the last segment after its last valid record and
// returns it open for appending.
func (l *Log) cutTail(path string, sc scan, fileSize int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := f.Truncate(sc.valid()); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: cut torn tail: %w", err)
	}
	if err := l.hooks.sync(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync %s: %w", path, err)
	}
	l.log.Warn("wal: cut a torn or corrupt tail", "file", path, "offset", sc.valid(),
		"bytes", fileSize-sc.valid(), "records", sc.cut, "reason", sc.bad)
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

// quarantine renames a segment to <name>.corrupt, or <name>.<n>.corrupt
// if that is taken, and returns the new path.
func quarantine(path string) (string, error) {
	to := path + ".corrupt"
	for n := 1; ; n++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.%d.corrupt", path, n)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("wal: quarantine: %w", err)
	}
	return filepath.Clean(to), nil
}
