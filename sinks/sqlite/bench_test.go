package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// BenchmarkWrite writes batches of 1000 trade-like points (two tags, four
// fields), one Write per batch, and reports ns/point. "key" declares
// (symbol, trade_id) so every row goes through ON CONFLICT DO UPDATE.
func BenchmarkWrite(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "insert"
		if keyed {
			name = "key"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s := New(Config{Path: filepath.Join(b.TempDir(), "bench.db")}, nil)
			if err := s.Open(ctx); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if keyed {
				if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
					b.Fatal(err)
				}
			}
			const batch = 1000
			symbols := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"}
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			points := make([]sluice.Point, batch)
			for i := range points {
				points[i] = trade(symbols[i%len(symbols)], 0, 0, base)
			}
			id := int64(0)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				for i := range points {
					id++
					p := &points[i]
					p.Time = base.Add(time.Duration(id) * time.Millisecond)
					p.Received = p.Time.Add(250 * time.Microsecond)
					p.Fields[0].Value = sluice.Float(60000 + float64(id%1000)/100)
					p.Fields[1].Value = sluice.Float(float64(id%17) / 1000)
					p.Fields[2].Value = sluice.Int(id)
				}
				if err := s.Write(ctx, points); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/point")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*batch), "cpu-ns/point")
		})
	}
}
