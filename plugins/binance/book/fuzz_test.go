package book

import (
	"testing"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// FuzzParseDepthSnapshot: snapshots parse or fail cleanly, and a book
// loaded from one is ordered best-last with no zero quantity.
func FuzzParseDepthSnapshot(f *testing.F) {
	for _, line := range fixture.ReadLines(f, fixture.FramesDir+"/rest_depth_snapshot.jsonl") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := wire.ParseDepthSnapshot(body)
		if err != nil {
			return
		}
		b := New(market.Spot, "X")
		if err := b.Snapshot(&s); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(b.bids); i++ {
			if b.bids[i-1].Key >= b.bids[i].Key {
				t.Fatalf("bids out of order: %v", b.bids)
			}
		}
		for i := 1; i < len(b.asks); i++ {
			if b.asks[i-1].Key <= b.asks[i].Key {
				t.Fatalf("asks out of order: %v", b.asks)
			}
		}
		for _, l := range append(b.bids, b.asks...) {
			if l.Quantity == 0 {
				t.Fatalf("zero level kept: %v", l)
			}
		}
	})
}
