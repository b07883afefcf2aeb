package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The raw batch codec (appendBatch, decodeBatch) must write and read the
// protobuf runtime's bytes, so that a plugin or host built without it
// still understands one built with it.

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

func protoBytes(t testing.TB, points []sluice.Point, dropped uint64, pos sluice.Position) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(batchToPB(points, dropped, pos))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendBatchWritesProtobufBytes(t *testing.T) {
	for _, c := range []struct {
		dropped uint64
		pos     sluice.Position
	}{{0, nil}, {7, sluice.Position("pos-1")}, {math.MaxUint64, sluice.Position{0}}} {
		want := protoBytes(t, wirePoints(), c.dropped, c.pos)
		got := appendBatch([]byte("prefix"), wirePoints(), c.dropped, c.pos)
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Errorf("dropped=%d pos=%q:\n got %x\nwant %x", c.dropped, c.pos, got[len("prefix"):], want)
		}
		if n := batchWireSize(wirePoints(), c.dropped, c.pos); n != len(want) {
			t.Errorf("batchWireSize = %d, encoded %d bytes", n, len(want))
		}
	}
}

// sameBatch fails unless decodeBatch and the protobuf runtime (followed by
// batchFromPB) agree on b, whenever the runtime can decode it.
func sameBatch(t *testing.T, b []byte) {
	t.Helper()
	got, gotInvalid, _, gerr := decodeBatch(b)
	var in pb.Batch
	if err := proto.Unmarshal(b, &in); err != nil {
		// The runtime also refuses invalid UTF-8 and a malformed point,
		// both of which decodeBatch passes on or counts; only a broken
		// top level must fail both.
		if gerr == nil && topLevelBroken(b) {
			t.Fatalf("%x: decodeBatch took a batch whose framing is broken", b)
		}
		return
	}
	if gerr != nil {
		t.Fatalf("%x: decodeBatch failed where protobuf did not: %v", b, gerr)
	}
	want, wantInvalid, _ := batchFromPB(&in)
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

func TestDecodeBatchReadsProtobufBytes(t *testing.T) {
	sameBatch(t, protoBytes(t, wirePoints(), 3, sluice.Position("p")))
	many := make([]sluice.Point, 5000)
	for i := range many {
		many[i] = pointN(i)
	}
	sameBatch(t, protoBytes(t, many, 0, nil))
}

// One point's trouble is not the batch's: a field type this host does not
// know and a malformed point are left out and counted; invalid UTF-8 is
// passed on for the normalizer to reject with its reason.
func TestDecodeBatchLeavesOutOnlyBadPoints(t *testing.T) {
	good := pointN(1)
	unknown := batchToPB([]sluice.Point{{Measurement: "u", Fields: []sluice.Field{field("x", sluice.Int(1))}}}, 0, nil)
	unknown.Points[0].Fields[0].Type = 99
	unknownBytes, err := proto.Marshal(unknown)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = appendBatch(b, []sluice.Point{good}, 0, nil)
	b = append(b, unknownBytes...)
	b = append(b, 0x0a, 0x02, 0x20, 0xff) // a point: time, a varint cut short
	b = appendBatch(b, []sluice.Point{{Measurement: "bad\xff", Fields: []sluice.Field{field("s", sluice.String("\xc3"))}}}, 5, sluice.Position("pos"))

	out, invalid, invalidErr, err := decodeBatch(b)
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
	if _, _, _, err := decodeBatch([]byte{0x0a, 0x05, 0x00}); err == nil {
		t.Fatal("a batch whose point runs past its end decoded without error")
	}
}

// FuzzDecodeBatch: on any input, decodeBatch agrees with the protobuf
// runtime wherever the runtime decodes it, and fails on broken framing.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(appendBatch(nil, wirePoints(), 7, sluice.Position("pos")))
	f.Add([]byte{0x0a, 0x02, 0x22, 0x00})             // a point with an empty field
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28}) // invalid UTF-8 measurement
	f.Add([]byte{0x0b, 0x0c})                         // a group
	f.Add([]byte{0x08, 0x01, 0x0a, 0x00})             // points field as a varint
	f.Add([]byte{0x10, 0x05, 0x1a, 0x01, 0x61})       // dropped and position only
	f.Add(appendExtras(appendBatch(nil, wirePoints()[:1], 1, nil), wireEvents(), wireDiscards()))
	f.Add([]byte{0x22, 0x02, 0x08, 0x63})             // an event of a kind from a newer protocol
	f.Add([]byte{0x22, 0x03, 0x1a, 0x01, 0xff})       // an event with an invalid UTF-8 symbol
	f.Add([]byte{0x22, 0x02, 0x10})                   // an event cut short
	f.Add([]byte{0x2a, 0x04, 0x0a, 0x00, 0x10, 0x07}) // a discard count, empty reason
	f.Add([]byte{0x20, 0x01, 0x28, 0x02})             // events and discards as varints
	f.Fuzz(func(t *testing.T, b []byte) { sameBatch(t, b) })
}

