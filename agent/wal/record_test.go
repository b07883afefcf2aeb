package wal

import (
	"bytes"
	"errors"
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
	r3 := int(recordOffset(10, 13))
	tests := []struct {
		name  string
		in    []byte
		first uint64
		n     int // valid records
		cut   int
	}{
		{"clean", seg, 10, 5, 0},
		{"empty", nil, 10, 0, 0},
		{"wrong first index", seg, 9, 0, 1},
		{"torn", seg[:len(seg)-3], 10, 4, 1},
		{"bad checksum mid-way: it and the 2 after", func() []byte { b := bytes.Clone(seg); b[r3-recordSize(len(payloadFor(12)))+4]++; return b }(), 10, 2, 3},
		{"tail garbage", append(bytes.Clone(seg), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 10, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scanSegment(tt.in, tt.first)
			if len(sc.ends) != tt.n || sc.cut != tt.cut || (sc.bad != nil) != (tt.cut > 0) {
				t.Fatalf("%d valid, %d cut (%v); want %d, %d", len(sc.ends), sc.cut, sc.bad, tt.n, tt.cut)
			}
		})
	}
}

// FuzzScanSegment checks that any bytes scan without panicking, that the
// valid prefix parses back record by record, and that a bad scan cuts
// something.
func FuzzScanSegment(f *testing.F) {
	var seg []byte
	for i := uint64(1); i <= 3; i++ {
		seg = appendRecord(seg, i, payloadFor(i))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-4])
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := scanSegment(b, 1)
		off := 0
		for k, end := range sc.ends {
			_, n, err := parseRecord(b[off:], uint64(k+1))
			if err != nil || off+n != int(end) {
				t.Fatalf("record %d: %v, ends at %d not %d", k+1, err, off+n, end)
			}
			off += n
		}
		if (sc.bad == nil) != (off == len(b)) || (sc.bad != nil) != (sc.cut > 0) {
			t.Fatalf("valid %d of %d bytes, bad %v, cut %d", off, len(b), sc.bad, sc.cut)
		}
	})
}
