package wal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes a small log, then appends data to, or writes it over, one
// of its segment files. Open must succeed and yield only records that were
// really written, at their own index; appends must go on from LastIndex;
// and a second Open must find nothing left to repair.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("garbage"), uint16(0), uint16(0), false)
	f.Add([]byte{0, 0, 0, 0}, uint16(1), uint16(20), true)
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint16(2), uint16(300), true)
	f.Add(appendRecord(nil, 99, []byte("forged")), uint16(3), uint16(0), false)
	f.Add([]byte{}, uint16(3), uint16(5000), false)
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
		path := filepath.Join(dir, files[int(file)%len(files)])
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if overwrite && len(b) > 0 {
			off := int(at) % len(b)
			b = append(b[:off], append(data, b[min(off+len(data), len(b)):]...)...)
		} else {
			b = append(b, data...)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}

		l, _, err = Open(dir, Options{SegmentBytes: 1024, Sync: SyncNever})
		if err != nil {
			t.Fatalf("Open of a damaged log: %v", err)
		}
		defer l.Close()
		last := l.LastIndex()
		r, err := l.NewReader(l.FirstIndex())
		if err != nil {
			t.Fatal(err)
		}
		prev := uint64(0)
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
			prev = i
		}
		r.Close()
		if prev > last {
			t.Fatalf("read up to %d, LastIndex %d", prev, last)
		}
		if i, err := l.Append([]byte("after")); err != nil || i != last+1 {
			t.Fatalf("Append after repair: %d %v, want %d", i, err, last+1)
		}
		l.Close()
		l, rec, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if !isZero(rec) {
			t.Fatalf("second Open repaired again: %+v", rec)
		}
	})
}
