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
)

// The Stream RPC carries every point, so its batches skip the protobuf
// runtime on both ends: the plugin writes a Batch's bytes directly
// (appendBatch) and the host decodes them directly (decodeBatch), with no
// message per point, tag and field. The bytes are exactly protobuf's, so
// either end may be built with an SDK that uses the runtime.
//
// The host asks for this with the content-subtype wireCodecName. A plugin
// built with this SDK has the codec registered and answers with raw
// batches; an older plugin does not know the subtype, falls back to
// protobuf, and sends the same bytes. A plugin whose host did not ask
// (an older host) sends protobuf messages.

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
	buf := wirePool.Get(batchWireSize(b.points, b.dropped, b.pos) + extrasWireSize(b.events, b.discarded))
	*buf = appendBatch((*buf)[:0], b.points, b.dropped, b.pos)
	*buf = appendExtras(*buf, b.events, b.discarded)
	return stream.SendMsg(&wireBatch{buf: buf})
}

// wirePool recycles the plugin's batch buffers. gRPC's own pool clears
// every buffer it hands out, which cost the Binance plugin 7% of its CPU;
// appendBatch overwrites what it uses, so this one does not.
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
	b, invalid, invalidErr, err = decodeBatch(wb.data)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("the plugin sent a malformed batch: %w", err)
	}
	return b, invalid, invalidErr, nil
}
