package wal

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeLog writes records 1..n with payloadFor into dir and closes it.
func writeLog(t *testing.T, dir string, segmentBytes int64, n uint64) {
	t.Helper()
	l, _ := openLog(t, dir, Options{SegmentBytes: segmentBytes, Sync: SyncNever})
	appendRange(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// recordOffset is where record i starts in the segment whose first index
// is first, for logs written by writeLog.
func recordOffset(first, i uint64) int64 {
	var off int64
	for k := first; k < i; k++ {
		off += int64(recordSize(len(payloadFor(k))))
	}
	return off
}

func TestTornTail(t *testing.T) {
	const n = 40
	// With 1000-byte segments, the last segment of 40 records holds 38-40.
	const lastFirst = 38
	sizeOf := func(i uint64) int64 { return int64(recordSize(len(payloadFor(i)))) }
	tests := []struct {
		name        string
		mangle      func(b []byte) []byte
		wantBytes   int64
		wantRecords int
		wantLast    uint64
	}{{
		name:        "cut mid-payload",
		mangle:      func(b []byte) []byte { return b[:len(b)-5] },
		wantBytes:   sizeOf(n) - 5,
		wantRecords: 1,
		wantLast:    n - 1,
	}, {
		name:        "cut mid-header",
		mangle:      func(b []byte) []byte { return b[:recordOffset(lastFirst, n)+7] },
		wantBytes:   7,
		wantRecords: 1,
		wantLast:    n - 1,
	}, {
		name:        "garbage appended",
		mangle:      func(b []byte) []byte { return append(b, "\x01\x02 not a record at all, just noise\xff"...) },
		wantBytes:   int64(len("\x01\x02 not a record at all, just noise\xff")),
		wantRecords: 1,
		wantLast:    n,
	}, {
		name:        "zeros appended",
		mangle:      func(b []byte) []byte { return append(b, make([]byte, 4096)...) },
		wantBytes:   4096,
		wantRecords: 1,
		wantLast:    n,
	}, {
		name: "last payload byte flipped",
		mangle: func(b []byte) []byte {
			b[len(b)-1] ^= 0x40
			return b
		},
		wantBytes:   sizeOf(n),
		wantRecords: 1,
		wantLast:    n - 1,
	}, {
		name: "second-to-last record's checksum flipped",
		mangle: func(b []byte) []byte {
			b[recordOffset(lastFirst, n-1)+5] ^= 0x01
			return b
		},
		wantBytes:   sizeOf(n-1) + sizeOf(n),
		wantRecords: 2,
		wantLast:    n - 2,
	}, {
		name:        "whole segment garbage",
		mangle:      func(b []byte) []byte { return []byte("garbage garbage garbage garbage") },
		wantBytes:   31,
		wantRecords: 1,
		wantLast:    lastFirst - 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, 1000, n)
			files := segmentFiles(t, dir)
			if last := files[len(files)-1]; last != segmentName(lastFirst) {
				t.Fatalf("last segment %s, want %s", last, segmentName(lastFirst))
			}
			path := filepath.Join(dir, segmentName(lastFirst))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.mangle(b), 0o644); err != nil {
				t.Fatal(err)
			}

			l, rec := openLog(t, dir, Options{SegmentBytes: 1000})
			if rec.TruncatedBytes != tt.wantBytes || rec.TruncatedRecords != tt.wantRecords || len(rec.Quarantined) != 0 || rec.LostRecords != 0 {
				t.Fatalf("recovery %+v, want %d bytes %d records cut", rec, tt.wantBytes, tt.wantRecords)
			}
			if l.LastIndex() != tt.wantLast || l.FirstIndex() != 1 {
				t.Fatalf("first %d last %d, want 1 %d", l.FirstIndex(), l.LastIndex(), tt.wantLast)
			}
			if got, want := l.Size(), dirSize(t, dir); got != want {
				t.Fatalf("Size %d, files hold %d", got, want)
			}
			checkRecords(t, readAll(t, l, 1), seq(1, tt.wantLast))
			appendRange(t, l, tt.wantLast+1, n+5)
			checkRecords(t, readAll(t, l, 1), seq(1, n+5))

			l.Close()
			l, rec = openLog(t, dir, Options{SegmentBytes: 1000})
			if !isZero(rec) || l.LastIndex() != n+5 {
				t.Fatalf("second reopen: last %d %+v, want %d and nothing to repair", l.LastIndex(), rec, n+5)
			}
		})
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	const n = 50
	tests := []struct {
		name      string
		first     uint64 // segment to corrupt
		lost      uint64
		wantFirst uint64
		want      []uint64
	}{
		{"middle", 21, 10, 1, slices.Concat(seq(1, 20), seq(31, n))},
		{"first", 1, 10, 11, seq(11, n)},
		{"second-to-last", 41, 10, 1, seq(1, 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, Options{SegmentBytes: 1000, Sync: SyncNever})
			for i := uint64(1); i <= n; i++ { // 10 records a segment
				if _, err := l.Append(fixedPayload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Append(fixedPayload(n + 1)); err != nil { // so that 41-50 is sealed
				t.Fatal(err)
			}
			l.Close()
			want := append(tt.want, n+1)

			path := filepath.Join(dir, segmentName(tt.first))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[2*100+headerSize+3] ^= 0x10 // third record's payload
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			l, rec := openLog(t, dir, Options{SegmentBytes: 1000})
			wantQ := []string{path + ".corrupt"}
			if !slices.Equal(rec.Quarantined, wantQ) || rec.LostRecords != tt.lost || rec.TruncatedBytes != 0 || rec.TruncatedRecords != 0 {
				t.Fatalf("recovery %+v, want %v quarantined and %d lost", rec, wantQ, tt.lost)
			}
			if _, err := os.Stat(wantQ[0]); err != nil {
				t.Fatalf("quarantined file: %v", err)
			}
			if l.FirstIndex() != tt.wantFirst || l.LastIndex() != n+1 {
				t.Fatalf("first %d last %d, want %d %d", l.FirstIndex(), l.LastIndex(), tt.wantFirst, n+1)
			}
			got := readAll(t, l, l.FirstIndex())
			var idx []uint64
			for _, r := range got {
				if string(r.payload) != string(fixedPayload(r.index)) {
					t.Fatalf("record %d holds %q", r.index, r.payload)
				}
				idx = append(idx, r.index)
			}
			if !slices.Equal(idx, want) {
				t.Fatalf("read indexes %v, want %v", idx, want)
			}
			// A reader started in the gap starts after it; sizes skip it.
			if tt.first == 21 {
				r, err := l.NewReader(25)
				if err != nil {
					t.Fatal(err)
				}
				if i, _, err := r.Next(); err != nil || i != 31 {
					t.Fatalf("reader from 25 in the gap: %d %v, want 31", i, err)
				}
				r.Close()
				if l.SizeFrom(21) != l.SizeFrom(31) || l.SizeFrom(25) != l.SizeFrom(31) {
					t.Fatalf("SizeFrom counts the gap: %d %d %d", l.SizeFrom(21), l.SizeFrom(25), l.SizeFrom(31))
				}
			}
			if got, want := l.Size(), dirSize(t, dir); got != want {
				t.Fatalf("Size %d, files hold %d", got, want)
			}
			if i, err := l.Append(fixedPayload(n + 2)); err != nil || i != n+2 {
				t.Fatalf("Append after repair: %d %v, want %d", i, err, n+2)
			}
			l.Close()
			if _, rec := openLog(t, dir, Options{}); !isZero(rec) {
				t.Fatalf("second reopen repaired again: %+v", rec)
			}
		})
	}
}

func TestQuarantineKeepsEarlierEvidence(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)+".corrupt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Segment 1 full of garbage, then a good segment 5 (as a roll makes).
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), []byte("not records"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := uint64(5); i <= 7; i++ {
		b = appendRecord(b, i, payloadFor(i))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(5)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, rec := openLog(t, dir, Options{})
	want := filepath.Join(dir, segmentName(1)+".1.corrupt")
	if !slices.Equal(rec.Quarantined, []string{want}) || rec.LostRecords != 4 {
		t.Fatalf("recovery %+v, want %s quarantined, 4 lost", rec, want)
	}
	if old, _ := os.ReadFile(filepath.Join(dir, segmentName(1)+".corrupt")); string(old) != "old" {
		t.Fatal("earlier quarantined file was overwritten")
	}
	checkRecords(t, readAll(t, l, l.FirstIndex()), seq(5, 7))
}

func TestOpenNeverReusesIndexes(t *testing.T) {
	// The last segment overlaps the one before it (a hand-made directory):
	// it is set aside and new records start past every index seen.
	dir := t.TempDir()
	var a, b []byte
	for i := uint64(1); i <= 10; i++ {
		a = appendRecord(a, i, payloadFor(i))
	}
	for i := uint64(5); i <= 12; i++ {
		b = appendRecord(b, i, payloadFor(i))
	}
	os.WriteFile(filepath.Join(dir, segmentName(1)), a, 0o644)
	os.WriteFile(filepath.Join(dir, segmentName(5)), b, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	l, rec := openLog(t, dir, Options{})
	if len(rec.Quarantined) != 1 || l.LastIndex() != 12 || l.FirstIndex() != 1 {
		t.Fatalf("first %d last %d %+v, want 1 12 and one quarantined", l.FirstIndex(), l.LastIndex(), rec)
	}
	if i, err := l.Append(payloadFor(13)); err != nil || i != 13 {
		t.Fatalf("Append: %d %v, want 13", i, err)
	}
	checkRecords(t, readAll(t, l, 1), append(seq(1, 10), 13))
}

func TestEmptySealedSegmentRemoved(t *testing.T) {
	dir := t.TempDir()
	var b []byte
	for i := uint64(3); i <= 4; i++ {
		b = appendRecord(b, i, payloadFor(i))
	}
	os.WriteFile(filepath.Join(dir, segmentName(1)), nil, 0o644)
	os.WriteFile(filepath.Join(dir, segmentName(3)), b, 0o644)
	l, rec := openLog(t, dir, Options{})
	if !isZero(rec) || l.FirstIndex() != 3 || l.LastIndex() != 4 {
		t.Fatalf("first %d last %d %+v", l.FirstIndex(), l.LastIndex(), rec)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []string{segmentName(3)}) {
		t.Fatalf("files %v", got)
	}
}
