package pointcodec

import (
	"fmt"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The reference: a Batch converted to and from the generated protobuf
// messages, for the protobuf runtime to encode and decode. The codec's
// tests hold it to the runtime's bytes and the runtime's answers, and
// its benchmarks measure the codec against it.

// toProto is b as the generated messages.
func toProto(b *Batch) *pb.Batch {
	out := &pb.Batch{Dropped: b.Dropped, Position: b.Position, Points: make([]*pb.Point, 0, len(b.Points))}
	for i := range b.Points {
		p := &b.Points[i]
		pp := &pb.Point{Measurement: p.Measurement, TimeUnixNano: UnixNano(p.Time), ReceivedUnixNano: UnixNano(p.Received)}
		for _, t := range p.Tags {
			pp.Tags = append(pp.Tags, &pb.Tag{Key: t.Key, Value: t.Value})
		}
		for _, f := range p.Fields {
			pf := &pb.Field{Key: f.Key, Type: WireType(f.Value.Kind())}
			switch v := f.Value; v.Kind() {
			case sluice.KindFloat:
				pf.Float = v.Float()
			case sluice.KindInt:
				pf.Int = v.Int()
			case sluice.KindUint:
				pf.Uint = v.Uint()
			case sluice.KindString:
				pf.String_ = v.Str()
			case sluice.KindBool:
				pf.Bool = v.Bool()
			}
			pp.Fields = append(pp.Fields, pf)
		}
		out.Points = append(out.Points, pp)
	}
	for _, ev := range b.Events {
		out.Events = append(out.Events, &pb.Event{
			Kind: pb.EventKind(ev.Kind), TimeUnixNano: UnixNano(ev.Time), Symbol: ev.Symbol, Stream: ev.Stream,
			Message: ev.Message, Count: ev.Count, FromId: ev.FromID, ToId: ev.ToID, SinceUnixNano: UnixNano(ev.Since),
		})
	}
	for _, d := range b.Discarded {
		out.Discarded = append(out.Discarded, &pb.Discarded{Reason: d.Reason, Count: d.Count})
	}
	return out
}

// fromProto converts a decoded message back. A point with a field type
// the protocol does not have is left out and counted, as Decode does.
func fromProto(in *pb.Batch) (out *Batch, invalid int) {
	out = &Batch{Dropped: in.GetDropped(), Position: in.GetPosition(), Points: make([]sluice.Point, 0, len(in.GetPoints()))}
	for _, e := range in.GetEvents() {
		out.Events = append(out.Events, Event{
			Kind: int32(e.GetKind()), Time: FromUnixNano(e.GetTimeUnixNano()), Symbol: e.GetSymbol(), Stream: e.GetStream(),
			Message: e.GetMessage(), Count: e.GetCount(), FromID: e.GetFromId(), ToID: e.GetToId(), Since: FromUnixNano(e.GetSinceUnixNano()),
		})
	}
	for _, d := range in.GetDiscarded() {
		out.Discarded = append(out.Discarded, Discard{Reason: d.GetReason(), Count: d.GetCount()})
	}
	for _, pp := range in.GetPoints() {
		p, err := pointFromPB(pp)
		if err != nil {
			invalid++
			continue
		}
		out.Points = append(out.Points, p)
	}
	return out, invalid
}

func pointFromPB(in *pb.Point) (sluice.Point, error) {
	p := sluice.Point{Measurement: in.GetMeasurement(), Time: FromUnixNano(in.GetTimeUnixNano()), Received: FromUnixNano(in.GetReceivedUnixNano())}
	for _, t := range in.GetTags() {
		p.Tags = append(p.Tags, sluice.Tag{Key: t.GetKey(), Value: t.GetValue()})
	}
	for _, f := range in.GetFields() {
		var v sluice.Value
		switch f.GetType() {
		case pb.FieldType_FIELD_TYPE_FLOAT:
			v = sluice.Float(f.GetFloat())
		case pb.FieldType_FIELD_TYPE_INT:
			v = sluice.Int(f.GetInt())
		case pb.FieldType_FIELD_TYPE_UINT:
			v = sluice.Uint(f.GetUint())
		case pb.FieldType_FIELD_TYPE_STRING:
			v = sluice.String(f.GetString_())
		case pb.FieldType_FIELD_TYPE_BOOL:
			v = sluice.Bool(f.GetBool())
		default:
			return sluice.Point{}, fmt.Errorf("unknown field type %d", f.GetType())
		}
		p.Fields = append(p.Fields, sluice.Field{Key: f.GetKey(), Value: v})
	}
	return p, nil
}
