package influxdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/testinflux"
)

// benchTrades returns n trades of 5 symbols, 40 per millisecond.
func benchTrades(n int) []sluice.Point {
	return trades(5, n/5, 40, 0)
}

// advance moves a batch to its next, distinct set of trades.
func advance(ps []sluice.Point, round int) {
	shift := time.Duration(round) * time.Second
	for i := range ps {
		p := &ps[i]
		p.Fields[0].Value = sluice.Int(p.Fields[0].Value.Int() + int64(len(ps)))
		p.Time = p.Time.Add(shift)
	}
}

// BenchmarkEncode measures line-protocol encoding with identity offsets,
// the CPU a Write spends before the network.
func BenchmarkEncode(b *testing.B) {
	ps := benchTrades(10000)
	ids := map[string]*identity{"trades": newIdentity(tradesMeasurement.Unique)}
	var bt batch
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bt.reset()
		for i := range ps {
			if err := bt.add(&ps[i], ids, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(len(bt.buf))/float64(len(ps)), "bytes/point")
}

// BenchmarkEncodeClientPoints is the same work done the client library's
// way (write.Point, then its line-protocol writer), for comparison: what
// WriteAPIBlocking.WritePoint would cost before sending.
func BenchmarkEncodeClientPoints(b *testing.B) {
	ps := benchTrades(10000)
	id := newIdentity(tradesMeasurement.Unique)
	var sb strings.Builder
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sb.Reset()
		for i := range ps {
			p := &ps[i]
			ns, _ := nanos(p.Time)
			ts, _ := id.timestamp(p, ns)
			wp := write.NewPointWithMeasurement(p.Measurement)
			for _, t := range p.Tags {
				wp.AddTag(t.Key, t.Value)
			}
			for _, f := range p.Fields {
				wp.AddField(f.Key, f.Value.Any())
			}
			wp.SetTime(time.Unix(0, ts))
			write.PointToLineProtocolBuffer(wp, &sb, time.Nanosecond)
			sb.WriteByte('\n')
		}
	}
	b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkGzip compares the compression level the sink uses with the
// default one, on a 10,000-trade body.
func BenchmarkGzip(b *testing.B) {
	var bt batch
	ps := benchTrades(10000)
	for i := range ps {
		if err := bt.add(&ps[i], nil, 1); err != nil {
			b.Fatal(err)
		}
	}
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var out bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&out, level)
			b.SetBytes(int64(len(bt.buf)))
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				_, _ = zw.Write(bt.buf)
				_ = zw.Close()
			}
			b.ReportMetric(float64(len(bt.buf))/float64(out.Len()), "ratio")
		})
	}
}

// BenchmarkWriteReal writes batches of new trades to a real InfluxDB 1.8
// (influxd on the same machine, sharing its cores).
func BenchmarkWriteReal(b *testing.B) {
	srv := testinflux.Start(b)
	for _, gz := range []bool{true, false} {
		for _, size := range []int{1000, 5000, 10000} {
			b.Run(fmt.Sprintf("gzip=%v/batch=%d", gz, size), func(b *testing.B) {
				s := realSink(b, srv, gz)
				if err := s.Declare(context.Background(), []sluice.Measurement{tradesMeasurement}); err != nil {
					b.Fatal(err)
				}
				ps := benchTrades(size)
				round := 0
				b.ResetTimer()
				for b.Loop() {
					round++
					advance(ps, round)
					if err := s.Write(context.Background(), ps); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "points/s")
			})
		}
	}
}
