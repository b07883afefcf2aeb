package wal

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes a small log, then appends data to, or writes it over, one
// of its segment files. Open must succeed and yield only records that were
// really written, at their own index, and every record the damage did not
// touch; what it kept, skipped and cut must add up to what was on disk,
// and the records read plus those it counts as lost to LastIndex; appends
// must go on from LastIndex; and a second Open must find nothing left to
// repair.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("garbage"), uint16(0), uint16(0), false)
	f.Add([]byte{0, 0, 0, 0}, uint16(1), uint16(20), true)
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint16(2), uint16(300), true)
	f.Add(appendRecord(nil, 99, []byte("forged")), uint16(3), uint16(0), false)
	f.Add([]byte{}, uint16(3), uint16(5000), false)
	f.Add([]byte{0x40}, uint16(4), uint16(37), true)
	f.Add(make([]byte, 200), uint16(5), uint16(100), true)
	f.Add([]byte("noise"), uint16(6), uint16(0), true)
	f.Fuzz(func(t *testing.T, data []byte, file, at uint16, overwrite bool) {
		const n = 30
		dir := t.TempDir()
		l, _, err := Open(dir, Options{SegmentBytes: 1024, Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= n; i++ {
			if _, err := l.Append(payloadFor(i)); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()

		files := segmentFiles(t, dir)
		name := files[int(file)%len(files)]
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The records the damage leaves alone: all but those of the file
		// that overlap [from, to).
		from, to := len(b), len(b)
		if overwrite && len(b) > 0 {
			off := int(at) % len(b)
			from, to = off, off+len(data)
			if to > len(b) {
				to = math.MaxInt // the file now ends inside the data
			}
			b = append(b[:off], append(data, b[min(off+len(data), len(b)):]...)...)
		} else {
			b = append(b, data...)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		untouched := map[uint64]bool{}
		for _, fn := range files {
			first, _ := parseSegmentName(fn)
			start := 0
			for i := first; i <= n; i++ {
				end := start + recordSize(len(payloadFor(i)))
				if end > 1024 && i > first {
					break
				}
				if fn != name || end <= from || start >= to {
					untouched[i] = true
				}
				start = end
			}
		}
		before := dirSize(t, dir)

		l, rec, err := Open(dir, Options{SegmentBytes: 1024, Sync: SyncNever})
		if err != nil {
			t.Fatalf("Open of a damaged log: %v", err)
		}
		defer l.Close()
		if kept := l.Size(); kept+rec.SkippedBytes+rec.TruncatedBytes != before {
			t.Fatalf("kept %d + skipped %d + cut %d bytes, %d on disk before; %+v", kept, rec.SkippedBytes, rec.TruncatedBytes, before, rec)
		}
		last := l.LastIndex()
		r, err := l.NewReader(l.FirstIndex())
		if err != nil {
			t.Fatal(err)
		}
		prev, read := uint64(0), uint64(0)
		for {
			i, p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next after %d: %v", prev, err)
			}
			if i <= prev || i > n || !bytes.Equal(p, payloadFor(i)) {
				t.Fatalf("read index %d (after %d) payload %q: never written", i, prev, p)
			}
			for k := prev + 1; k < i; k++ {
				if untouched[k] {
					t.Fatalf("record %d, untouched by the damage, is gone (read %d after %d); %+v", k, i, prev, rec)
				}
			}
			prev = i
			read++
		}
		r.Close()
		if prev != last {
			t.Fatalf("read up to %d, LastIndex %d", prev, last)
		}
		for k := last + 1; k <= n; k++ {
			if untouched[k] {
				t.Fatalf("record %d, untouched by the damage, is gone (LastIndex %d); %+v", k, last, rec)
			}
		}
		if read+rec.LostRecords != last {
			t.Fatalf("read %d records and %d counted lost, LastIndex %d; %+v", read, rec.LostRecords, last, rec)
		}
		if i, err := l.Append([]byte("after")); err != nil || i != last+1 {
			t.Fatalf("Append after repair: %d %v, want %d", i, err, last+1)
		}
		l.Close()
		l, rec, err = Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if !isZero(rec) {
			t.Fatalf("second Open repaired again: %+v", rec)
		}
	})
}
