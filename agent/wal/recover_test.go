package wal

import (
	"bytes"
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
		name: "last two records' checksums flipped",
		mangle: func(b []byte) []byte {
			b[recordOffset(lastFirst, n-1)+5] ^= 0x01
			b[recordOffset(lastFirst, n)+5] ^= 0x01
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
			if rec.TruncatedBytes != tt.wantBytes || rec.TruncatedRecords != tt.wantRecords || len(rec.Quarantined) != 0 || rec.SkippedBytes != 0 || rec.LostRecords != 0 {
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

// TestCorruptSealedSegment damages one sealed segment of 10 records of
// 100 bytes (fixedPayload): its valid records are kept, a copy of it is
// kept as *.corrupt, and only a segment with nothing valid left goes
// aside whole.
func TestCorruptSealedSegment(t *testing.T) {
	const n = 50
	flip := func(k int) func([]byte) []byte { // a payload byte of the k-th record (from 0)
		return func(b []byte) []byte { b[k*100+headerSize+3] ^= 0x10; return b }
	}
	tests := []struct {
		name     string
		first    uint64 // segment to damage
		mangle   func([]byte) []byte
		lost     []uint64 // indexes that must be gone
		files    []uint64 // segment files left, by first index
		skipped  int64
		setAside bool
	}{
		{"middle segment, third record", 21, flip(2), []uint64{23}, []uint64{1, 11, 21, 24, 31, 41, 51}, 100, false},
		{"first segment, third record", 1, flip(2), []uint64{3}, []uint64{1, 4, 11, 21, 31, 41, 51}, 100, false},
		{"second-to-last segment, third record", 41, flip(2), []uint64{43}, []uint64{1, 11, 21, 31, 41, 44, 51}, 100, false},
		{"first record", 21, flip(0), []uint64{21}, []uint64{1, 11, 22, 31, 41, 51}, 100, false},
		{"last record: a bad tail in a sealed segment", 21, flip(9), []uint64{30}, []uint64{1, 11, 21, 31, 41, 51}, 100, false},
		{"records 3 and 7", 21, func(b []byte) []byte { return flip(6)(flip(2)(b)) }, []uint64{23, 27}, []uint64{1, 11, 21, 24, 28, 31, 41, 51}, 200, false},
		{"nothing valid left", 21, func(b []byte) []byte { return bytes.Repeat([]byte{0xa5}, len(b)) }, seq(21, 30), []uint64{1, 11, 31, 41, 51}, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, Options{SegmentBytes: 1000, Sync: SyncNever})
			for i := uint64(1); i <= n+1; i++ { // 10 records a segment; n+1 so that 41-50 is sealed
				if _, err := l.Append(fixedPayload(i)); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			var want []uint64
			for i := uint64(1); i <= n+1; i++ {
				if !slices.Contains(tt.lost, i) {
					want = append(want, i)
				}
			}

			path := filepath.Join(dir, segmentName(tt.first))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = tt.mangle(b)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			l, rec := openLog(t, dir, Options{SegmentBytes: 1000})
			wantQ := []string{path + ".corrupt"}
			if !slices.Equal(rec.Quarantined, wantQ) || rec.LostRecords != uint64(len(tt.lost)) || rec.SkippedBytes != tt.skipped ||
				rec.TruncatedBytes != 0 || rec.TruncatedRecords != 0 {
				t.Fatalf("recovery %+v, want %v quarantined, %d bytes and %d records lost", rec, wantQ, tt.skipped, len(tt.lost))
			}
			if kept, err := os.ReadFile(wantQ[0]); err != nil || !bytes.Equal(kept, b) {
				t.Fatalf("the .corrupt file does not hold the damaged segment as it was (%v)", err)
			}
			var files []string
			for _, f := range tt.files {
				files = append(files, segmentName(f))
			}
			if got := segmentFiles(t, dir); !slices.Equal(got, files) {
				t.Fatalf("segment files %v, want %v", got, files)
			}
			if l.FirstIndex() != 1 || l.LastIndex() != n+1 {
				t.Fatalf("first %d last %d, want 1 %d", l.FirstIndex(), l.LastIndex(), n+1)
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
			// A reader started in a gap starts after it; sizes skip it.
			gapAt := tt.lost[0]
			after := gapAt + 1
			for slices.Contains(tt.lost, after) {
				after++
			}
			r, err := l.NewReader(gapAt)
			if err != nil {
				t.Fatal(err)
			}
			if i, _, err := r.Next(); err != nil || i != after {
				t.Fatalf("reader from %d in the gap: %d %v, want %d", gapAt, i, err, after)
			}
			r.Close()
			if l.SizeFrom(gapAt) != l.SizeFrom(after) {
				t.Fatalf("SizeFrom counts the gap: %d %d", l.SizeFrom(gapAt), l.SizeFrom(after))
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