// FuzzAppendBatch: appendBatch writes the runtime's bytes for any valid
// point, and decodeBatch gives the point back.
func FuzzAppendBatch(f *testing.F) {
	f.Add("m", "k", "v", "fk", 1.5, int64(-3), uint64(9), "s", true, int64(1700000000000000000), int64(0), uint64(2), []byte("pos"))
	f.Add("", "", "", "", math.Copysign(0, -1), int64(0), uint64(0), "", false, int64(-1), int64(1), uint64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk string, fl float64, i int64, u uint64, s string, b bool, tns, rns int64, dropped uint64, pos []byte) {
		p := fuzzPoint(m, tk, tv, fk, fl, i, u, s, b, tns, rns)
		got := appendBatch(nil, []sluice.Point{p}, dropped, pos)
		if checkUTF8(&p) == nil {
			if want := protoBytes(t, []sluice.Point{p}, dropped, pos); !bytes.Equal(got, want) {
				t.Fatalf("appendBatch = %x, protobuf %x", got, want)
			}
		}
		out, invalid, _, err := decodeBatch(got)
		if err != nil || invalid != 0 || len(out.Points) != 1 || !p.Equal(&out.Points[0]) {
			t.Fatalf("round trip: %+v, invalid=%d, err=%v; want %+v", out, invalid, err, p)
		}
	})
}

// Across the real gRPC hop, a point with invalid UTF-8 reaches the host
// (whose normalizer counts it) instead of failing the plugin's stream.
func TestStreamCarriesInvalidUTF8(t *testing.T) {
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out *Emitter) error {
		if err := out.EmitWait(ctx, sluice.Point{Measurement: "m", Fields: []sluice.Field{field("s", sluice.String("\xff"))}}); err != nil {
			return err
		}
		return out.EmitWait(ctx, pointN(1))
	}})
	batches := collect(t, c, StreamOptions{BatchSize: 10})
	var got []sluice.Point
	for _, b := range batches {
		got = append(got, b.Points...)
	}
	if len(got) != 2 {
		t.Fatalf("got %d points, want 2", len(got))
	}
	if s, _ := got[0].Field("s"); s.Str() != "\xff" {
		t.Fatalf("value = %q", s.Str())
	}
}

// A host built without the raw codec (it asks for plain protobuf) gets
// protobuf messages from a plugin built with it.
func TestPluginServesAHostWithoutTheRawCodec(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &grpcPlugin{impl: &scripted{
		run: func(ctx context.Context, _ sluice.Position, out *Emitter) error {
			for i := range 3 {
				if err := out.EmitWait(ctx, pointN(i)); err != nil {
					return err
				}
			}
			out.Checkpoint(sluice.Position("end"))
			return nil
		},
	}}})
	t.Cleanup(func() { client.Close() })
	st, err := pb.NewSourceClient(client.Conn).Stream(context.Background(), &pb.StreamRequest{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []*pb.Point
	var pos []byte
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.GetPoints()...)
		if len(b.GetPosition()) > 0 {
			pos = b.GetPosition()
		}
	}
	if len(got) != 3 || got[2].GetFields()[0].GetInt() != 2 || string(pos) != "end" {
		t.Fatalf("got %v, position %q", got, pos)
	}
}

