package sdk

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

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

// toPB converts p into the wire form, taking its messages from a. One
// slab per message type serves a whole batch, rather than one allocation
// per point, tag and field.
func toPB(p *sluice.Point, a *pbSlabs) *pb.Point {
	out := a.point()
	out.Measurement = p.Measurement
	out.TimeUnixNano = unixNano(p.Time)
	out.ReceivedUnixNano = unixNano(p.Received)
	if len(p.Tags) > 0 {
		out.Tags = a.tags.take(len(p.Tags))
		for i, t := range p.Tags {
			out.Tags[i].Key, out.Tags[i].Value = t.Key, t.Value
		}
	}
	if len(p.Fields) > 0 {
		out.Fields = a.fields.take(len(p.Fields))
		for i, f := range p.Fields {
			pf := out.Fields[i]
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
		}
	}
	return out
}

// pbSlabs hands out the messages of one batch from a few slabs sized for
// it: the pointer slices the messages hold are carved from shared slabs
// too (each with its capacity cut to its length).
type pbSlabs struct {
	points []pb.Point
	tags   ptrSlab[pb.Tag]
	fields ptrSlab[pb.Field]
}

func newPBSlabs(points []sluice.Point) *pbSlabs {
	var nt, nf int
	for i := range points {
		nt += len(points[i].Tags)
		nf += len(points[i].Fields)
	}
	return &pbSlabs{
		points: make([]pb.Point, 0, len(points)),
		tags:   newPtrSlab[pb.Tag](nt),
		fields: newPtrSlab[pb.Field](nf),
	}
}

// ptrSlab hands out runs of pointers to messages of one slab.
type ptrSlab[T any] struct {
	slab []T
	ptrs []*T
}

func newPtrSlab[T any](n int) ptrSlab[T] {
	return ptrSlab[T]{slab: make([]T, 0, n), ptrs: make([]*T, 0, n)}
}

// take returns pointers to n new messages, in a slice whose capacity is
// its length.
func (s *ptrSlab[T]) take(n int) []*T {
	vals, ptrs := carve(&s.slab, n), carve(&s.ptrs, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return ptrs
}

// carve returns n new elements of *slab, in a slice whose capacity is its
// length; a new slab is started when the current one is short.
func carve[T any](slab *[]T, n int) []T {
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, n)
	}
	from := len(*slab)
	*slab = (*slab)[:from+n]
	return (*slab)[from : from+n : from+n]
}

func (a *pbSlabs) point() *pb.Point {
	if len(a.points) == cap(a.points) {
		return &pb.Point{}
	}
	a.points = a.points[:len(a.points)+1]
	return &a.points[len(a.points)-1]
}

