package pointcodec

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The strict points-only codec (AppendPoints, DecodePoints), which the
// disk buffer uses, must write and read exactly the protobuf runtime's
// bytes (marshalPoints, unmarshalPoints): disk buffers written by either
// are read by both.

// marshalPoints is the runtime's encoding of a Batch holding only points.
func marshalPoints(dst []byte, points []sluice.Point) ([]byte, error) {
	return proto.MarshalOptions{}.MarshalAppend(dst, toProto(&Batch{Points: points}))
}

// unmarshalPoints is the runtime's decoding of it, failing as the runtime
// does and on a field type the protocol does not have.
func unmarshalPoints(b []byte) ([]sluice.Point, error) {
	var in pb.Batch
	if err := proto.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode points: %w", err)
	}
	out, invalid := fromProto(&in)
	if invalid > 0 {
		return nil, fmt.Errorf("decode points: %d undecodable", invalid)
	}
	return out.Points, nil
}

func edgePoints() []sluice.Point {
	return []sluice.Point{
		wirePoints()[0],
		{Measurement: "m", Tags: []sluice.Tag{{}, {Key: "k"}, {Value: "v"}}, Fields: []sluice.Field{
			{Key: "f0", Value: sluice.Float(0)}, {Key: "fneg0", Value: sluice.Float(math.Copysign(0, -1))},
			{Key: "nan", Value: sluice.Float(math.NaN())}, {Key: "inf", Value: sluice.Float(math.Inf(-1))},
			{Key: "i0", Value: sluice.Int(0)}, {Key: "imin", Value: sluice.Int(math.MinInt64)},
			{Key: "u", Value: sluice.Uint(math.MaxUint64)}, {Key: "s0", Value: sluice.String("")},
			{Key: "s", Value: sluice.String("é\x00\"\n")}, {Key: "b0", Value: sluice.Bool(false)},
			{Key: "b1", Value: sluice.Bool(true)}, {Key: "", Value: sluice.Int(7)},
		}},
		{},
		{Measurement: "times", Fields: []sluice.Field{{Key: "x", Value: sluice.Int(1)}},
			Time: time.Unix(0, 0), Received: time.Unix(-5, 3)},
		{Measurement: "invalid", Fields: []sluice.Field{{Key: "x"}}},
	}
}

func TestAppendPointsWritesMarshalPointsBytes(t *testing.T) {
	for i, p := range edgePoints() {
		want, werr := marshalPoints([]byte("prefix"), []sluice.Point{p})
		got, gerr := AppendPoints([]byte("prefix"), []sluice.Point{p})
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Errorf("point %d: AppendPoints = %x, %v\nMarshalPoints = %x, %v", i, got, gerr, want, werr)
		}
	}
	all := edgePoints()
	want, _ := marshalPoints(nil, all)
	got, _ := AppendPoints(nil, all)
	if !bytes.Equal(got, want) {
		t.Errorf("batch: AppendPoints and MarshalPoints differ")
	}
	for _, bad := range []sluice.Point{
		{Measurement: "\xff"}, {Measurement: "m", Tags: []sluice.Tag{{Key: "k", Value: "\xff"}}},
		{Measurement: "m", Fields: []sluice.Field{{Key: "s", Value: sluice.String("\xc3")}}},
	} {
		if _, err := AppendPoints(nil, []sluice.Point{bad}); err == nil {
			t.Errorf("%+v: invalid UTF-8 encoded without error", bad)
		}
		if _, err := marshalPoints(nil, []sluice.Point{bad}); err == nil {
			t.Errorf("%+v: MarshalPoints took invalid UTF-8 (the test's premise is wrong)", bad)
		}
	}
}

// sameDecode fails unless DecodePoints and UnmarshalPoints agree on b.
func sameDecode(t *testing.T, b []byte) {
	t.Helper()
	want, werr := unmarshalPoints(b)
	got, gerr := DecodePoints(b, 3)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%x: DecodePoints err=%v, UnmarshalPoints err=%v", b, gerr, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("%x: DecodePoints %d points, UnmarshalPoints %d", b, len(got), len(want))
	}
	for i := range want {
		if !want[i].Equal(&got[i]) {
			t.Fatalf("%x: point %d:\n got %+v\nwant %+v", b, i, got[i], want[i])
		}
	}
}

