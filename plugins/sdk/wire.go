package sdk

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The Stream RPC carries every point, so its batches skip the protobuf
// runtime on both ends: the plugin writes a Batch's bytes directly and the
// host decodes them directly (internal/pointcodec, the codec the agent's
// disk buffer uses too), with no message per point, tag and field. The
// bytes are exactly protobuf's, so either end may be built with an SDK
// that uses the runtime.
//
// The host asks for this with the content-subtype wireCodecName. A plugin
// built with this SDK has the codec registered and answers with raw
// batches; an older plugin does not know the subtype, falls back to
// protobuf, and sends the same bytes. A plugin whose host did not ask
// (an older host) sends the same bytes too, as the unknown fields of an
// empty protobuf Batch, which the runtime writes out as they are.

// wireCodecName is the content-subtype of streams whose batches are raw.
const wireCodecName = "sluice-batch"

func init() { encoding.RegisterCodecV2(wireCodec{}) }

// wireBatch is a source.v1 Batch in its wire form.
type wireBatch struct {
	// buf is the plugin's encoded batch, from wirePool; gRPC returns it
	// there once sent.
	buf *[]byte
	// data is the host's copy of a received batch.
	data []byte
}

// wireCodec passes a *wireBatch's bytes through and hands every other
// message to the protobuf codec.
type wireCodec struct{}

var protoCodec = encoding.GetCodecV2(encproto.Name)

func (wireCodec) Name() string { return wireCodecName }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if wb, ok := v.(*wireBatch); ok {
		return mem.BufferSlice{mem.NewBuffer(wb.buf, &wirePool)}, nil
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if wb, ok := v.(*wireBatch); ok {
		wb.data = data.Materialize()
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// hostWantsWire reports whether the host of the stream whose context this
// is asked for raw batches.
func hostWantsWire(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, ct := range md.Get("content-type") {
		if ct == "application/grpc+"+wireCodecName {
			return true
		}
	}
	return false
}

// sendWire sends one batch encoded directly.
func sendWire(stream grpc.ServerStream, b *outBatch) error {
	wb := toWire(b)
	buf := wirePool.Get(pointcodec.Size(&wb))
	*buf = pointcodec.Append((*buf)[:0], &wb)
	return stream.SendMsg(&wireBatch{buf: buf})
}

// sendProto sends one batch to a host that asked for protobuf messages:
// the same bytes, carried as the unknown fields of an empty Batch.
func sendProto(stream grpc.ServerStreamingServer[pb.Batch], b *outBatch) error {
	wb := toWire(b)
	buf := wirePool.Get(pointcodec.Size(&wb))
	defer wirePool.Put(buf)
	*buf = pointcodec.Append((*buf)[:0], &wb)
	var m pb.Batch
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(*buf))
	return stream.Send(&m) // encodes m before it returns
}

// toWire is b as the codec takes it.
func toWire(b *outBatch) pointcodec.Batch {
	wb := pointcodec.Batch{Points: b.points, Dropped: b.dropped, Position: b.pos}
	if len(b.events) > 0 {
		wb.Events = make([]pointcodec.Event, len(b.events))
		for i, ev := range b.events {
			wb.Events[i] = pointcodec.Event{Kind: int32(wireKind(ev.Kind)), Time: ev.Time, Symbol: ev.Symbol, Stream: ev.Stream,
				Message: ev.Message, Count: ev.Count, FromID: ev.FromID, ToID: ev.ToID, Since: ev.Since}
		}
	}
	if len(b.discarded) > 0 {
		wb.Discarded = make([]pointcodec.Discard, len(b.discarded))
		for i, d := range b.discarded {
			wb.Discarded[i] = pointcodec.Discard{Reason: d.Reason, Count: d.Count}
		}
	}
	return wb
}

// fromWire is a decoded batch as the host's handler takes it.
func fromWire(wb *pointcodec.Batch) *Batch {
	b := &Batch{Batch: sluice.Batch{Points: wb.Points, Dropped: wb.Dropped, Position: wb.Position}, RawPoints: wb.Raw}
	if len(wb.Events) > 0 {
		b.Events = make([]Event, len(wb.Events))
		for i, ev := range wb.Events {
			b.Events[i] = Event{Kind: kindOf(pb.EventKind(ev.Kind)), Time: ev.Time, Symbol: ev.Symbol, Stream: ev.Stream,
				Message: ev.Message, Count: ev.Count, FromID: ev.FromID, ToID: ev.ToID, Since: ev.Since}
		}
	}
	if len(wb.Discarded) > 0 {
		b.Discarded = make([]Discard, len(wb.Discarded))
		for i, d := range wb.Discarded {
			b.Discarded[i] = Discard{Reason: d.Reason, Count: d.Count}
		}
	}
	return b
}

// wirePool recycles the plugin's batch buffers. gRPC's own pool clears
// every buffer it hands out, which cost the Binance plugin 7% of its CPU;
// pointcodec.Append overwrites what it uses, so this one does not.
var wirePool bufferPool

type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of length n (its contents are whatever it last
// held).
func (p *bufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func (p *bufferPool) Put(b *[]byte) { p.pool.Put(b) }

// recvWire receives and decodes one batch.
func recvWire(stream grpc.ClientStream) (b *Batch, invalid int, invalidErr, err error) {
	var wb wireBatch
	if err := stream.RecvMsg(&wb); err != nil {
		return nil, 0, nil, err
	}
	dec, invalid, invalidErr, err := pointcodec.Decode(wb.data)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("the plugin sent a malformed batch: %w", err)
	}
	return fromWire(dec), invalid, invalidErr, nil
}
