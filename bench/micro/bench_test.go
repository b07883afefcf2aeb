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
)

// tradePoint is a Binance trade as the plugin emits it.
func tradePoint(id int64, t time.Time) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags: []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "market", Value: "spot"},
			{Key: "side", Value: "buy"}, {Key: "symbol", Value: "S0042USDT"}},
		Fields: []sluice.Field{{Key: "price", Value: sluice.Float(64123.45 + float64(id%100))},
			{Key: "quantity", Value: sluice.Float(0.0123)}, {Key: "trade_id", Value: sluice.Int(id)}},
		Time:     t,
		Received: t.Add(3 * time.Millisecond),
	}
}

// batchSizes are the plugin batch sizes measured: the SDK default is 500.
var batchSizes = []int{1, 100, 500, 1000}

func trades(n int) []sluice.Point {
	ps := make([]sluice.Point, n)
	t := time.Unix(1700000000, 0)
	for i := range ps {
		ps[i] = tradePoint(int64(i), t.Add(time.Duration(i)*time.Microsecond))
	}
	return ps
}

// BenchmarkNormalize checks a batch of 500 trades against the default
// limits and a feed's name budget, as the pipeline does for every batch
// a plugin delivers. The
// batch is refilled from a template each time (Normalize works in place);
// the copy is part of the figure.
func BenchmarkNormalize(b *testing.B) {
	const n = 500
	tmpl := trades(n)
	ps := make([]sluice.Point, n)
	now := time.Unix(1700000100, 0)
	norm := pipeline.NewNormalizer(config.Default().Limits, func() time.Time { return now })
	names := pipeline.NewNames(config.Default().Limits)
	b.ReportAllocs()
	for b.Loop() {
		copy(ps, tmpl)
		if kept := norm.Normalize(ps, names, func(pipeline.Rejection) { b.Fatal("rejected") }); len(kept) != n {
			b.Fatal("short")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
}

// BenchmarkBufferAppend appends entries of trades to the agent's disk
// buffer (encode, CRC, write; fsync on the default 100ms interval), per
// batch size. No sink reads, and the bound is far away.
func BenchmarkBufferAppend(b *testing.B) {
	for _, n := range batchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			buf, _, err := pipeline.OpenBuffer(pipeline.BufferOptions{
				Dir: b.TempDir(), Sync: wal.SyncInterval, SyncInterval: 100 * time.Millisecond,
			}, []pipeline.SinkLimit{{Name: "db", MaxBytes: 1 << 40, WhenFull: config.Block}},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			e := &pipeline.Entry{Feed: "binance", Sinks: []string{"db"}, Position: sluice.Position("pos"), Points: trades(n)}
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
