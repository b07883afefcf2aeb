package pointcodec

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The codec must write and read the protobuf runtime's bytes, so that a
// plugin or host built without it still understands one built with it,
// and a disk buffer written by either is read by both.

func tag(k, v string) sluice.Tag                  { return sluice.Tag{Key: k, Value: v} }
func field(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }

func pointN(i int) sluice.Point {
	return sluice.Point{Measurement: "m", Fields: []sluice.Field{field("id", sluice.Int(int64(i)))}, Time: time.Unix(int64(i), 0)}
}

func wirePoints() []sluice.Point {
	ts := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return []sluice.Point{
		{
			Measurement: "trades",
			Tags:        []sluice.Tag{tag("exchange", "binance"), tag("symbol", "BTCUSDT")},
			Fields: []sluice.Field{
				field("price", sluice.Float(64123.45)), field("trade_id", sluice.Int(math.MinInt64)),
				field("seq", sluice.Uint(math.MaxUint64)), field("note", sluice.String("é \"q\"\n")),
				field("maker", sluice.Bool(true)), field("zero", sluice.Bool(false)),
				field("negzero", sluice.Float(math.Copysign(0, -1))), field("", sluice.Int(0)),
			},
			Time:     ts,
			Received: ts.Add(time.Millisecond),
		},
		{Measurement: "empty"},
		{},
		{Measurement: "epoch", Fields: []sluice.Field{field("x", sluice.Int(1))}, Time: time.Unix(0, 0), Received: time.Unix(-5, 3)},
	}
}

// wireEvents covers the edges of each field: zero and negative times,
// empty strings, extreme ids, a kind from a newer protocol, a negative
// kind.
func wireEvents() []Event {
	ts := time.Date(2024, 3, 1, 12, 0, 0, 5, time.UTC)
	return []Event{
		{Kind: 4, Time: ts, Symbol: "BTCUSDT", Stream: "trade", Message: "missing ids", Count: 3, FromID: 7, ToID: 9},
		{Kind: 9, Time: ts, Stream: "btcusdt@trade", Message: "é silent", Since: ts.Add(-time.Minute)},
		{Kind: 10, Time: time.Unix(-5, 3).UTC()},
		{Kind: 5, Count: math.MaxInt64, FromID: math.MinInt64, ToID: -1},
		{Kind: 99, Time: ts, Message: "a kind from a newer protocol"},
		{Kind: -3},
		{},
	}
}

func wireDiscards() []Discard {
	return []Discard{{Reason: "too_deep", Count: 2}, {Reason: "", Count: math.MaxUint64}, {Reason: "oversize"}}
}

