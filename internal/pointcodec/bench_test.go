package pointcodec

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// The direct codec measured against the reference (the protobuf
// runtime encoding and decoding the generated messages): per batch
// size, ns/op per batch and ns/point.

// benchTrade is a Binance trade as the plugin emits it.
func benchTrade(id int64, t time.Time) sluice.Point {
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

func benchTrades(n int) []sluice.Point {
	ps := make([]sluice.Point, n)
	t := time.Unix(1700000000, 0)
	for i := range ps {
		ps[i] = benchTrade(int64(i), t.Add(time.Duration(i)*time.Microsecond))
	}
	return ps
}

// BenchmarkPointsEncode encodes a batch of trades in the plugin wire
// format, as the disk buffer does for every entry: with the protobuf
// runtime (marshalPoints) and directly (AppendPoints). ns/op is per batch;
// ns/point is per point.
func BenchmarkPointsEncode(b *testing.B) {
	for _, n := range batchSizes {
		ps := benchTrades(n)
		buf := make([]byte, 0, 256*n)
		b.Run(fmt.Sprintf("codec=proto/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = marshalPoints(buf[:0], ps); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
		b.Run(fmt.Sprintf("codec=direct/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendPoints(buf[:0], ps); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
	}
}

// BenchmarkPointsDecode decodes what BenchmarkPointsEncode wrote, as a
// sink's output does for every buffered entry.
func BenchmarkPointsDecode(b *testing.B) {
	for _, n := range batchSizes {
		enc, _ := marshalPoints(nil, benchTrades(n))
		b.Run(fmt.Sprintf("codec=proto/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := unmarshalPoints(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
		b.Run(fmt.Sprintf("codec=direct/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodePoints(enc, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
		})
	}
}
