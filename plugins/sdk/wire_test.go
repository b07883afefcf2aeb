package sdk

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The batch codec itself, held to the protobuf runtime's bytes, is tested
// in internal/pointcodec. Here: across the real gRPC hop, with hosts and
// plugins built with and without it.

// Across the real gRPC hop, a point with invalid UTF-8 reaches the host
// (whose normalizer counts it) instead of failing the plugin's stream.
func TestStreamCarriesInvalidUTF8(t *testing.T) {
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
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

// Across the real gRPC hop, the host gets the plugin's bytes for the
// points of a batch with events and a position, which read back as its
// points; a batch with invalid UTF-8 comes without them.
func TestStreamHandsOverRawPoints(t *testing.T) {
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		for i := range 3 {
			if err := out.EmitWait(ctx, pointN(i)); err != nil {
				return err
			}
		}
		out.Checkpoint(sluice.Position("p"))
		out.Event(Event{Kind: EventGap, Count: 2})
		return nil
	}})
	batches := collect(t, c, StreamOptions{BatchSize: 3})
	raws := 0
	for _, b := range batches {
		if b.RawPoints == nil {
			continue
		}
		raws++
		got, err := pointcodec.DecodePoints(b.RawPoints, 0)
		if err != nil || len(got) != len(b.Points) {
			t.Fatalf("raw points: %d, %v; batch has %d", len(got), err, len(b.Points))
		}
		for i := range got {
			if !got[i].Equal(&b.Points[i]) {
				t.Fatalf("raw point %d = %+v, batch has %+v", i, got[i], b.Points[i])
			}
		}
	}
	if raws == 0 {
		t.Fatalf("no batch of %d came with the plugin's bytes", len(batches))
	}

	c = connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		return out.EmitWait(ctx, sluice.Point{Measurement: "m", Fields: []sluice.Field{field("s", sluice.String("\xff"))}})
	}})
	got := 0
	for _, b := range collect(t, c, StreamOptions{BatchSize: 1}) {
		got += len(b.Points)
		if b.RawPoints != nil {
			t.Fatalf("a batch with invalid UTF-8 came with raw points %x", b.RawPoints)
		}
	}
	if got != 1 {
		t.Fatalf("%d points with invalid UTF-8 arrived, want 1", got)
	}
}

// A host built without the raw codec (it asks for plain protobuf) gets
// protobuf messages from a plugin built with it.
func TestPluginServesAHostWithoutTheRawCodec(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: PluginFor(&scripted{
		run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
			for i := range 3 {
				if err := out.EmitWait(ctx, pointN(i)); err != nil {
					return err
				}
			}
			out.Checkpoint(sluice.Position("end"))
			out.Event(Event{Kind: EventGap, Count: 2})
			out.Discarded("oversize", 1)
			return nil
		},
	})})
	t.Cleanup(func() { client.Close() })
	st, err := pb.NewSourceClient(client.Conn).Stream(context.Background(), &pb.StreamRequest{BatchSize: 10, HostWritesEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []*pb.Point
	var pos []byte
	var events []*pb.Event
	var discarded []*pb.Discarded
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.GetPoints()...)
		events = append(events, b.GetEvents()...)
		discarded = append(discarded, b.GetDiscarded()...)
		if len(b.GetPosition()) > 0 {
			pos = b.GetPosition()
		}
	}
	if len(got) != 3 || got[2].GetFields()[0].GetInt() != 2 || string(pos) != "end" {
		t.Fatalf("got %v, position %q", got, pos)
	}
	// This host set host_writes_events: the events come as events.
	if len(events) != 1 || events[0].GetKind() != pb.EventKind_EVENT_KIND_GAP || events[0].GetCount() != 2 ||
		len(discarded) != 1 || discarded[0].GetReason() != "oversize" {
		t.Fatalf("events %v, discarded %v", events, discarded)
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
	point := func(i int64) *pb.Point {
		return &pb.Point{Measurement: "m", TimeUnixNano: i * 1e9,
			Fields: []*pb.Field{{Key: "id", Type: pb.FieldType_FIELD_TYPE_INT, Int: i}}}
	}
	return st.Send(&pb.Batch{Points: []*pb.Point{point(0), point(1)}, Dropped: 4, Position: []byte("p")})
}

// pbPoints decodes the points of a protobuf Batch with the SDK's codec,
// which internal/pointcodec's tests hold to the runtime.
func pbPoints(t *testing.T, b *pb.Batch) []sluice.Point {
	t.Helper()
	raw, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	points, err := pointcodec.DecodePoints(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	return points
}
