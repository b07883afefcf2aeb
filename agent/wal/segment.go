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

// scan is what scanSegment found in a segment's bytes.
type scan struct {
	ends []uint32 // end offset of each valid record, in order
	bad  error    // why the scan stopped before the end; nil if it did not
	cut  int      // records from the bad one to the end; a partial one counts 1
}

// valid is the length of the prefix made of valid records.
func (sc scan) valid() int64 {
	if len(sc.ends) == 0 {
		return 0
	}
	return int64(sc.ends[len(sc.ends)-1])
}

// scanSegment checks the records in b, the contents of a segment whose
// first record has index first. It stops at the first record that is
// partial, fails its checksum or carries the wrong index.
func scanSegment(b []byte, first uint64) scan {
	var sc scan
	off, want := 0, first
	for off < len(b) {
		_, n, err := parseRecord(b[off:], want)
		if err != nil {
			sc.bad = err
			sc.cut = countRecords(b[off:], want)
			break
		}
		off += n
		want++
		sc.ends = append(sc.ends, uint32(off))
	}
	return sc
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
