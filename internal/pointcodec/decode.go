package pointcodec

import (
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// DecodePoints decodes the points of a Batch (what AppendPoints or the
// protobuf runtime wrote), refusing what the runtime refuses: malformed
// input, invalid UTF-8 or a field type this host does not know. Events
// and discard counts are checked as the runtime checks them and left out.
// hint is the expected number of points (0 if unknown). Tags and fields
// of all points share a few allocations; string values are substrings of
// one copy of b, and names (measurement, keys) are interned per call, so
// a caller that keeps a name does not keep b.
func DecodePoints(b []byte, hint int) ([]sluice.Point, error) {
	d := newDecoder(b, hint, false)
	if err := d.batch(b); err != nil {
		return nil, err
	}
	return d.out.Points, nil
}

// Decode decodes a Batch received from a plugin as DecodePoints does,
// except that one point's trouble is not the batch's: a point or event
// that cannot be decoded (a field type this host does not know, a
// malformed message) is left out and counted in invalid, with the first
// such error. Strings with invalid UTF-8 are passed on (the host's
// normalizer checks every one and counts what fails) but leave out.Raw
// (see Batch) unset. err is for a batch whose framing is broken.
func Decode(b []byte) (out *Batch, invalid int, invalidErr, err error) {
	d := newDecoder(b, 0, true)
	if err := d.batch(b); err != nil {
		return nil, 0, nil, err
	}
	if d.invalid == 0 && !d.notRaw && d.rawEnd > 0 {
		d.out.Raw = b[:d.rawEnd:d.rawEnd]
	}
	return &d.out, d.invalid, d.invalidErr, nil
}

func newDecoder(b []byte, hint int, lenient bool) *decoder {
	d := &decoder{body: string(b), lenient: lenient}
	if hint > 0 && hint <= len(b) {
		d.out.Points = make([]sluice.Point, 0, hint)
		d.chunk = min(4*hint, slabChunk) // room for 4 tags and 4 fields a point
	}
	return d
}

type decoder struct {
	body       string // one copy of the input; string values point into it
	lenient    bool   // see Decode
	out        Batch
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

	// For Decode's out.Raw: where the last point ends, whether a field
	// other than a point has been read, and whether the points' bytes
	// cannot stand alone (another field before or among them, or a
	// string DecodePoints would refuse).
	rawEnd int
	other  bool
	notRaw bool
}

// slabChunk is the most tags (or fields) one allocation holds.
const slabChunk = 4096

// maxInterned bounds the names interned per call; past it names are
// substrings of the body like values.
const maxInterned = 256

// batch walks the top level of a Batch message into d.out.
func (d *decoder) batch(b []byte) error {
	return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, m []byte, at int) error {
		isPoint := num == batchPoints && typ == protowire.BytesType
		if !isPoint {
			d.other = true
		}
		switch {
		case isPoint:
			if d.other {
				d.notRaw = true // the points are not the batch's first bytes alone
			}
			d.rawEnd = at + len(m)
			return d.lenientErr(d.point(at, m))
		case num == batchDropped && typ == protowire.VarintType:
			d.out.Dropped = v
		case num == batchPosition && typ == protowire.BytesType:
			d.out.Position = sluice.Position(slices.Clone(m))
		case num == batchEvents && typ == protowire.BytesType:
			ev, err := d.event(m)
			if err == nil {
				d.out.Events = append(d.out.Events, ev)
			}
			return d.lenientErr(err)
		case num == batchDiscarded && typ == protowire.BytesType:
			dc, err := d.discard(m)
			if err == nil {
				d.out.Discarded = append(d.out.Discarded, dc)
			}
			return d.lenientErr(err)
		}
		return nil
	})
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
		return "", decodeErr(ErrInvalidUTF8)
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
			ev.Kind = int32(v)
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
	ev.Time, ev.Since = FromUnixNano(tns), FromUnixNano(sns)
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

func (d *decoder) str(at int, b []byte) (string, error) {
	if !utf8.Valid(b) {
		if !d.lenient {
			return "", decodeErr(ErrInvalidUTF8)
		}
		d.notRaw = true
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
	if !utf8.Valid(b) {
		if !d.lenient {
			return "", decodeErr(ErrInvalidUTF8)
		}
		d.notRaw = true
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

// walk walks one message, calling f for each field with its number, wire
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
	p.Time, p.Received = FromUnixNano(tns), FromUnixNano(rns)
	d.out.Points = append(d.out.Points, p)
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
