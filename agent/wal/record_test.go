package wal

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestParseRecord(t *testing.T) {
	good := appendRecord(nil, 7, []byte("hello"))
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 1
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    uint64
		payload string
		err     error
	}{
		{"good", good, 7, "hello", nil},
		{"good with more after", append(bytes.Clone(good), 1, 2, 3), 7, "hello", nil},
		{"empty payload", appendRecord(nil, 1, nil), 1, "", nil},
		{"empty input", nil, 7, "", errShort},
		{"short header", good[:headerSize-1], 7, "", errShort},
		{"short payload", good[:len(good)-1], 7, "", errShort},
		{"wrong index", good, 8, "", errIndex},
		{"payload flipped", flip(headerSize + 2), 7, "", errChecksum},
		{"checksum flipped", flip(4), 7, "", errChecksum},
		{"index flipped", flip(8), 6, "", errChecksum},
		{"length over the limit", append([]byte{0xff, 0xff, 0xff, 0xff}, good[4:]...), 7, "", errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, n, err := parseRecord(tt.in, tt.want)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && (string(p) != tt.payload || n != recordSize(len(tt.payload))) {
				t.Fatalf("got %q (%d bytes), want %q", p, n, tt.payload)
			}
		})
	}
}

func TestScanSegment(t *testing.T) {
	var seg []byte
	for i := uint64(10); i < 15; i++ {
		seg = appendRecord(seg, i, payloadFor(i))
	}
	at := func(i uint64) int { return int(recordOffset(10, i)) }
	mangle := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(seg)) }
	type span struct {
		first uint64
		n     int // records
	}
	tests := []struct {
		name  string
		in    []byte
		first uint64
		runs  []span
		cut   int
	}{
		{"clean", seg, 10, []span{{10, 5}}, 0},
		{"empty", nil, 10, []span{{10, 0}}, 0},
		// No record at offset off has an index past first+off/16: the first is
		// not taken, the rest are.
		{"indexes start later than the name says", seg, 9, []span{{9, 0}, {11, 4}}, 0},
		{"torn", seg[:len(seg)-3], 10, []span{{10, 4}}, 1},
		{"tail garbage", append(bytes.Clone(seg), make([]byte, 18)...), 10, []span{{10, 5}}, 1},
		{"last checksum flipped", mangle(func(b []byte) []byte { b[at(14)+4]++; return b }), 10, []span{{10, 4}}, 1},
		{"checksum flipped mid-way: resync after it", mangle(func(b []byte) []byte { b[at(12)+4]++; return b }), 10, []span{{10, 2}, {13, 2}}, 0},
		{"length grown past the end", mangle(func(b []byte) []byte { b[at(12)+2] = 0x10; return b }), 10, []span{{10, 2}, {13, 2}}, 0},
		{"index changed", mangle(func(b []byte) []byte { b[at(11)+8] ^= 0x80; return b }), 10, []span{{10, 1}, {12, 3}}, 0},
		{"first record bad", mangle(func(b []byte) []byte { b[headerSize] ^= 1; return b }), 10, []span{{10, 0}, {11, 4}}, 0},
		{"two bad regions", mangle(func(b []byte) []byte { b[at(11)+headerSize]++; b[at(13)]++; return b }), 10, []span{{10, 1}, {12, 1}, {14, 1}}, 0},
		{"garbage inserted", slices.Concat(seg[:at(12)], []byte("noise, not a record"), seg[at(12):]), 10, []span{{10, 2}, {12, 3}}, 0},
		{"garbage before the first", slices.Concat(make([]byte, 40), seg), 10, []span{{10, 0}, {10, 5}}, 0},
		{"a record from too far ahead is not resynced to", slices.Concat(seg[:at(12)], make([]byte, 5), appendRecord(nil, 99, []byte("forged"))), 10, []span{{10, 2}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scanSegment(tt.in, tt.first)
			var got []span
			for _, r := range sc.runs {
				got = append(got, span{r.first, len(r.ends)})
			}
			if !slices.Equal(got, tt.runs) || sc.cut != tt.cut {
				t.Fatalf("runs %v, cut %d; want %v, %d", got, sc.cut, tt.runs, tt.cut)
			}
			if bad := sc.tail().stop != nil; bad != (tt.cut > 0) {
				t.Fatalf("tail stop %v with cut %d", sc.tail().stop, sc.cut)
			}
		})
	}
}

// FuzzScanSegment checks that any bytes scan without panicking, that
// every run parses back record by record at the offsets and indexes the
// scan gives, that runs follow each other with rising indexes and only a
// bad region between them, and that a bad tail cuts something.
func FuzzScanSegment(f *testing.F) {
	var seg []byte
	for i := uint64(1); i <= 3; i++ {
		seg = appendRecord(seg, i, payloadFor(i))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-4])
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Add(slices.Concat(seg[:20], seg[30:]))
	f.Add(slices.Concat([]byte("xx"), seg))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := scanSegment(b, 1)
		if sc.runs[0].start != 0 || sc.runs[0].first != 1 {
			t.Fatalf("first run at %d index %d", sc.runs[0].start, sc.runs[0].first)
		}
		for k, r := range sc.runs {
			off := r.start
			for j, end := range r.ends {
				_, n, err := parseRecord(b[off:], r.first+uint64(j))
				if err != nil || off+n != r.start+int(end) {
					t.Fatalf("run %d record %d: %v, ends at %d not %d", k, j, err, off+n, r.start+int(end))
				}
				off += n
			}
			if k == 0 {
				continue
			}
			prev := sc.runs[k-1]
			// A bad region has bytes, or skips indexes (two valid records
			// with a gap between their indexes), or both.
			if prev.stop == nil || r.start < prev.end() || r.first < prev.next() ||
				r.start == prev.end() && r.first == prev.next() || len(r.ends) == 0 {
				t.Fatalf("run %d (index %d at %d) after one ending at %d, next %d, stop %v", k, r.first, r.start, prev.end(), prev.next(), prev.stop)
			}
		}
		tail := sc.tail()
		if (tail.stop == nil) != (tail.end() == len(b)) || (tail.stop != nil) != (sc.cut > 0) {
			t.Fatalf("tail ends at %d of %d bytes, stop %v, cut %d", tail.end(), len(b), tail.stop, sc.cut)
		}
	})
}
