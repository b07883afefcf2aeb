package sdk

import (
	"math"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func TestPointRoundTrip(t *testing.T) {
	ts := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	cases := []sluice.Point{
		{
			Measurement: "trades",
			Tags:        []sluice.Tag{tag("exchange", "binance"), tag("symbol", "BTCUSDT")},
			Fields: []sluice.Field{
				field("price", sluice.Float(64123.45)),
				field("trade_id", sluice.Int(math.MinInt64)),
				field("seq", sluice.Uint(math.MaxUint64)),
				field("note", sluice.String("a \"quoted\", spaced=string\n")),
				field("maker", sluice.Bool(true)),
				field("zero", sluice.Bool(false)),
			},
			Time:     ts,
			Received: ts.Add(time.Millisecond),
		},
		{Measurement: "empty"},
		{Measurement: "negzero", Fields: []sluice.Field{field("f", sluice.Float(math.Copysign(0, -1)))}, Time: ts},
	}
	in := batchToPB(cases, 7, sluice.Position("pos-1"))
	out, invalid, err := batchFromPB(in)
	if invalid != 0 || err != nil {
		t.Fatalf("invalid=%d err=%v", invalid, err)
	}
	if out.Dropped != 7 || string(out.Position) != "pos-1" {
		t.Fatalf("dropped=%d position=%q", out.Dropped, out.Position)
	}
	if len(out.Points) != len(cases) {
		t.Fatalf("got %d points, want %d", len(out.Points), len(cases))
	}
	for i := range cases {
		if !cases[i].Equal(&out.Points[i]) {
			t.Errorf("point %d:\n got %+v\nwant %+v", i, out.Points[i], cases[i])
		}
	}
}

func TestUnknownFieldTypeSkipsOnlyThatPoint(t *testing.T) {
	in := batchToPB([]sluice.Point{
		{Measurement: "a", Fields: []sluice.Field{field("x", sluice.Int(1))}},
		{Measurement: "b", Fields: []sluice.Field{field("x", sluice.Int(2))}},
	}, 0, nil)
	in.Points[0].Fields[0].Type = 99
	out, invalid, err := batchFromPB(in)
	if invalid != 1 || err == nil {
		t.Fatalf("invalid=%d err=%v, want 1 and an error", invalid, err)
	}
	if len(out.Points) != 1 || out.Points[0].Measurement != "b" {
		t.Fatalf("kept %+v, want only point b", out.Points)
	}
}

// FuzzPointRoundTrip checks that any point survives the wire unchanged.
func FuzzPointRoundTrip(f *testing.F) {
	f.Add("m", "k", "v", "fk", 1.5, int64(-3), uint64(9), "s", true, int64(1700000000000000000), int64(0))
	f.Add("", "", "", "", math.NaN(), int64(math.MaxInt64), uint64(0), "\x00\xff", false, int64(-1), int64(1))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk string, fl float64, i int64, u uint64, s string, b bool, tns, rns int64) {
		p := fuzzPoint(m, tk, tv, fk, fl, i, u, s, b, tns, rns)
		out, invalid, err := batchFromPB(batchToPB([]sluice.Point{p}, 0, nil))
		if invalid != 0 || err != nil || len(out.Points) != 1 {
			t.Fatalf("invalid=%d err=%v n=%d", invalid, err, len(out.Points))
		}
		if !p.Equal(&out.Points[0]) {
			t.Fatalf("round trip changed the point:\n got %+v\nwant %+v", out.Points[0], p)
		}
	})
}

// fuzzPoint is the point the fuzz targets build from their arguments:
// one tag, one field of every kind, and both times.
func fuzzPoint(m, tk, tv, fk string, fl float64, i int64, u uint64, s string, b bool, tns, rns int64) sluice.Point {
	return sluice.Point{
		Measurement: m,
		Tags:        []sluice.Tag{tag(tk, tv)},
		Fields: []sluice.Field{
			field(fk+"f", sluice.Float(fl)), field(fk+"i", sluice.Int(i)), field(fk+"u", sluice.Uint(u)),
			field(fk+"s", sluice.String(s)), field(fk+"b", sluice.Bool(b)),
		},
		Time:     fromUnixNano(tns),
		Received: fromUnixNano(rns),
	}
}

func tag(k, v string) sluice.Tag                  { return sluice.Tag{Key: k, Value: v} }
func field(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }

func TestMarshalPointsRoundTrip(t *testing.T) {
	ts := time.Date(2024, 3, 1, 12, 0, 0, 5, time.UTC)
	in := []sluice.Point{
		{Measurement: "a", Tags: []sluice.Tag{tag("k", "v")}, Fields: []sluice.Field{field("f", sluice.Float(1.5)), field("u", sluice.Uint(math.MaxUint64))}, Time: ts, Received: ts},
		{Measurement: "b", Fields: []sluice.Field{field("s", sluice.String("x")), field("b", sluice.Bool(true))}, Time: ts},
	}
	b, err := MarshalPoints([]byte("prefix"), in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalPoints(b[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || !in[0].Equal(&out[0]) || !in[1].Equal(&out[1]) {
		t.Fatalf("round trip: %+v", out)
	}
	if _, err := UnmarshalPoints([]byte{0xff, 0xff}); err == nil {
		t.Fatal("garbage decoded without error")
	}
}
