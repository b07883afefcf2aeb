package micro

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/testpoints"
)

// BenchmarkNormalize checks a batch of 500 trades against the default
// limits and a feed's name budget, as the pipeline does for every batch
// a plugin delivers. The
// batch is refilled from a template each time (Normalize works in place);
// the copy is part of the figure.
func BenchmarkNormalize(b *testing.B) {
	const n = 500
	tmpl := testpoints.Trades(n)
	ps := make([]sluice.Point, n)
	now := time.Unix(1700000100, 0)
	norm := pipeline.NewNormalizer(config.Default().Limits, func() time.Time { return now })
	names := pipeline.NewNames(config.Default().Limits)
	b.ReportAllocs()
	for b.Loop() {
		copy(ps, tmpl)
		if kept, _ := norm.Normalize(ps, names, func(pipeline.Rejection) { b.Fatal("rejected") }); len(kept) != n {
			b.Fatal("short")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
}

// BenchmarkBufferAppend appends entries of trades to the agent's disk
// buffer (encode, CRC, write; fsync on the default 100ms interval), per
// batch size. No sink reads, and the bound is far away.
func BenchmarkBufferAppend(b *testing.B) {
	for _, n := range testpoints.BatchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			buf, _, err := pipeline.OpenBuffer(pipeline.BufferOptions{
				Dir: b.TempDir(), Sync: wal.SyncInterval, SyncInterval: 100 * time.Millisecond,
			}, []pipeline.SinkLimit{{Name: "db", MaxBytes: 1 << 40, WhenFull: config.Block}},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			e := &pipeline.Entry{Feed: "binance", Sinks: []string{"db"}, Position: sluice.Position("pos"), Points: testpoints.Trades(n)}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := buf.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
	}
}
