package pointcodec

import (
	"errors"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// Batch is a source.v1 Batch: points, the plugin's drop count, its
// position, and what it reported besides points.
type Batch struct {
	Points    []sluice.Point
	Dropped   uint64
	Position  sluice.Position
	Events    []Event
	Discarded []Discard

	// Raw is set by Decode only: the bytes of Points as they came, when
	// DecodePoints reads exactly Points from them (they are the batch's
	// first bytes, with nothing but points among them, every point
	// decoded and every string valid UTF-8); nil otherwise. A host that
	// keeps the points unchanged can store these instead of encoding the
	// points again.
	Raw []byte
}

// Event is a source.v1 Event. Kind is the wire enum's value; naming it is
// the SDK's business.
type Event struct {
	Kind    int32
	Time    time.Time
	Symbol  string
	Stream  string
	Message string
	Count   int64
	FromID  int64
	ToID    int64
	Since   time.Time
}

// Discard is a source.v1 Discarded: a count of messages discarded for one
// reason.
type Discard struct {
	Reason string
	Count  uint64
}

// Field numbers of the source.v1 messages.
const (
	batchPoints    = 1
	batchDropped   = 2
	batchPosition  = 3
	batchEvents    = 4
	batchDiscarded = 5

	eventKind    = 1
	eventTime    = 2
	eventSymbol  = 3
	eventStream  = 4
	eventMessage = 5
	eventCount   = 6
	eventFromID  = 7
	eventToID    = 8
	eventSince   = 9

	discardReason = 1
	discardCount  = 2

	pointMeasurement = 1
	pointTags        = 2
	pointFields      = 3
	pointTime        = 4
	pointReceived    = 5

	tagKey   = 1
	tagValue = 2

	fieldKey    = 1
	fieldType   = 2
	fieldFloat  = 3
	fieldInt    = 4
	fieldUint   = 5
	fieldString = 6
	fieldBool   = 7
)

// ErrInvalidUTF8 matches what the protobuf runtime refuses: proto3
// strings must be valid UTF-8.
var ErrInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// UnixNano is t on the wire: the zero time is 0, so that "no time"
// survives the trip.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano reads what UnixNano wrote; times come back in UTC.
func FromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// AppendPoints appends a Batch holding only points, exactly as the
// protobuf runtime would encode it, refusing what the runtime refuses
// (invalid UTF-8). The disk buffer stores each entry's points so.
func AppendPoints(dst []byte, points []sluice.Point) ([]byte, error) {
	for i := range points {
		if err := checkUTF8(&points[i]); err != nil {
			return dst, err
		}
	}
	return Append(dst, &Batch{Points: points}), nil
}

// Append appends b, fields in number order as the protobuf runtime writes
// them, growing dst at most once. Strings are not checked for UTF-8: a
// plugin's point with invalid text crosses the boundary and the host's
// normalizer rejects and counts it, where the protobuf runtime would fail
// the whole stream.
func Append(dst []byte, b *Batch) []byte {
	dst = slices.Grow(dst, Size(b))
	for i := range b.Points {
		p := &b.Points[i]
		dst = protowire.AppendTag(dst, batchPoints, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(pointSize(p)))
		dst = appendPoint(dst, p)
	}
	dst = appendVarint(dst, batchDropped, b.Dropped)
	if len(b.Position) > 0 {
		dst = protowire.AppendTag(dst, batchPosition, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b.Position)
	}
	for i := range b.Events {
		ev := &b.Events[i]
		dst = protowire.AppendTag(dst, batchEvents, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(eventSize(ev)))
		dst = appendVarint(dst, eventKind, uint64(ev.Kind))
		dst = appendVarint(dst, eventTime, uint64(UnixNano(ev.Time)))
		dst = appendString(dst, eventSymbol, ev.Symbol)
		dst = appendString(dst, eventStream, ev.Stream)
		dst = appendString(dst, eventMessage, ev.Message)
		dst = appendVarint(dst, eventCount, uint64(ev.Count))
		dst = appendVarint(dst, eventFromID, uint64(ev.FromID))
		dst = appendVarint(dst, eventToID, uint64(ev.ToID))
		dst = appendVarint(dst, eventSince, uint64(UnixNano(ev.Since)))
	}
	for i := range b.Discarded {
		d := &b.Discarded[i]
		dst = protowire.AppendTag(dst, batchDiscarded, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(discardSize(d)))
		dst = appendString(dst, discardReason, d.Reason)
		dst = appendVarint(dst, discardCount, d.Count)
	}
	return dst
}

// Size is the encoded size of b, in bytes.
func Size(b *Batch) int {
	n := sizeVarint(batchDropped, b.Dropped)
	if len(b.Position) > 0 {
		n += protowire.SizeTag(batchPosition) + protowire.SizeBytes(len(b.Position))
	}
	for i := range b.Points {
		n += protowire.SizeTag(batchPoints) + protowire.SizeBytes(pointSize(&b.Points[i]))
	}
	for i := range b.Events {
		n += protowire.SizeTag(batchEvents) + protowire.SizeBytes(eventSize(&b.Events[i]))
	}
	for i := range b.Discarded {
		n += protowire.SizeTag(batchDiscarded) + protowire.SizeBytes(discardSize(&b.Discarded[i]))
	}
	return n
}

func eventSize(ev *Event) int {
	return sizeVarint(eventKind, uint64(ev.Kind)) +
		sizeVarint(eventTime, uint64(UnixNano(ev.Time))) +
		sizeString(eventSymbol, ev.Symbol) +
		sizeString(eventStream, ev.Stream) +
		sizeString(eventMessage, ev.Message) +
		sizeVarint(eventCount, uint64(ev.Count)) +
		sizeVarint(eventFromID, uint64(ev.FromID)) +
		sizeVarint(eventToID, uint64(ev.ToID)) +
		sizeVarint(eventSince, uint64(UnixNano(ev.Since)))
}

func discardSize(d *Discard) int {
	return sizeString(discardReason, d.Reason) + sizeVarint(discardCount, d.Count)
}

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func tagSize(t *sluice.Tag) int { return sizeString(tagKey, t.Key) + sizeString(tagValue, t.Value) }

func fieldSize(f *sluice.Field) int {
	n := sizeString(fieldKey, f.Key) + sizeVarint(fieldType, uint64(WireType(f.Value.Kind())))
	switch v := f.Value; v.Kind() {
	case sluice.KindFloat:
		if v.Uint() != 0 { // the bits: -0.0 is sent, +0.0 is not
			n += protowire.SizeTag(fieldFloat) + protowire.SizeFixed64()
		}
	case sluice.KindInt:
		n += sizeVarint(fieldInt, v.Uint())
	case sluice.KindUint:
		n += sizeVarint(fieldUint, v.Uint())
	case sluice.KindString:
		n += sizeString(fieldString, v.Str())
	case sluice.KindBool:
		n += sizeVarint(fieldBool, v.Uint())
	}
	return n
}

// WireType is the source.v1 FieldType of a value of kind k.
func WireType(k sluice.Kind) pb.FieldType {
	switch k {
	case sluice.KindFloat:
		return pb.FieldType_FIELD_TYPE_FLOAT
	case sluice.KindInt:
		return pb.FieldType_FIELD_TYPE_INT
	case sluice.KindUint:
		return pb.FieldType_FIELD_TYPE_UINT
	case sluice.KindString:
		return pb.FieldType_FIELD_TYPE_STRING
	case sluice.KindBool:
		return pb.FieldType_FIELD_TYPE_BOOL
	}
	return pb.FieldType_FIELD_TYPE_UNSPECIFIED
}

// checkUTF8 refuses what the protobuf runtime refuses to marshal.
func checkUTF8(p *sluice.Point) error {
	if !utf8.ValidString(p.Measurement) {
		return ErrInvalidUTF8
	}
	for i := range p.Tags {
		if t := &p.Tags[i]; !utf8.ValidString(t.Key) || !utf8.ValidString(t.Value) {
			return ErrInvalidUTF8
		}
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		if !utf8.ValidString(f.Key) || (f.Value.Kind() == sluice.KindString && !utf8.ValidString(f.Value.Str())) {
			return ErrInvalidUTF8
		}
	}
	return nil
}

// pointSize is the encoded size of p's message.
func pointSize(p *sluice.Point) int {
	n := sizeString(pointMeasurement, p.Measurement)
	for i := range p.Tags {
		n += protowire.SizeTag(pointTags) + protowire.SizeBytes(tagSize(&p.Tags[i]))
	}
	for i := range p.Fields {
		n += protowire.SizeTag(pointFields) + protowire.SizeBytes(fieldSize(&p.Fields[i]))
	}
	n += sizeVarint(pointTime, uint64(UnixNano(p.Time)))
	n += sizeVarint(pointReceived, uint64(UnixNano(p.Received)))
	return n
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendPoint writes p's fields in field-number order, as the protobuf
// runtime does, leaving out zero values (proto3).
func appendPoint(b []byte, p *sluice.Point) []byte {
	b = appendString(b, pointMeasurement, p.Measurement)
	for i := range p.Tags {
		t := &p.Tags[i]
		b = protowire.AppendTag(b, pointTags, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(tagSize(t)))
		b = appendString(b, tagKey, t.Key)
		b = appendString(b, tagValue, t.Value)
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		b = protowire.AppendTag(b, pointFields, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(fieldSize(f)))
		b = appendString(b, fieldKey, f.Key)
		b = appendVarint(b, fieldType, uint64(WireType(f.Value.Kind())))
		switch v := f.Value; v.Kind() {
		case sluice.KindFloat:
			if v.Uint() != 0 {
				b = protowire.AppendTag(b, fieldFloat, protowire.Fixed64Type)
				b = protowire.AppendFixed64(b, v.Uint())
			}
		case sluice.KindInt:
			b = appendVarint(b, fieldInt, v.Uint())
		case sluice.KindUint:
			b = appendVarint(b, fieldUint, v.Uint())
		case sluice.KindString:
			b = appendString(b, fieldString, v.Str())
		case sluice.KindBool:
			b = appendVarint(b, fieldBool, v.Uint())
		}
	}
	b = appendVarint(b, pointTime, uint64(UnixNano(p.Time)))
	return appendVarint(b, pointReceived, uint64(UnixNano(p.Received)))
}
