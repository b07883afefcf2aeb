package wal

import (
	"errors"
	"io"
	"testing"
)

// BenchmarkAppend appends 16 KiB payloads under each policy; the
// -parallel variants show group commit (see WAL.md for figures).
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, 16<<10)
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		b.Run(string(policy), func(b *testing.B) {
			l, _ := openLog(b, b.TempDir(), Options{Sync: policy})
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Append(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(policy)+"-parallel", func(b *testing.B) {
			l, _ := openLog(b, b.TempDir(), Options{Sync: policy})
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRead reads 16 KiB records back in order.
func BenchmarkRead(b *testing.B) {
	payload := make([]byte, 16<<10)
	l, _ := openLog(b, b.TempDir(), Options{Sync: SyncNever})
	const n = 4096 // 64 MiB, four segments
	for range n {
		if _, err := l.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	r, err := l.NewReader(1)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { r.Close() }()
	for b.Loop() {
		if _, _, err := r.Next(); errors.Is(err, io.EOF) {
			r.Close()
			if r, err = l.NewReader(1); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