func protoBytes(t testing.TB, b *Batch) []byte {
	t.Helper()
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(toProto(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendWritesProtobufBytes(t *testing.T) {
	for _, b := range []*Batch{
		{Points: wirePoints()},
		{Points: wirePoints(), Dropped: 7, Position: sluice.Position("pos-1")},
		{Points: wirePoints(), Dropped: math.MaxUint64, Position: sluice.Position{0}},
		{Points: wirePoints(), Dropped: 4, Position: sluice.Position("p"), Events: wireEvents(), Discarded: wireDiscards()},
		{Events: wireEvents()},
		{},
	} {
		want := protoBytes(t, b)
		got := Append([]byte("prefix"), b)
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Errorf("dropped=%d pos=%q events=%d:\n got %x\nwant %x", b.Dropped, b.Position, len(b.Events), got[len("prefix"):], want)
		}
		if n := Size(b); n != len(want) {
			t.Errorf("Size = %d, encoded %d bytes", n, len(want))
		}
		sameBatch(t, got[len("prefix"):])
	}
}

// sameBatch fails unless Decode and the protobuf runtime (followed by the
// reference's conversion) agree on b, whenever the runtime can decode it.
func sameBatch(t *testing.T, b []byte) {
	t.Helper()
	got, gotInvalid, _, gerr := Decode(b)
	if gerr == nil && got.Raw != nil {
		// Raw stands for the points: the strict decoder reads exactly
		// them from it.
		raw, err := DecodePoints(got.Raw, 0)
		if err != nil || len(raw) != len(got.Points) {
			t.Fatalf("%x: DecodePoints(Raw %x) = %d points, %v; Decode read %d", b, got.Raw, len(raw), err, len(got.Points))
		}
		for i := range raw {
			if !raw[i].Equal(&got.Points[i]) {
				t.Fatalf("%x: point %d from Raw %+v, Decode read %+v", b, i, raw[i], got.Points[i])
			}
		}
	}
	var in pb.Batch
	if err := proto.Unmarshal(b, &in); err != nil {
		// The runtime also refuses invalid UTF-8 and a malformed point,
		// both of which Decode passes on or counts; only a broken top
		// level must fail both.
		if gerr == nil && topLevelBroken(b) {
			t.Fatalf("%x: Decode took a batch whose framing is broken", b)
		}
		return
	}
	if gerr != nil {
		t.Fatalf("%x: Decode failed where protobuf did not: %v", b, gerr)
	}
	want, wantInvalid := fromProto(&in)
	if gotInvalid != wantInvalid || got.Dropped != want.Dropped || !bytes.Equal(got.Position, want.Position) {
		t.Fatalf("%x: invalid/dropped/position = %d/%d/%q, protobuf %d/%d/%q", b,
			gotInvalid, got.Dropped, got.Position, wantInvalid, want.Dropped, want.Position)
	}
	if !slices.EqualFunc(got.Events, want.Events, sameEvent) || !slices.Equal(got.Discarded, want.Discarded) {
		t.Fatalf("%x: events %+v discarded %+v,\nprotobuf %+v %+v", b, got.Events, got.Discarded, want.Events, want.Discarded)
	}
	if len(got.Points) != len(want.Points) {
		t.Fatalf("%x: %d points, protobuf %d", b, len(got.Points), len(want.Points))
	}
	for i := range want.Points {
		if !want.Points[i].Equal(&got.Points[i]) {
			t.Fatalf("%x: point %d:\n got %+v\nwant %+v", b, i, got.Points[i], want.Points[i])
		}
	}
}

func sameEvent(a, b Event) bool {
	return a.Kind == b.Kind && a.Time.Equal(b.Time) && a.Since.Equal(b.Since) && a.Symbol == b.Symbol &&
		a.Stream == b.Stream && a.Message == b.Message && a.Count == b.Count && a.FromID == b.FromID && a.ToID == b.ToID
}

// topLevelBroken reports whether b is not a sequence of well-formed
// protobuf fields.
func topLevelBroken(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return true
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return true
		}
		b = b[n:]
	}
	return false
}

func TestDecodeReadsProtobufBytes(t *testing.T) {
	sameBatch(t, protoBytes(t, &Batch{Points: wirePoints(), Dropped: 3, Position: sluice.Position("p")}))
	many := make([]sluice.Point, 5000)
	for i := range many {
		many[i] = pointN(i)
	}
	sameBatch(t, protoBytes(t, &Batch{Points: many}))
	got, invalid, _, err := Decode(Append(nil, &Batch{Points: wirePoints(), Dropped: 7, Position: sluice.Position("pos-1")}))
	if err != nil || invalid != 0 || got.Dropped != 7 || string(got.Position) != "pos-1" || len(got.Points) != len(wirePoints()) {
		t.Fatalf("round trip: %+v invalid=%d err=%v", got, invalid, err)
	}
	// The Unix epoch is the one time that does not survive: 0 is "no time".
	for i, p := range wirePoints()[:3] {
		if !p.Equal(&got.Points[i]) {
			t.Errorf("point %d:\n got %+v\nwant %+v", i, got.Points[i], p)
		}
	}
}

// One point's trouble is not the batch's: a field type this host does not
// know and a malformed point are left out and counted; invalid UTF-8 is
// passed on for the normalizer to reject with its reason.
func TestDecodeLeavesOutOnlyBadPoints(t *testing.T) {
	good := pointN(1)
	unknown := toProto(&Batch{Points: []sluice.Point{{Measurement: "u", Fields: []sluice.Field{field("x", sluice.Int(1))}}}})
	unknown.Points[0].Fields[0].Type = 99
	unknownBytes, err := proto.Marshal(unknown)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = Append(b, &Batch{Points: []sluice.Point{good}})
	b = append(b, unknownBytes...)
	b = append(b, 0x0a, 0x02, 0x20, 0xff) // a point: time, a varint cut short
	b = Append(b, &Batch{Points: []sluice.Point{{Measurement: "bad\xff", Fields: []sluice.Field{field("s", sluice.String("\xc3"))}}}, Dropped: 5, Position: sluice.Position("pos")})

	out, invalid, invalidErr, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 2 || invalidErr == nil {
		t.Fatalf("invalid = %d (%v), want 2 and an error", invalid, invalidErr)
	}
	if len(out.Points) != 2 || !out.Points[0].Equal(&good) || out.Points[1].Measurement != "bad\xff" {
		t.Fatalf("kept %+v, want the good point and the invalid-UTF-8 one", out.Points)
	}
	if s, _ := out.Points[1].Field("s"); s.Str() != "\xc3" {
		t.Fatalf("invalid UTF-8 value changed: %q", s.Str())
	}
	if out.Dropped != 5 || string(out.Position) != "pos" {
		t.Fatalf("dropped=%d position=%q", out.Dropped, out.Position)
	}
	if _, _, _, err := Decode([]byte{0x0a, 0x05, 0x00}); err == nil {
		t.Fatal("a batch whose point runs past its end decoded without error")
	}
	// The strict decoder refuses both, as the runtime does.
	if _, err := DecodePoints(unknownBytes, 0); err == nil {
		t.Error("DecodePoints took a field type the protocol does not have")
	}
}

