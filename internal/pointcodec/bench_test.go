package pointcodec

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/testpoints"
)

// The direct codec measured against the reference (the protobuf
// runtime encoding and decoding the generated messages): per batch
// size, ns/op per batch and ns/point.

// BenchmarkPointsEncode encodes a batch of trades in the plugin wire
// format, as the disk buffer does for every entry: with the protobuf
// runtime (marshalPoints) and directly (AppendPoints). ns/op is per batch;
// ns/point is per point.
func BenchmarkPointsEncode(b *testing.B) {
	for _, n := range testpoints.BatchSizes {
		ps := testpoints.Trades(n)
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
	for _, n := range testpoints.BatchSizes {
		enc, _ := marshalPoints(nil, testpoints.Trades(n))
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
