package influxdb

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/sluicehq/sluice"
)

// InfluxDB identifies a point by measurement, tag set and timestamp: a
// second point with all three equal overwrites the first. A measurement's
// declared Unique key can name fields that are not tags (a trade's
// trade_id), and then many distinct points share one series and one
// millisecond. identity turns those fields into a deterministic offset
// within the millisecond, so distinct points get distinct timestamps and a
// replayed point gets the one it had. See doc.go for the exact rule.

// offsetSpan is the number of identity slots inside one millisecond.
const offsetSpan = int64(time.Millisecond)

// identity is what Declare keeps for one measurement.
type identity struct {
	// keys are the Unique names other than "time", in declared order. A
	// key that is a tag on a point is part of the series already and adds
	// nothing; the others are hashed into the offset.
	keys []string
}

// newIdentity returns nil when the Unique key needs no offset: when it is
// empty, or names only "time" (and tags, which cannot be told apart from
// fields until a point arrives, so those measurements still get an
// identity and pay for a check per point).
func newIdentity(unique []string) *identity {
	var keys []string
	for _, k := range unique {
		if k != "time" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return &identity{keys: keys}
}

// timestamp returns the nanosecond timestamp to write for p, whose event
// time in nanoseconds is ns, and whether an offset was applied.
func (id *identity) timestamp(p *sluice.Point, ns int64) (int64, bool) {
	off, ok := id.offset(p)
	if !ok {
		return ns, false
	}
	ms := ns - mod(ns, offsetSpan)
	// The smallest and largest milliseconds would overflow InfluxDB's
	// range with an offset; keep the event time there rather than wrap.
	if ms > math.MaxInt64-offsetSpan || ms < math.MinInt64+offsetSpan {
		return ns, false
	}
	return ms + off, true
}

// offset computes the sub-millisecond identity offset in [0, 1e6), or
// false when no key is a field of p (every key is a tag, so the series
// already tells points apart, or is missing, so there is nothing to tell
// them apart by).
func (id *identity) offset(p *sluice.Point) (int64, bool) {
	// Fast path, the common case: one non-tag key holding an integer
	// (a trade id). Sequential ids stay distinct for up to a million
	// points per series per millisecond.
	var (
		n     int   // keys that are not tags
		last  int64 // the integer offset when n == 1 and it has one
		isInt bool
	)
	for _, k := range id.keys {
		if _, tag := p.Tag(k); tag {
			continue
		}
		v, present := p.Field(k)
		if !present {
			continue
		}
		n++
		last, isInt = intOffset(v, present)
	}
	switch {
	case n == 0:
		return 0, false
	case n == 1 && isInt:
		return last, true
	}
	// Otherwise a 64-bit FNV-1a hash of the non-tag keys' values, reduced
	// into the millisecond. Distinct points collide with probability about
	// k²/2e6 for k points in one series and millisecond; replays are exact.
	h := uint64(fnvOffset)
	var scratch [8]byte
	for _, k := range id.keys {
		if _, tag := p.Tag(k); tag {
			continue
		}
		v, present := p.Field(k)
		if !present {
			h = fnvByte(h, 0)
			continue
		}
		h = fnvByte(h, byte(v.Kind()))
		switch v.Kind() {
		case sluice.KindString:
			h = fnvString(h, v.Str())
		default:
			binary.LittleEndian.PutUint64(scratch[:], numBits(v))
			h = fnvString(h, string(scratch[:]))
		}
		h = fnvByte(h, 0xff) // separator: ("ab","c") != ("a","bc")
	}
	return int64(h % uint64(offsetSpan)), true
}

// intOffset reduces an integer-valued field to [0, 1e6): ints and uints,
// floats with an integral value, and strings of decimal digits (ids that
// arrive as JSON strings).
func intOffset(v sluice.Value, present bool) (int64, bool) {
	if !present {
		return 0, false
	}
	switch v.Kind() {
	case sluice.KindInt:
		return mod(v.Int(), offsetSpan), true
	case sluice.KindUint:
		return int64(v.Uint() % uint64(offsetSpan)), true
	case sluice.KindFloat:
		f := v.Float()
		if f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
			return 0, false
		}
		return mod(int64(f), offsetSpan), true
	case sluice.KindString:
		s := v.Str()
		if len(s) == 0 {
			return 0, false
		}
		var r int64
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			r = (r*10 + int64(c-'0')) % offsetSpan
		}
		return r, true
	}
	return 0, false
}

func numBits(v sluice.Value) uint64 {
	switch v.Kind() {
	case sluice.KindFloat:
		return math.Float64bits(v.Float())
	case sluice.KindInt:
		return uint64(v.Int())
	case sluice.KindUint:
		return v.Uint()
	case sluice.KindBool:
		if v.Bool() {
			return 1
		}
	}
	return 0
}

// mod is the non-negative remainder.
func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}
