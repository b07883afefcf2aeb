package pipeline

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
)

func TestEntryRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 123).UTC()
	e := &Entry{Feed: "btc", Sinks: []string{"db", "influx"}, Position: sluice.Position{0, 1, 2},
		Points: []sluice.Point{{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTCUSDT"}},
			Fields: []sluice.Field{{Key: "price", Value: sluice.Float(1.5)}}, Time: ts, Received: ts}}}
	h, ps, _ := roundTrip(t, e, 7, e.Sinks)
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

// An entry given the plugin's bytes for its first points stores them as
// they are and encodes the rest: the same bytes as encoding every point
// when the plugin encoded canonically, and the same points read back when
// it did not.
func TestEntryStoresRawPoints(t *testing.T) {
	plugin, events := pts(0, 3), pts(3, 4)
	all := append(slices.Clone(plugin), events...)
	want, err := appendEntry(nil, &Entry{Feed: "f", Points: all}, 1, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pointcodec.AppendPoints(nil, plugin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendEntry(nil, &Entry{Feed: "f", Points: all, Raw: raw, RawN: len(plugin)}, 1, []string{"s"})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("with raw points: %x, %v; encoded: %x", got, err, want)
	}
	// An unknown field (a newer plugin's) after the first point: kept
	// in the bytes, and the points read back are the same.
	first, _ := pointcodec.AppendPoints(nil, plugin[:1])
	odd := slices.Concat(first, []byte{0xf8, 0x01, 0x05}, raw[len(first):])
	if _, err := pointcodec.DecodePoints(odd, 0); err != nil {
		t.Fatalf("test input: %v", err)
	}
	h, ps, b := roundTrip(t, &Entry{Feed: "f", Points: all, Raw: odd, RawN: len(plugin)}, 1, []string{"s"})
	if h.NPoints != len(all) || len(ps) != len(all) || !bytes.Contains(b, odd) {
		t.Fatalf("read back %d points (header %d)", len(ps), h.NPoints)
	}
	for i := range all {
		if !ps[i].Equal(&all[i]) {
			t.Fatalf("point %d: %+v, want %+v", i, ps[i], all[i])
		}
	}
}

// roundTrip encodes e and reads it back: its header, its points and its
// bytes.
func roundTrip(t *testing.T, e *Entry, seq uint64, sinks []string) (entryHeader, []sluice.Point, []byte) {
	t.Helper()
	b, err := appendEntry(nil, e, seq, sinks)
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
	return h, ps, b
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
