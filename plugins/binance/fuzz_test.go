package binance

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"
)

// seedFrames adds every fixture line to a fuzz corpus.
func seedFrames(f *testing.F) {
	for _, file := range frameFiles(f) {
		for _, line := range readLines(f, file) {
			f.Add(line)
		}
	}
}

// FuzzParseFrame: any input either fails with ErrFrame or yields points
// that hold the schema's invariants; nothing panics.
func FuzzParseFrame(f *testing.F) {
	seedFrames(f)
	parsers := map[Market]*Parser{Spot: NewParser(Spot), USDM: NewParser(USDM), COINM: NewParser(COINM)}
	parsers[USDM].Stream = "btcusdt@depth20"
	f.Fuzz(func(t *testing.T, frame []byte) {
		for m, p := range parsers {
			pts, ev, err := p.Parse(frame, testReceived, nil)
			if err != nil {
				if len(pts) != 0 {
					t.Fatalf("%v: error %v with %d points", m, err, len(pts))
				}
				continue
			}
			checkPointShape(t, m, pts)
			for _, pt := range pts {
				for _, fl := range pt.Fields {
					if v := fl.Value.Float(); fl.Value.Kind() == sluice.KindFloat && (math.IsNaN(v) || math.IsInf(v, 0)) {
						t.Fatalf("%v: %s=%v from %q", m, fl.Key, v, frame)
					}
				}
			}
			if ev.Kind == EventDepthUpdate {
				b := NewBook(m, ev.Symbol)
				_ = b.Snapshot(&DepthSnapshot{LastUpdateID: ev.Depth.FirstID - 1})
				_ = b.Apply(&ev.Depth)
				_ = b.AppendPoints(nil, 20, testReceived, testReceived)
			}
		}
	})
}

// FuzzParseDepthSnapshot: snapshots parse or fail cleanly, and a book
// loaded from one is ordered best-last with no zero quantity.
func FuzzParseDepthSnapshot(f *testing.F) {
	for _, line := range readLines(f, "testdata/frames/rest_depth_snapshot.jsonl") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseDepthSnapshot(body)
		if err != nil {
			return
		}
		b := NewBook(Spot, "X")
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
			if got := float64(key) / PriceScale; got != want {
				t.Fatalf("%q: key %d -> %v, ParseFloat %v", s, key, got, want)
			}
		}
		// The key round-trips through its own decimal rendering.
		r := strconv.FormatInt(key/PriceScale, 10) + "." + strings.Repeat("0", 8-len(strconv.FormatInt(key%PriceScale, 10))) + strconv.FormatInt(key%PriceScale, 10)
		if back, err := ParsePriceKey(r); err != nil || back != key {
			t.Fatalf("%q: key %d renders as %q, which parses to %d, %v", s, key, r, back, err)
		}
	})
}

// FuzzParseAggTrades: a REST aggTrades body yields one point per id, or an
// error and nothing.
func FuzzParseAggTrades(f *testing.F) {
	for _, line := range readLines(f, "testdata/frames/rest_aggTrades.jsonl") {
		f.Add(line)
	}
	p := NewParser(USDM)
	f.Fuzz(func(t *testing.T, body []byte) {
		pts, ids, err := p.ParseAggTrades("BTCUSDT", body, testReceived, nil)
		if err != nil {
			if len(pts) != 0 || ids != nil {
				t.Fatalf("error %v with %d points", err, len(pts))
			}
			return
		}
		if len(pts) != len(ids) {
			t.Fatalf("%d points for %d ids", len(pts), len(ids))
		}
		checkPoints(t, USDM, pts)
	})
}