func TestDecodePointsReadsMarshalPointsBytes(t *testing.T) {
	valid := edgePoints()[:4]
	b, err := marshalPoints(nil, valid)
	if err != nil {
		t.Fatal(err)
	}
	sameDecode(t, b)
	got, err := DecodePoints(b, 0)
	if err != nil || len(got) != len(valid) {
		t.Fatalf("decoded %d points, %v", len(got), err)
	}
	// Points do not share slice capacity: appending a tag to one must
	// not overwrite the next point's.
	got[0].Tags = append(got[0].Tags, sluice.Tag{Key: "zz", Value: "zz"})
	if !got[1].Equal(&valid[1]) {
		t.Fatalf("appending to point 0's tags changed point 1: %+v", got[1])
	}
	// A field type this host does not know is an error for both.
	inv, _ := marshalPoints(nil, edgePoints()[4:])
	sameDecode(t, inv)
	// Many points: tags and fields span several chunks.
	many := make([]sluice.Point, 5000)
	for i := range many {
		many[i] = wirePoints()[0]
		many[i].Time = time.Unix(1700000000, int64(i))
	}
	b, _ = AppendPoints(nil, many)
	sameDecode(t, b)
}

// FuzzDecodePoints: on any input DecodePoints and UnmarshalPoints agree:
// both fail, or both give the same points.
func FuzzDecodePoints(f *testing.F) {
	b, _ := marshalPoints(nil, edgePoints()[:4])
	f.Add(b)
	b, _ = marshalPoints(nil, edgePoints()[4:])
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0x22, 0x00})             // a point with an empty field
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28}) // invalid UTF-8 measurement
	f.Add([]byte{0x0b, 0x0c})                         // a group
	f.Add([]byte{0x08, 0x01, 0x0a, 0x00})             // points field as a varint
	f.Add([]byte{0x22, 0x04, 0x08, 0x04, 0x1a, 0x00}) // an event (a gap), which a buffer never holds
	f.Add([]byte{0x22, 0x03, 0x1a, 0x01, 0xff})       // an event with invalid UTF-8
	f.Add([]byte{0x2a, 0x02, 0x10, 0x01})             // a discard count
	f.Fuzz(func(t *testing.T, b []byte) { sameDecode(t, b) })
}

// FuzzAppendPoints: AppendPoints writes MarshalPoints' bytes for any point.
func FuzzAppendPoints(f *testing.F) {
	f.Add("m", "k", "v", "fk", 1.5, int64(-3), uint64(9), "s", true, int64(1700000000000000000), int64(0), uint8(1))
	f.Add("", "", "", "", math.Copysign(0, -1), int64(0), uint64(0), "", false, int64(-1), int64(1), uint8(0))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk string, fl float64, i int64, u uint64, s string, b bool, tns, rns int64, kind uint8) {
		p := sluice.Point{
			Measurement: m,
			Tags:        []sluice.Tag{{Key: tk, Value: tv}},
			Fields: []sluice.Field{
				{Key: fk + "f", Value: sluice.Float(fl)}, {Key: fk + "i", Value: sluice.Int(i)},
				{Key: fk + "u", Value: sluice.Uint(u)}, {Key: fk + "s", Value: sluice.String(s)},
				{Key: fk + "b", Value: sluice.Bool(b)},
			},
		}
		if kind%2 == 1 {
			p.Time, p.Received = time.Unix(0, tns), time.Unix(0, rns)
		}
		want, werr := marshalPoints(nil, []sluice.Point{p})
		got, gerr := AppendPoints(nil, []sluice.Point{p})
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("AppendPoints = %x, %v; MarshalPoints = %x, %v", got, gerr, want, werr)
		}
		if werr == nil {
			sameDecode(t, want)
		}
	})
}
