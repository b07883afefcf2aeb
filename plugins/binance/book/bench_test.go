package book

import (
	"testing"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// BenchmarkReplay parses every frame of a recorded session and keeps its
// books: the whole per-message cost of a real mixed stream.
func BenchmarkReplay(b *testing.B) {
	files := fixture.SessionFiles(b)
	m, lines := fixture.ReadSession(b, files[0])
	for _, f := range files {
		if fm, fl := fixture.ReadSession(b, f); len(fl) > len(lines) {
			m, lines = fm, fl
		}
	}
	var frames [][]byte
	var bytes int64
	for _, l := range lines {
		if l.Src == "ws" {
			frames = append(frames, []byte(l.Raw))
			bytes += int64(len(l.Raw))
		}
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	p := wire.NewParser(m)
	dst := make([]sluice.Point, 0, 64)
	n := 0
	for b.Loop() {
		books := map[string]*Book{}
		for _, f := range frames {
			var ev wire.Event
			var err error
			dst, ev, err = p.Parse(f, fixture.Received, dst[:0])
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == wire.EventDepthUpdate {
				bk := books[ev.Symbol]
				if bk == nil {
					bk = New(m, ev.Symbol)
					// Start from an empty snapshot bridged by this event, so
					// the benchmark measures applying, not buffering.
					id := ev.Depth.FirstID
					if !m.Futures() {
						id--
					}
					_ = bk.Snapshot(&market.DepthSnapshot{LastUpdateID: id})
					books[ev.Symbol] = bk
				}
				if err := bk.Apply(&ev.Depth); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
}