// Decode hands back the points' own bytes only where DecodePoints reads
// exactly those points from them.
func TestDecodeRaw(t *testing.T) {
	points := []sluice.Point{pointN(1), pointN(2), pointN(3)}
	canonical := Append(nil, &Batch{Points: points})
	full := Append(nil, &Batch{Points: points, Dropped: 2, Position: sluice.Position("p"), Events: wireEvents(), Discarded: wireDiscards()})
	out, _, _, err := Decode(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Raw, canonical) {
		t.Fatalf("Raw = %x, want the points' bytes %x", out.Raw, canonical)
	}
	eventFirst := Append(Append(nil, &Batch{Events: wireEvents()}), &Batch{Points: points})
	unknownType := toProto(&Batch{Points: []sluice.Point{pointN(4)}})
	unknownType.Points[0].Fields[0].Type = 99
	unknownBytes, err := proto.Marshal(unknownType)
	if err != nil {
		t.Fatal(err)
	}
	// A point whose invalid measurement is overwritten by a second one:
	// the normalizer would never see it, but DecodePoints refuses it.
	_, _, n := protowire.ConsumeTag(canonical)
	first, _ := protowire.ConsumeBytes(canonical[n:])
	inner := protowire.AppendString(protowire.AppendTag(nil, pointMeasurement, protowire.BytesType), "m\xff")
	inner = append(inner, first...)
	shadowedBytes := protowire.AppendBytes(protowire.AppendTag(nil, batchPoints, protowire.BytesType), inner)
	badValue := pointN(6)
	badValue.Tags = []sluice.Tag{tag("k", "\xc3")}
	for name, b := range map[string][]byte{
		"an event before the points":     eventFirst,
		"an event among the points":      append(Append(nil, &Batch{Points: points[:1], Events: wireEvents()}), canonical...),
		"a field type from a newer host": append(slices.Clone(canonical), unknownBytes...),
		"a shadowed invalid measurement": shadowedBytes,
		"an invalid tag value":           Append(nil, &Batch{Points: []sluice.Point{badValue}}),
		"no points":                      Append(nil, &Batch{Dropped: 1}),
	} {
		out, _, _, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out.Raw != nil {
			t.Errorf("%s: Raw = %x, want none", name, out.Raw)
		}
		sameBatch(t, b)
	}
}

// An event the host cannot decode costs only itself.
func TestDecodeBrokenEvent(t *testing.T) {
	b := Append(nil, &Batch{Points: []sluice.Point{pointN(1)}})
	b = append(b, 0x22, 0x02, 0x08, 0x63)       // kind 99
	b = append(b, 0x22, 0x03, 0x10, 0xff, 0xff) // a time cut short
	b = Append(b, &Batch{Events: []Event{{Kind: 4, Count: 2}}})
	out, invalid, invalidErr, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 1 || invalidErr == nil {
		t.Errorf("invalid = %d (%v), want 1 and an error", invalid, invalidErr)
	}
	if len(out.Points) != 1 || len(out.Events) != 2 || out.Events[0].Kind != 99 || out.Events[1].Kind != 4 || out.Events[1].Count != 2 {
		t.Fatalf("got points %d, events %+v", len(out.Points), out.Events)
	}
	// A disk buffer entry never holds events, but the strict decoder
	// checks them as the runtime does and returns only the points.
	full := Append(nil, &Batch{Points: wirePoints(), Events: wireEvents(), Discarded: wireDiscards()})
	if points, err := DecodePoints(full, 0); err != nil || len(points) != len(wirePoints()) {
		t.Fatalf("DecodePoints: %d points, %v", len(points), err)
	}
	if _, err := DecodePoints([]byte{0x22, 0x03, 0x1a, 0x01, 0xff}, 0); err == nil {
		t.Error("DecodePoints took an event with invalid UTF-8, which the runtime refuses")
	}
}

