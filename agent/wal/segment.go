package wal

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// maxSegmentBytes caps Options.SegmentBytes. Open reads a whole segment
// into memory to check it, so this is also the most Open allocates; it
// keeps every offset within a segment in a uint32 (a segment past
// SegmentBytes holds a single record, at most MaxPayload+headerSize).
const maxSegmentBytes = 256 << 20

const segmentExt = ".wal"

// segment is one file of the log: records first, first+1, ... in order.
// Only the last segment of a Log (the active one) is written to; the
// others are sealed and never change until TruncateFront removes them.
type segment struct {
	first uint64
	path  string
	// ends[i] is the offset just past record first+i: 4 bytes a record
	// buy exact SizeFrom and let a Reader seek straight to any index.
	ends []uint32
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentExt) }

// parseSegmentName returns the first index a segment file name carries.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	return first, err == nil
}

func newSegment(dir string, first uint64) *segment {
	return &segment{first: first, path: filepath.Join(dir, segmentName(first))}
}

// count is the number of records in the segment.
func (s *segment) count() uint64 { return uint64(len(s.ends)) }

// next is the index the record after the segment's last one has.
func (s *segment) next() uint64 { return s.first + s.count() }

// size is the bytes the segment's records take (the file's size).
func (s *segment) size() int64 {
	if len(s.ends) == 0 {
		return 0
	}
	return int64(s.ends[len(s.ends)-1])
}

// offset is where record index starts; index in [first, next()].
func (s *segment) offset(index uint64) int64 {
	if index == s.first {
		return 0
	}
	return int64(s.ends[index-s.first-1])
}

// run is a stretch of valid records with consecutive indexes in a
// segment's bytes.
type run struct {
	first uint64   // index of its first record
	start int      // offset of its first record
	ends  []uint32 // end of each record, relative to start
	stop  error    // why the record after it did not parse; nil if the bytes ended
}

// size is the bytes the run's records take.
func (r *run) size() int {
	if len(r.ends) == 0 {
		return 0
	}
	return int(r.ends[len(r.ends)-1])
}

// end is the offset just past the run's last record.
func (r *run) end() int { return r.start + r.size() }

// next is the index the record after the run's last one would have.
func (r *run) next() uint64 { return r.first + uint64(len(r.ends)) }

// scan is what scanSegment found in a segment's bytes: runs of valid
// records separated by bad regions (the bytes from one run's end to the
// next one's start), then perhaps a bad tail (from the last run's end to
// the end of the bytes) with no valid record in it.
type scan struct {
	// runs[0] starts at offset 0 with the segment's first index and may
	// be empty; each later one starts where resync found a valid record
	// after a bad region.
	runs []run
	cut  int // records in the bad tail as countRecords counts them; 0 if none
}

// tail is the last run; the bytes after it, if any, are the bad tail.
func (sc *scan) tail() *run { return &sc.runs[len(sc.runs)-1] }

// startsRun reports whether a run after the first starts at index.
func (sc *scan) startsRun(index uint64) bool {
	for _, r := range sc.runs[1:] {
		if r.first == index {
			return true
		}
	}
	return false
}

// scanSegment checks the records in b, the contents of a segment whose
// first record has index first. At a record that is partial, fails its
// checksum or carries the wrong index, it resyncs: it looks for the next
// valid record further on and goes on from there.
func scanSegment(b []byte, first uint64) scan {
	sc := scan{runs: []run{{first: first}}}
	for {
		r := sc.tail()
		off, want := r.start, r.first
		for off < len(b) {
			_, n, err := parseRecord(b[off:], want)
			if err != nil {
				r.stop = err
				break
			}
			off += n
			want++
			r.ends = append(r.ends, uint32(off-r.start))
		}
		if r.stop == nil {
			return sc
		}
		// From off itself: a whole record with a valid checksum there
		// failed only for carrying a later index than want.
		at, index, ok := resync(b, off, want, first)
		if !ok {
			sc.cut = countRecords(b[off:], want)
			return sc
		}
		sc.runs = append(sc.runs, run{first: index, start: at})
	}
}

// resync returns the first offset at or after from where a whole record
// with a valid checksum starts, and its index, which must be want or
// later. Before computing a checksum it checks what is cheap: an index in
// range (no record at offset off can have an index past first+off/16,
// since each record before it takes at least 16 bytes) and a length that
// fits. Random bytes and zeros fail those checks, so the scan is linear
// in practice; a payload that embeds a whole record of the right index
// range, checksum included, could still be taken for one.
func resync(b []byte, from int, want, first uint64) (int, uint64, bool) {
	for off := from; off+headerSize <= len(b); off++ {
		length, _, index := parseHeader(b[off:])
		if index < want || index > first+uint64(off/headerSize) ||
			length > MaxPayload || recordSize(int(length)) > len(b)-off {
			continue
		}
		if _, _, err := parseRecord(b[off:], index); err == nil {
			return off, index, true
		}
	}
	return 0, 0, false
}

// countRecords counts the records in b that look whole (right index, a
// length that fits), checksum aside, plus one for whatever follows the
// last of them. A torn write or garbage counts 1, not one per 16 bytes.
func countRecords(b []byte, want uint64) int {
	n := 0
	for len(b) > 0 {
		n++
		if len(b) < headerSize {
			break
		}
		length, _, index := parseHeader(b)
		if index != want || length > MaxPayload || recordSize(int(length)) > len(b) {
			break
		}
		b = b[recordSize(int(length)):]
		want++
	}
	return n
}
