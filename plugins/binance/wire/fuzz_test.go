package wire

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/book"
	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// seedFrames adds every fixture line to a fuzz corpus.
func seedFrames(f *testing.F) {
	for _, file := range frameFiles(f) {
		for _, line := range fixture.ReadLines(f, file) {
			f.Add(line)
		}
	}
}

// FuzzParseFrame: any input either fails with ErrFrame or yields points
// that hold the schema's invariants; nothing panics.
func FuzzParseFrame(f *testing.F) {
	seedFrames(f)
	parsers := map[market.Market]*Parser{market.Spot: NewParser(market.Spot), market.USDM: NewParser(market.USDM), market.COINM: NewParser(market.COINM)}
	parsers[market.USDM].Stream = "btcusdt@depth20"
	f.Fuzz(func(t *testing.T, frame []byte) {
		for m, p := range parsers {
			pts, ev, err := p.Parse(frame, fixture.Received, nil)
			if err != nil {
				if len(pts) != 0 {
					t.Fatalf("%v: error %v with %d points", m, err, len(pts))
				}
				continue
			}
			fixture.CheckPointShape(t, m, pts)
			for _, pt := range pts {
				for _, fl := range pt.Fields {
					if v := fl.Value.Float(); fl.Value.Kind() == sluice.KindFloat && (math.IsNaN(v) || math.IsInf(v, 0)) {
						t.Fatalf("%v: %s=%v from %q", m, fl.Key, v, frame)
					}
				}
			}
			if ev.Kind == EventDepthUpdate {
				b := book.New(m, ev.Symbol)
				_ = b.Snapshot(&market.DepthSnapshot{LastUpdateID: ev.Depth.FirstID - 1})
				_ = b.Apply(&ev.Depth)
				_ = b.AppendPoints(nil, 20, fixture.Received, fixture.Received)
			}
		}
	})
}

// FuzzParsePriceKey: a key, scaled back, is the float that ParseFloat reads
// from the same string, so the book's keys and its prices never disagree.
func FuzzParsePriceKey(f *testing.F) {
	for _, s := range []string{"0", "1", "0.00000001", "102571.17000000", "7.6110", "92233720368.54775807", "1.", ".1", "1e3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParsePriceKey(s)
		if err != nil {
			return
		}
		if key < 0 {
			t.Fatalf("negative key %d for %q", key, s)
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("key %d for %q, which ParseFloat rejects: %v", key, s, err)
		}
		if key < 1<<53 {
			// Both operands are exact, so the division is correctly
			// rounded, as ParseFloat is.
			if got := float64(key) / market.PriceScale; got != want {
				t.Fatalf("%q: key %d -> %v, ParseFloat %v", s, key, got, want)
			}
		}
		// The key round-trips through its own decimal rendering.
		r := strconv.FormatInt(key/market.PriceScale, 10) + "." + strings.Repeat("0", 8-len(strconv.FormatInt(key%market.PriceScale, 10))) + strconv.FormatInt(key%market.PriceScale, 10)
		if back, err := ParsePriceKey(r); err != nil || back != key {
			t.Fatalf("%q: key %d renders as %q, which parses to %d, %v", s, key, r, back, err)
		}
	})
}

// FuzzParseAggTrades: a REST aggTrades body yields one point per id, or an
// error and nothing.
func FuzzParseAggTrades(f *testing.F) {
	for _, line := range fixture.ReadLines(f, "testdata/frames/rest_aggTrades.jsonl") {
		f.Add(line)
	}
	p := NewParser(market.USDM)
	f.Fuzz(func(t *testing.T, body []byte) {
		pts, ids, err := p.ParseAggTrades("BTCUSDT", body, fixture.Received, nil)
		if err != nil {
			if len(pts) != 0 || ids != nil {
				t.Fatalf("error %v with %d points", err, len(pts))
			}
			return
		}
		if len(pts) != len(ids) {
			t.Fatalf("%d points for %d ids", len(pts), len(ids))
		}
		fixture.CheckPoints(t, market.USDM, pts)
	})
}
