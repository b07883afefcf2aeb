package micro

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// The reference encoding: points converted to the generated protobuf
// messages and encoded by the protobuf runtime (marshalPoints), and
// decoded by it (unmarshalPoints). The direct codec, internal/pointcodec,
// is held to these bytes and answers, and the benchmarks measure both.

func marshalPoints(dst []byte, points []sluice.Point) ([]byte, error) {
	b := &pb.Batch{Points: make([]*pb.Point, len(points))}
	for i := range points {
		p := &points[i]
		pp := &pb.Point{Measurement: p.Measurement, TimeUnixNano: pointcodec.UnixNano(p.Time), ReceivedUnixNano: pointcodec.UnixNano(p.Received)}
		for _, t := range p.Tags {
			pp.Tags = append(pp.Tags, &pb.Tag{Key: t.Key, Value: t.Value})
		}
		for _, f := range p.Fields {
			pf := &pb.Field{Key: f.Key, Type: pointcodec.WireType(f.Value.Kind())}
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
		b.Points[i] = pp
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, b)
}

func unmarshalPoints(b []byte) ([]sluice.Point, error) {
	var in pb.Batch
	if err := proto.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode points: %w", err)
	}
	out := make([]sluice.Point, 0, len(in.GetPoints()))
	for _, pp := range in.GetPoints() {
		p := sluice.Point{Measurement: pp.GetMeasurement(), Time: pointcodec.FromUnixNano(pp.GetTimeUnixNano()),
			Received: pointcodec.FromUnixNano(pp.GetReceivedUnixNano())}
		for _, t := range pp.GetTags() {
			p.Tags = append(p.Tags, sluice.Tag{Key: t.GetKey(), Value: t.GetValue()})
		}
		for _, f := range pp.GetFields() {
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
				return nil, fmt.Errorf("decode points: 1 undecodable: unknown field type %d", f.GetType())
			}
			p.Fields = append(p.Fields, sluice.Field{Key: f.GetKey(), Value: v})
		}
		out = append(out, p)
	}
	return out, nil
}