// A plugin built without the raw codec sends protobuf messages; a host
// built with it reads them.
func TestHostReadsAPluginWithoutTheRawCodec(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: protobufPlugin{}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	batches := collect(t, raw.(*Client), StreamOptions{})
	if len(batches) != 1 || len(batches[0].Points) != 2 || batches[0].Dropped != 4 || string(batches[0].Position) != "p" {
		t.Fatalf("got %+v", batches)
	}
	if p := pointN(1); !batches[0].Points[1].Equal(&p) {
		t.Fatalf("point 1 = %+v", batches[0].Points[1])
	}
}

// protobufPlugin serves a Stream that sends one batch as a protobuf
// message, as an SDK without the raw codec does.
type protobufPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (protobufPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSourceServer(s, protobufServer{})
	return nil
}

func (protobufPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

type protobufServer struct{ pb.UnimplementedSourceServer }

func (protobufServer) Stream(_ *pb.StreamRequest, st grpc.ServerStreamingServer[pb.Batch]) error {
	return st.Send(batchToPB([]sluice.Point{pointN(0), pointN(1)}, 4, sluice.Position("p")))
}

// wireEvents covers every kind and the edges of each field: zero and
// negative times, empty strings, extreme ids, a kind the protocol lacks.
func wireEvents() []Event {
	ts := time.Date(2024, 3, 1, 12, 0, 0, 5, time.UTC)
	evs := []Event{
		{Kind: EventGap, Time: ts, Symbol: "BTCUSDT", Stream: "trade", Message: "missing ids", Count: 3, FromID: 7, ToID: 9},
		{Kind: EventStale, Time: ts, Stream: "btcusdt@trade", Message: "é silent", Since: ts.Add(-time.Minute)},
		{Kind: EventLive, Time: time.Unix(-5, 3).UTC()},
		{Kind: EventBackfill, Count: math.MaxInt64, FromID: math.MinInt64, ToID: -1},
		{Kind: "not_a_kind", Time: ts, Message: "sent as unspecified"},
		{},
	}
	for k := range kindToWire {
		evs = append(evs, Event{Kind: k, Time: ts, Message: string(k)})
	}
	return evs
}

func wireDiscards() []Discard {
	return []Discard{{Reason: "too_deep", Count: 2}, {Reason: "", Count: math.MaxUint64}, {Reason: "oversize"}}
}

// sameEvent compares events as the wire carries them: a kind the
// protocol lacks arrives as unspecified.
func sameEvent(a, b Event) bool {
	if wireKind(a.Kind) == 0 && wireKind(b.Kind) == 0 {
		a.Kind, b.Kind = "", ""
	}
	return a.Kind == b.Kind && a.Time.Equal(b.Time) && a.Since.Equal(b.Since) && a.Symbol == b.Symbol &&
		a.Stream == b.Stream && a.Message == b.Message && a.Count == b.Count && a.FromID == b.FromID && a.ToID == b.ToID
}

func outBytes(t testing.TB, b *outBatch) []byte {
	t.Helper()
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(outToPB(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Events and discard counts are written as the runtime writes them, after
// the points, and read back by both decoders.
func TestEventsWriteProtobufBytes(t *testing.T) {
	b := &outBatch{points: wirePoints(), dropped: 4, pos: sluice.Position("p"), events: wireEvents(), discarded: wireDiscards()}
	want := outBytes(t, b)
	got := appendExtras(appendBatch(nil, b.points, b.dropped, b.pos), b.events, b.discarded)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendBatch+appendExtras:\n got %x\nwant %x", got, want)
	}
	if n := batchWireSize(b.points, b.dropped, b.pos) + extrasWireSize(b.events, b.discarded); n != len(want) {
		t.Errorf("sizes add to %d, encoded %d bytes", n, len(want))
	}
	sameBatch(t, got)
	dec, invalid, _, err := decodeBatch(got)
	if err != nil || invalid != 0 {
		t.Fatalf("decodeBatch: invalid=%d err=%v", invalid, err)
	}
	if !slices.EqualFunc(dec.Events, b.events, sameEvent) || !slices.Equal(dec.Discarded, b.discarded) {
		t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", dec.Events, dec.Discarded, b.events, b.discarded)
	}
	if dec.Events[4].Kind != "unspecified" {
		t.Errorf("a kind the protocol lacks arrived as %q, want unspecified", dec.Events[4].Kind)
	}
	// A disk buffer record never holds events, but the strict decoder
	// checks them as the runtime does and returns only the points.
	points, err := DecodePoints(got, 0)
	if err != nil || len(points) != len(b.points) {
		t.Fatalf("DecodePoints: %d points, %v", len(points), err)
	}
	if _, err := DecodePoints([]byte{0x22, 0x03, 0x1a, 0x01, 0xff}, 0); err == nil {
		t.Error("DecodePoints took an event with invalid UTF-8, which the runtime refuses")
	}
}

// A kind from a newer protocol, and an event the host cannot decode, cost
// only themselves.
func TestDecodeBatchUnknownAndBrokenEvents(t *testing.T) {
	b := appendBatch(nil, []sluice.Point{pointN(1)}, 0, nil)
	b = append(b, 0x22, 0x02, 0x08, 0x63)       // kind 99
	b = append(b, 0x22, 0x03, 0x10, 0xff, 0xff) // a time cut short
	b = appendExtras(b, []Event{{Kind: EventGap, Count: 2}}, nil)
	out, invalid, invalidErr, err := decodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 1 || invalidErr == nil {
		t.Errorf("invalid = %d (%v), want 1 and an error", invalid, invalidErr)
	}
	if len(out.Points) != 1 || len(out.Events) != 2 || out.Events[0].Kind != "kind_99" || out.Events[1].Kind != EventGap || out.Events[1].Count != 2 {
		t.Fatalf("got points %d, events %+v", len(out.Points), out.Events)
	}
}

// FuzzAppendEvents: appendExtras writes the runtime's bytes for any event
// and discard count, and decodeBatch gives them back.
func FuzzAppendEvents(f *testing.F) {
	f.Add(uint8(4), int64(1700000000000000000), int64(1), "BTCUSDT", "trade", "msg", int64(3), int64(7), int64(9), "too_deep", uint64(2))
	f.Add(uint8(0), int64(-1), int64(0), "", "", "", int64(-1), int64(0), int64(math.MinInt64), "", uint64(0))
	f.Add(uint8(200), int64(0), int64(-7), "\xff", "s", "é", int64(math.MaxInt64), int64(-1), int64(0), "r", uint64(math.MaxUint64))
	kinds := slices.Sorted(maps.Keys(kindToWire))
	f.Fuzz(func(t *testing.T, kind uint8, tns, sns int64, sym, stream, msg string, count, from, to int64, reason string, n uint64) {
		k := EventKind("made_up")
		if int(kind) < len(kinds) {
			k = kinds[kind]
		}
		ev := Event{Kind: k, Time: fromUnixNano(tns), Since: fromUnixNano(sns), Symbol: sym, Stream: stream,
			Message: msg, Count: count, FromID: from, ToID: to}
		ob := &outBatch{events: []Event{ev}, discarded: []Discard{{Reason: reason, Count: n}}}
		got := appendExtras(appendBatch(nil, nil, 0, nil), ob.events, ob.discarded)
		if extrasWireSize(ob.events, ob.discarded) != len(got) {
			t.Fatalf("extrasWireSize = %d, wrote %d", extrasWireSize(ob.events, ob.discarded), len(got))
		}
		if utf8.ValidString(sym) && utf8.ValidString(stream) && utf8.ValidString(msg) && utf8.ValidString(reason) {
			if want := outBytes(t, ob); !bytes.Equal(got, want) {
				t.Fatalf("appendExtras = %x, protobuf %x", got, want)
			}
		}
		out, invalid, _, err := decodeBatch(got)
		if err != nil || invalid != 0 || len(out.Events) != 1 || !sameEvent(out.Events[0], ev) ||
			!slices.Equal(out.Discarded, ob.discarded) {
			t.Fatalf("round trip: %+v, invalid=%d, err=%v; want %+v", out, invalid, err, ob)
		}
	})
}