// fromPB converts a wire point, taking its tags and fields from a. A
// field of unknown type is an error: the plugin speaks a protocol this
// host does not know.
func fromPB(in *pb.Point, a *slabs) (sluice.Point, error) {
	p := sluice.Point{
		Measurement: in.GetMeasurement(),
		Time:        fromUnixNano(in.GetTimeUnixNano()),
		Received:    fromUnixNano(in.GetReceivedUnixNano()),
	}
	if n := len(in.GetTags()); n > 0 {
		p.Tags = a.tags(n)
		for i, t := range in.GetTags() {
			p.Tags[i] = sluice.Tag{Key: t.GetKey(), Value: t.GetValue()}
		}
	}
	if n := len(in.GetFields()); n > 0 {
		p.Fields = a.fields(n)
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

// slabs hands out the tags and fields of one batch's points from two
// slabs sized for it. Each point's slice has its capacity cut to its
// length, so appending to one point's tags never touches another's.
type slabs struct {
	tagSlab   []sluice.Tag
	fieldSlab []sluice.Field
}

func newSlabs(in []*pb.Point) *slabs {
	var nt, nf int
	for _, p := range in {
		nt += len(p.GetTags())
		nf += len(p.GetFields())
	}
	return &slabs{tagSlab: make([]sluice.Tag, 0, nt), fieldSlab: make([]sluice.Field, 0, nf)}
}

func (a *slabs) tags(n int) []sluice.Tag { return carve(&a.tagSlab, n) }

func (a *slabs) fields(n int) []sluice.Field { return carve(&a.fieldSlab, n) }

// batchToPB and batchFromPB convert whole batches.
func batchToPB(points []sluice.Point, dropped uint64, pos sluice.Position) *pb.Batch {
	b := &pb.Batch{Points: make([]*pb.Point, len(points)), Dropped: dropped, Position: pos}
	a := newPBSlabs(points)
	for i := range points {
		b.Points[i] = toPB(&points[i], a)
	}
	return b
}

// outToPB converts everything a plugin sends in one batch.
func outToPB(b *outBatch) *pb.Batch {
	out := batchToPB(b.points, b.dropped, b.pos)
	for i := range b.events {
		out.Events = append(out.Events, eventToPB(&b.events[i]))
	}
	for _, d := range b.discarded {
		out.Discarded = append(out.Discarded, &pb.Discarded{Reason: d.Reason, Count: d.Count})
	}
	return out
}

func eventToPB(ev *Event) *pb.Event {
	return &pb.Event{
		Kind:          wireKind(ev.Kind),
		TimeUnixNano:  unixNano(ev.Time),
		Symbol:        ev.Symbol,
		Stream:        ev.Stream,
		Message:       ev.Message,
		Count:         ev.Count,
		FromId:        ev.FromID,
		ToId:          ev.ToID,
		SinceUnixNano: unixNano(ev.Since),
	}
}

func eventFromPB(in *pb.Event) Event {
	return Event{
		Kind:    kindOf(in.GetKind()),
		Time:    fromUnixNano(in.GetTimeUnixNano()),
		Symbol:  in.GetSymbol(),
		Stream:  in.GetStream(),
		Message: in.GetMessage(),
		Count:   in.GetCount(),
		FromID:  in.GetFromId(),
		ToID:    in.GetToId(),
		Since:   fromUnixNano(in.GetSinceUnixNano()),
	}
}

// batchFromPB converts a wire batch. A point the host cannot understand
// (a field type from a newer protocol) is skipped and counted in invalid,
// with the first such error returned for the log; the rest of the batch
// stands.
func batchFromPB(in *pb.Batch) (b *Batch, invalid int, firstErr error) {
	b = &Batch{Batch: sluice.Batch{
		Points:   make([]sluice.Point, 0, len(in.GetPoints())),
		Dropped:  in.GetDropped(),
		Position: in.GetPosition(),
	}}
	for _, e := range in.GetEvents() {
		b.Events = append(b.Events, eventFromPB(e))
	}
	for _, d := range in.GetDiscarded() {
		b.Discarded = append(b.Discarded, Discard{Reason: d.GetReason(), Count: d.GetCount()})
	}
	a := newSlabs(in.GetPoints())
	for _, pp := range in.GetPoints() {
		p, err := fromPB(pp, a)
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

// Field numbers of the source.v1 messages, for the direct codec below.
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

// errInvalidUTF8 matches what the protobuf runtime refuses: proto3
// strings must be valid UTF-8.
var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// AppendPoints appends exactly the bytes MarshalPoints would (a source.v1
// Batch holding only points), writing the wire format directly instead of
// building a protobuf message per point, tag and field first. The agent's
// disk buffer encodes every batch with it.
func AppendPoints(dst []byte, points []sluice.Point) ([]byte, error) {
	for i := range points {
		if err := checkUTF8(&points[i]); err != nil {
			return dst, err
		}
	}
	return appendBatch(dst, points, 0, nil), nil
}

// appendBatch appends a source.v1 Batch, fields in number order as the
// protobuf runtime writes them. Strings are not checked for UTF-8: a
// plugin's point with invalid text crosses the boundary and the host's
// normalizer rejects and counts it, where the protobuf runtime would fail
// the whole stream.
func appendBatch(dst []byte, points []sluice.Point, dropped uint64, pos sluice.Position) []byte {
	dst = slices.Grow(dst, batchWireSize(points, dropped, pos)) // grows at most once
	for i := range points {
		p := &points[i]
		dst = protowire.AppendTag(dst, batchPoints, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(pointSize(p)))
		dst = appendPoint(dst, p)
	}
	dst = appendVarint(dst, batchDropped, dropped)
	if len(pos) > 0 {
		dst = protowire.AppendTag(dst, batchPosition, protowire.BytesType)
		dst = protowire.AppendBytes(dst, pos)
	}
	return dst
}

// batchWireSize is the encoded size of a Batch, in bytes.
func batchWireSize(points []sluice.Point, dropped uint64, pos sluice.Position) int {
	n := sizeVarint(batchDropped, dropped)
	if len(pos) > 0 {
		n += protowire.SizeTag(batchPosition) + protowire.SizeBytes(len(pos))
	}
	for i := range points {
		n += protowire.SizeTag(batchPoints) + protowire.SizeBytes(pointSize(&points[i]))
	}
	return n
}

// appendExtras appends a Batch's events and discard counts: fields 4
// and 5, which the runtime writes after points, dropped and position, so
// that appendBatch followed by appendExtras is the whole Batch.
func appendExtras(dst []byte, events []Event, discarded []Discard) []byte {
	for i := range events {
		ev := &events[i]
		dst = protowire.AppendTag(dst, batchEvents, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(eventSize(ev)))
		dst = appendVarint(dst, eventKind, uint64(wireKind(ev.Kind)))
		dst = appendVarint(dst, eventTime, uint64(unixNano(ev.Time)))
		dst = appendString(dst, eventSymbol, ev.Symbol)
		dst = appendString(dst, eventStream, ev.Stream)
		dst = appendString(dst, eventMessage, ev.Message)
		dst = appendVarint(dst, eventCount, uint64(ev.Count))
		dst = appendVarint(dst, eventFromID, uint64(ev.FromID))
		dst = appendVarint(dst, eventToID, uint64(ev.ToID))
		dst = appendVarint(dst, eventSince, uint64(unixNano(ev.Since)))
	}
	for i := range discarded {
		d := &discarded[i]
		dst = protowire.AppendTag(dst, batchDiscarded, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(discardSize(d)))
		dst = appendString(dst, discardReason, d.Reason)
		dst = appendVarint(dst, discardCount, d.Count)
	}
	return dst
}

// extrasWireSize is the encoded size of what appendExtras appends.
func extrasWireSize(events []Event, discarded []Discard) int {
	n := 0
	for i := range events {
		n += protowire.SizeTag(batchEvents) + protowire.SizeBytes(eventSize(&events[i]))
	}
	for i := range discarded {
		n += protowire.SizeTag(batchDiscarded) + protowire.SizeBytes(discardSize(&discarded[i]))
	}
	return n
}

func eventSize(ev *Event) int {
	return sizeVarint(eventKind, uint64(wireKind(ev.Kind))) +
		sizeVarint(eventTime, uint64(unixNano(ev.Time))) +
		sizeString(eventSymbol, ev.Symbol) +
		sizeString(eventStream, ev.Stream) +
		sizeString(eventMessage, ev.Message) +
		sizeVarint(eventCount, uint64(ev.Count)) +
		sizeVarint(eventFromID, uint64(ev.FromID)) +
		sizeVarint(eventToID, uint64(ev.ToID)) +
		sizeVarint(eventSince, uint64(unixNano(ev.Since)))
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
	n := sizeString(fieldKey, f.Key) + sizeVarint(fieldType, uint64(wireType(f.Value.Kind())))
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

func wireType(k sluice.Kind) pb.FieldType {
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
		return errInvalidUTF8
	}
	for i := range p.Tags {
		if t := &p.Tags[i]; !utf8.ValidString(t.Key) || !utf8.ValidString(t.Value) {
			return errInvalidUTF8
		}
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		if !utf8.ValidString(f.Key) || (f.Value.Kind() == sluice.KindString && !utf8.ValidString(f.Value.Str())) {
			return errInvalidUTF8
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
	n += sizeVarint(pointTime, uint64(unixNano(p.Time)))
	n += sizeVarint(pointReceived, uint64(unixNano(p.Received)))
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
		b = appendVarint(b, fieldType, uint64(wireType(f.Value.Kind())))
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
	b = appendVarint(b, pointTime, uint64(unixNano(p.Time)))
	return appendVarint(b, pointReceived, uint64(unixNano(p.Received)))
}

// DecodePoints decodes what MarshalPoints or AppendPoints wrote, as
// UnmarshalPoints does (the same points, the same errors for malformed
// input, invalid UTF-8 or a field type this host does not know), without
// building protobuf messages. hint is the expected number of points (0 if
// unknown). Tags and fields of all points share two allocations; string
// values are substrings of one copy of b, and names (measurement, keys)
// are interned per call, so a caller that keeps a name does not keep b.
func DecodePoints(b []byte, hint int) ([]sluice.Point, error) {
	d := newDecoder(b, hint, false)
	if _, err := d.batch(b); err != nil {
		return nil, err
	}
	return d.points, nil
}

// decodeBatch decodes a Batch received from a plugin as DecodePoints
// does, except that one point's trouble is not the batch's: a point that
// cannot be decoded (a field type this host does not know, a malformed
// message) is left out and counted in invalid, with the first such error.
// Strings are not checked for UTF-8 here; the host's normalizer checks
// every one and counts what fails. err is for a batch whose framing is
// broken.
func decodeBatch(b []byte) (out *Batch, invalid int, invalidErr, err error) {
	d := newDecoder(b, 0, true)
	out = &Batch{}
	if out.Dropped, err = d.batch(b); err != nil {
		return nil, 0, nil, err
	}
	out.Points, out.Position = d.points, d.position
	out.Events, out.Discarded = d.events, d.discarded
	return out, d.invalid, d.invalidErr, nil
}

func newDecoder(b []byte, hint int, lenient bool) *decoder {
	d := &decoder{body: string(b), lenient: lenient}
	if hint > 0 && hint <= len(b) {
		d.points = make([]sluice.Point, 0, hint)
		d.chunk = min(4*hint, slabChunk) // room for 4 tags and 4 fields a point
	}
	return d
}

// batch walks the top level of a Batch message, decoding its points into
// d.points and its position into d.position, and returns its dropped count.
func (d *decoder) batch(b []byte) (dropped uint64, err error) {
	err = walk(b, func(num protowire.Number, typ protowire.Type, v uint64, m []byte, at int) error {
		switch {
		case num == batchPoints && typ == protowire.BytesType:
			return d.lenientErr(d.point(at, m))
		case num == batchDropped && typ == protowire.VarintType:
			dropped = v
		case num == batchPosition && typ == protowire.BytesType:
			d.position = sluice.Position(slices.Clone(m))
		case num == batchEvents && typ == protowire.BytesType:
			ev, err := d.event(m)
			if err == nil {
				d.events = append(d.events, ev)
			}
			return d.lenientErr(err)
		case num == batchDiscarded && typ == protowire.BytesType:
			dc, err := d.discard(m)
			if err == nil {
				d.discarded = append(d.discarded, dc)
			}
			return d.lenientErr(err)
		}
		return nil
	})
	return dropped, err
}

// lenientErr counts err as one invalid item of a lenient decode, and
// returns it otherwise.
func (d *decoder) lenientErr(err error) error {
	if err == nil || !d.lenient {
		return err
	}
	d.invalid++
	if d.invalidErr == nil {
		d.invalidErr = err
	}
	return nil
}

// text copies a string of an event: events are few, and what the host
// keeps of them (a stale stream's message) must not hold the batch.
func (d *decoder) text(b []byte) (string, error) {
	if !d.lenient && !utf8.Valid(b) {
		return "", decodeErr(errInvalidUTF8)
	}
	return string(b), nil
}

// event decodes one Event message.
func (d *decoder) event(m []byte) (Event, error) {
	var ev Event
	var tns, sns int64
	err := walk(m, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte, _ int) error {
		var err error
		switch {
		case num == eventKind && typ == protowire.VarintType:
			ev.Kind = kindOf(pb.EventKind(int32(v)))
		case num == eventTime && typ == protowire.VarintType:
			tns = int64(v)
		case num == eventSymbol && typ == protowire.BytesType:
			ev.Symbol, err = d.text(bs)
		case num == eventStream && typ == protowire.BytesType:
			ev.Stream, err = d.text(bs)
		case num == eventMessage && typ == protowire.BytesType:
			ev.Message, err = d.text(bs)
		case num == eventCount && typ == protowire.VarintType:
			ev.Count = int64(v)
		case num == eventFromID && typ == protowire.VarintType:
			ev.FromID = int64(v)
		case num == eventToID && typ == protowire.VarintType:
			ev.ToID = int64(v)
		case num == eventSince && typ == protowire.VarintType:
			sns = int64(v)
		}
		return err
	})
	if ev.Kind == "" {
		ev.Kind = kindOf(0)
	}
	ev.Time, ev.Since = fromUnixNano(tns), fromUnixNano(sns)
	return ev, err
}

// discard decodes one Discarded message.
func (d *decoder) discard(m []byte) (Discard, error) {
	var dc Discard
	err := walk(m, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte, _ int) error {
		var err error
		switch {
		case num == discardReason && typ == protowire.BytesType:
			dc.Reason, err = d.text(bs)
		case num == discardCount && typ == protowire.VarintType:
			dc.Count = v
		}
		return err
	})
	return dc, err
}

// consumeTag is protowire.ConsumeTag that also refuses field numbers past
// protowire.MaxValidNumber, as the protobuf runtime does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire's code for an invalid field number
	}
	return num, typ, n
}

func decodeErr(err error) error { return fmt.Errorf("decode points: %w", err) }

type decoder struct {
	body    string // one copy of the input; string values point into it
	lenient bool   // see decodeBatch
	points  []sluice.Point
	// What a decode found besides points (events and discards are
	// checked, and left out of DecodePoints' result).
	position   sluice.Position
	events     []Event
	discarded  []Discard
	invalid    int
	invalidErr error

	tags   []sluice.Tag   // the chunk tags are carved from
	fields []sluice.Field // the chunk fields are carved from
	names  map[string]string
	chunk  int // size of the first chunk
	// recent[i] is the i-th name of the last point decoded (see name),
	// slot the number of names read in the current one.
	recent [16]string
	slot   int
}

// slabChunk is the most tags (or fields) one allocation holds.
const slabChunk = 4096

// maxInterned bounds the names interned per call; past it names are
// substrings of the body like values.
const maxInterned = 256

func (d *decoder) str(at int, b []byte) (string, error) {
	if !d.lenient && !utf8.Valid(b) {
		return "", decodeErr(errInvalidUTF8)
	}
	return d.body[at : at+len(b)], nil
}

// name returns the name b holds. Points of a batch mostly share their
// shape, so the name at the same place in the previous point is tried
// first: a comparison instead of a map lookup.
func (d *decoder) name(b []byte) (string, error) {
	i := d.slot
	d.slot++
	if i < len(d.recent) && d.recent[i] == string(b) {
		return d.recent[i], nil
	}
	s, err := d.intern(b)
	if err == nil && i < len(d.recent) {
		d.recent[i] = s
	}
	return s, err
}

func (d *decoder) intern(b []byte) (string, error) {
	if s, ok := d.names[string(b)]; ok {
		return s, nil
	}
	if !d.lenient && !utf8.Valid(b) {
		return "", decodeErr(errInvalidUTF8)
	}
	s := string(b)
	if d.names == nil {
		d.names = make(map[string]string, 16)
	}
	if len(d.names) < maxInterned {
		d.names[s] = s
	}
	return s, nil
}

// fields walks one message, calling f for each field with its number, wire
// type, the varint or fixed value, the bytes of a length-delimited field
// and their offset in m. Fields of an unexpected wire type are skipped, as
// the protobuf runtime treats them as unknown.
func walk(m []byte, f func(num protowire.Number, typ protowire.Type, v uint64, bs []byte, at int) error) error {
	off := 0
	for off < len(m) {
		num, typ, n := consumeTag(m[off:])
		if n < 0 {
			return decodeErr(protowire.ParseError(n))
		}
		off += n
		var (
			v  uint64
			bs []byte
			at = off
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(m[off:])
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(m[off:])
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(m[off:])
			if n >= 0 {
				at = off + n - len(bs)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, m[off:])
		}
		if n < 0 {
			return decodeErr(protowire.ParseError(n))
		}
		off += n
		if err := f(num, typ, v, bs, at); err != nil {
			return err
		}
	}
	return nil
}

// point decodes one Point message m found at offset base of the body.
func (d *decoder) point(base int, m []byte) error {
	var (
		p        sluice.Point
		tns, rns int64
		// Tags and fields are carved from the current chunks; a new
		// chunk is started when one does not fit.
		tag0, field0 = len(d.tags), len(d.fields)
	)
	d.slot = 0
	err := walk(m, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte, at int) error {
		var err error
		switch {
		case num == pointMeasurement && typ == protowire.BytesType:
			p.Measurement, err = d.name(bs)
		case num == pointTags && typ == protowire.BytesType:
			var t sluice.Tag
			err = walk(bs, func(num protowire.Number, typ protowire.Type, _ uint64, s []byte, sat int) error {
				var err error
				switch {
				case num == tagKey && typ == protowire.BytesType:
					t.Key, err = d.name(s)
				case num == tagValue && typ == protowire.BytesType:
					t.Value, err = d.str(base+at+sat, s)
				}
				return err
			})
			if err == nil {
				tag0 = d.pushTag(tag0, t)
			}
		case num == pointFields && typ == protowire.BytesType:
			var f sluice.Field
			f, err = d.field(base+at, bs, p.Measurement)
			if err == nil {
				field0 = d.pushField(field0, f)
			}
		case num == pointTime && typ == protowire.VarintType:
			tns = int64(v)
		case num == pointReceived && typ == protowire.VarintType:
			rns = int64(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	if n := len(d.tags) - tag0; n > 0 {
		p.Tags = d.tags[tag0:len(d.tags):len(d.tags)]
	}
	if n := len(d.fields) - field0; n > 0 {
		p.Fields = d.fields[field0:len(d.fields):len(d.fields)]
	}
	p.Time, p.Received = fromUnixNano(tns), fromUnixNano(rns)
	d.points = append(d.points, p)
	return nil
}

// pushTag appends t to the point whose tags start at from in d.tags,
// moving them to a new chunk when the current one is full. It returns
// where the point's tags now start.
func (d *decoder) pushTag(from int, t sluice.Tag) int {
	if len(d.tags) == cap(d.tags) {
		have := d.tags[from:]
		next := make([]sluice.Tag, len(have), d.chunkSize(cap(d.tags), len(have)))
		copy(next, have)
		d.tags, from = next, 0
	}
	d.tags = append(d.tags, t)
	return from
}

// chunkSize is the size of the next chunk after one of size prev, which
// must take the have elements of the point being decoded: doubling from
// the hint's size (or 64), up to slabChunk.
func (d *decoder) chunkSize(prev, have int) int {
	n := d.chunk
	if n == 0 {
		n = 64
	}
	if prev > 0 {
		n = min(2*prev, slabChunk)
	}
	return max(n, 2*have+1)
}

func (d *decoder) pushField(from int, f sluice.Field) int {
	if len(d.fields) == cap(d.fields) {
		have := d.fields[from:]
		next := make([]sluice.Field, len(have), d.chunkSize(cap(d.fields), len(have)))
		copy(next, have)
		d.fields, from = next, 0
	}
	d.fields = append(d.fields, f)
	return from
}

// field decodes one Field message found at offset base of the body.
func (d *decoder) field(base int, m []byte, measurement string) (sluice.Field, error) {
	var (
		key            string
		typ            pb.FieldType
		fl, in, un, bo uint64
		str            string
	)
	err := walk(m, func(num protowire.Number, wt protowire.Type, v uint64, bs []byte, at int) error {
		var err error
		switch {
		case num == fieldKey && wt == protowire.BytesType:
			key, err = d.name(bs)
		case num == fieldType && wt == protowire.VarintType:
			typ = pb.FieldType(int32(v))
		case num == fieldFloat && wt == protowire.Fixed64Type:
			fl = v
		case num == fieldInt && wt == protowire.VarintType:
			in = v
		case num == fieldUint && wt == protowire.VarintType:
			un = v
		case num == fieldString && wt == protowire.BytesType:
			str, err = d.str(base+at, bs)
		case num == fieldBool && wt == protowire.VarintType:
			bo = v
		}
		return err
	})
	if err != nil {
		return sluice.Field{}, err
	}
	var v sluice.Value
	switch typ {
	case pb.FieldType_FIELD_TYPE_FLOAT:
		v = sluice.Float(math.Float64frombits(fl))
	case pb.FieldType_FIELD_TYPE_INT:
		v = sluice.Int(int64(in))
	case pb.FieldType_FIELD_TYPE_UINT:
		v = sluice.Uint(un)
	case pb.FieldType_FIELD_TYPE_STRING:
		v = sluice.String(str)
	case pb.FieldType_FIELD_TYPE_BOOL:
		v = sluice.Bool(bo != 0)
	default:
		err := fmt.Errorf("measurement %q field %q: unknown field type %d", measurement, key, typ)
		if d.lenient {
			return sluice.Field{}, err
		}
		return sluice.Field{}, fmt.Errorf("decode points: 1 undecodable: %w", err)
	}
	return sluice.Field{Key: key, Value: v}, nil
}