// FuzzDecode: on any input, Decode agrees with the protobuf runtime
// wherever the runtime decodes it, and fails on broken framing.
func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &Batch{Points: wirePoints(), Dropped: 7, Position: sluice.Position("pos")}))
	f.Add([]byte{0x0a, 0x02, 0x22, 0x00})             // a point with an empty field
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28}) // invalid UTF-8 measurement
	f.Add([]byte{0x0b, 0x0c})                         // a group
	f.Add([]byte{0x08, 0x01, 0x0a, 0x00})             // points field as a varint
	f.Add([]byte{0x10, 0x05, 0x1a, 0x01, 0x61})       // dropped and position only
	f.Add(Append(nil, &Batch{Points: wirePoints()[:1], Dropped: 1, Events: wireEvents(), Discarded: wireDiscards()}))
	f.Add([]byte{0x22, 0x02, 0x08, 0x63})             // an event of a kind from a newer protocol
	f.Add([]byte{0x22, 0x03, 0x1a, 0x01, 0xff})       // an event with an invalid UTF-8 symbol
	f.Add([]byte{0x22, 0x02, 0x10})                   // an event cut short
	f.Add([]byte{0x2a, 0x04, 0x0a, 0x00, 0x10, 0x07}) // a discard count, empty reason
	f.Add([]byte{0x20, 0x01, 0x28, 0x02})             // events and discards as varints
	f.Fuzz(func(t *testing.T, b []byte) { sameBatch(t, b) })
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
		Time:     FromUnixNano(tns),
		Received: FromUnixNano(rns),
	}
}

// FuzzAppend: Append writes the runtime's bytes for any valid point and
// any event, and Decode gives them back unchanged.
func FuzzAppend(f *testing.F) {
	f.Add("m", "k", "v", "fk", 1.5, int64(-3), uint64(9), "s", true, int64(1700000000000000000), int64(0), uint64(2), []byte("pos"),
		int32(4), "BTCUSDT", "trade", "msg", int64(3), int64(7), int64(9), "too_deep", uint64(2))
	f.Add("", "", "", "", math.Copysign(0, -1), int64(0), uint64(0), "", false, int64(-1), int64(1), uint64(0), []byte(nil),
		int32(0), "", "", "", int64(-1), int64(0), int64(math.MinInt64), "", uint64(0))
	f.Add("\xff", "k", "v", "", math.NaN(), int64(math.MaxInt64), uint64(0), "\x00\xff", false, int64(-1), int64(1), uint64(0), []byte{0},
		int32(-7), "\xff", "s", "é", int64(math.MaxInt64), int64(-1), int64(0), "r", uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk string, fl float64, i int64, u uint64, s string, b bool, tns, rns int64, dropped uint64, pos []byte,
		kind int32, sym, stream, msg string, count, from, to int64, reason string, n uint64) {
		p := fuzzPoint(m, tk, tv, fk, fl, i, u, s, b, tns, rns)
		ev := Event{Kind: kind, Time: FromUnixNano(tns), Since: FromUnixNano(rns), Symbol: sym, Stream: stream,
			Message: msg, Count: count, FromID: from, ToID: to}
		in := &Batch{Points: []sluice.Point{p}, Dropped: dropped, Position: pos, Events: []Event{ev}, Discarded: []Discard{{Reason: reason, Count: n}}}
		got := Append(nil, in)
		if Size(in) != len(got) {
			t.Fatalf("Size = %d, wrote %d", Size(in), len(got))
		}
		if checkUTF8(&p) == nil && utf8.ValidString(sym) && utf8.ValidString(stream) && utf8.ValidString(msg) && utf8.ValidString(reason) {
			if want := protoBytes(t, in); !bytes.Equal(got, want) {
				t.Fatalf("Append = %x, protobuf %x", got, want)
			}
		}
		out, invalid, _, err := Decode(got)
		if err != nil || invalid != 0 || len(out.Points) != 1 || !p.Equal(&out.Points[0]) ||
			len(out.Events) != 1 || !sameEvent(out.Events[0], ev) || !slices.Equal(out.Discarded, in.Discarded) ||
			out.Dropped != dropped || !bytes.Equal(out.Position, pos) {
			t.Fatalf("round trip: %+v, invalid=%d, err=%v; want %+v", out, invalid, err, in)
		}
	})
}
