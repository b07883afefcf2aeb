package sdk

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// unixNano maps the zero time to 0 so that "no time" survives the wire.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// toPB converts p into the wire form. Tags and fields are allocated in
// one slice each rather than one allocation per element.
func toPB(p *sluice.Point) *pb.Point {
	out := &pb.Point{
		Measurement:      p.Measurement,
		TimeUnixNano:     unixNano(p.Time),
		ReceivedUnixNano: unixNano(p.Received),
	}
	if len(p.Tags) > 0 {
		tags := make([]pb.Tag, len(p.Tags))
		out.Tags = make([]*pb.Tag, len(p.Tags))
		for i, t := range p.Tags {
			tags[i].Key, tags[i].Value = t.Key, t.Value
			out.Tags[i] = &tags[i]
		}
	}
	if len(p.Fields) > 0 {
		fields := make([]pb.Field, len(p.Fields))
		out.Fields = make([]*pb.Field, len(p.Fields))
		for i, f := range p.Fields {
			pf := &fields[i]
			pf.Key = f.Key
			switch v := f.Value; v.Kind() {
			case sluice.KindFloat:
				pf.Type, pf.Float = pb.FieldType_FIELD_TYPE_FLOAT, v.Float()
			case sluice.KindInt:
				pf.Type, pf.Int = pb.FieldType_FIELD_TYPE_INT, v.Int()
			case sluice.KindUint:
				pf.Type, pf.Uint = pb.FieldType_FIELD_TYPE_UINT, v.Uint()
			case sluice.KindString:
				pf.Type, pf.String_ = pb.FieldType_FIELD_TYPE_STRING, v.Str()
			case sluice.KindBool:
				pf.Type, pf.Bool = pb.FieldType_FIELD_TYPE_BOOL, v.Bool()
			}
			out.Fields[i] = pf
		}
	}
	return out
}

// fromPB converts a wire point. A field of unknown type is an error: the
// plugin speaks a protocol this host does not know.
func fromPB(in *pb.Point) (sluice.Point, error) {
	p := sluice.Point{
		Measurement: in.GetMeasurement(),
		Time:        fromUnixNano(in.GetTimeUnixNano()),
		Received:    fromUnixNano(in.GetReceivedUnixNano()),
	}
	if n := len(in.GetTags()); n > 0 {
		p.Tags = make([]sluice.Tag, n)
		for i, t := range in.GetTags() {
			p.Tags[i] = sluice.Tag{Key: t.GetKey(), Value: t.GetValue()}
		}
	}
	if n := len(in.GetFields()); n > 0 {
		p.Fields = make([]sluice.Field, n)
		for i, f := range in.GetFields() {
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
				return sluice.Point{}, fmt.Errorf("measurement %q field %q: unknown field type %d", p.Measurement, f.GetKey(), f.GetType())
			}
			p.Fields[i] = sluice.Field{Key: f.GetKey(), Value: v}
		}
	}
	return p, nil
}

// batchToPB and batchFromPB convert whole batches.
func batchToPB(points []sluice.Point, dropped uint64, pos sluice.Position) *pb.Batch {
	b := &pb.Batch{Points: make([]*pb.Point, len(points)), Dropped: dropped, Position: pos}
	for i := range points {
		b.Points[i] = toPB(&points[i])
	}
	return b
}

// batchFromPB converts a wire batch. A point the host cannot understand
// (a field type from a newer protocol) is skipped and counted in invalid,
// with the first such error returned for the log; the rest of the batch
// stands.
func batchFromPB(in *pb.Batch) (b *sluice.Batch, invalid int, firstErr error) {
	b = &sluice.Batch{
		Points:   make([]sluice.Point, 0, len(in.GetPoints())),
		Dropped:  in.GetDropped(),
		Position: in.GetPosition(),
	}
	for _, pp := range in.GetPoints() {
		p, err := fromPB(pp)
		if err != nil {
			invalid++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		b.Points = append(b.Points, p)
	}
	return b, invalid, firstErr
}
