package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func TestEntryRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 123).UTC()
	e := &Entry{Feed: "btc", Sinks: []string{"db", "influx"}, Position: sluice.Position{0, 1, 2},
		Points: []sluice.Point{{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTCUSDT"}},
			Fields: []sluice.Field{{Key: "price", Value: sluice.Float(1.5)}}, Time: ts, Received: ts}}}
	b, err := appendEntry(nil, e, 7, e.Sinks)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseEntryHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := h.points()
	if err != nil {
		t.Fatal(err)
	}
	if h.Feed != "btc" || h.Seq != 7 || !slices.Equal(h.Sinks, e.Sinks) || string(h.Position) != string(e.Position) ||
		h.NPoints != 1 || len(ps) != 1 || !ps[0].Equal(&e.Points[0]) {
		t.Fatalf("round trip: %+v %+v", h, ps)
	}
	if !h.routedTo("influx") || h.routedTo("other") {
		t.Fatal("routing")
	}
	// Re-encoded with another seq and sinks (as a migration does), the
	// points are the same bytes.
	again, err := parseEntryHeader(appendEntryHeader(nil, &h, 9, []string{"db"}))
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != 9 || !slices.Equal(again.Sinks, []string{"db"}) || string(again.body) != string(h.body) || again.NPoints != 1 {
		t.Fatalf("re-encoded: %+v", again)
	}
}

// FuzzParseEntry: arbitrary bytes never panic, and whatever parses as a
// header reports a point count consistent with what decodes.
func FuzzParseEntry(f *testing.F) {
	good, _ := appendEntry(nil, &Entry{Feed: "f", Points: pts(0, 3)}, 1, []string{"s"})
	f.Add(good)
	f.Add([]byte{entryVersion})
	f.Add([]byte{entryVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseEntryHeader(b)
		if err != nil {
			return
		}
		if ps, err := h.points(); err == nil && len(ps) != h.NPoints {
			t.Fatalf("decoded %d points, header says %d", len(ps), h.NPoints)
		}
	})
}
