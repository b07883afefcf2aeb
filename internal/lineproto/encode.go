package lineproto

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// The encoder appends to a caller's buffer and never allocates on the
// success path. It writes only what InfluxDB 1.8, 2.x and 3.x, and the
// reference decoder (line-protocol/v2), all read back to the same point;
// anything else is refused with a reason, so that a point is either
// stored exactly or counted as rejected, never stored altered.

// Why a point cannot be encoded. Callers branch on none of these; they are
// the Sample text the pipeline logs.
var (
	errNoMeasurement = errors.New("empty measurement name")
	errCommentName   = errors.New("measurement name starts with '#', which line protocol reads as a comment")
	errNoFields      = errors.New("point has no fields")
	errEmptyKey      = errors.New("empty tag or field key")
	errControl       = errors.New("control character in a name (newline, tab, ...), which line protocol cannot carry")
	errBackslash     = errors.New(`name has a backslash before '\', ',', ' ', '=' or '"', or at its end, which InfluxDB cannot read back exactly`)
	errUTF8          = errors.New("invalid UTF-8")
	errFloat         = errors.New("NaN or infinite float, which InfluxDB cannot store")
	errUintRange     = errors.New("uint value above 9223372036854775807, which InfluxDB 1.8 cannot store (uints are written as integers)")
	errDuplicateTag  = errors.New("duplicate tag key")
	errInvalidKind   = errors.New("field has no value")
)

// ErrTimeRange is a time outside what line protocol's int64 nanoseconds
// hold (see Nanos).
var ErrTimeRange = errors.New("time outside the range InfluxDB can store (1677-09-21 to 2262-04-11)")

// Uints says how a uint field is written.
type Uints uint8

const (
	// UintsAsInts writes a uint as an integer ("123i"), because InfluxDB
	// 1.8 refuses the "u" suffix (its uint support is a compile-time
	// switch left off in releases): one field type on 1.8, 2.x and 3.x
	// alike. A uint above math.MaxInt64 is refused.
	UintsAsInts Uints = iota
	// UintsTagged writes "123u", which line-protocol/v2, Telegraf and
	// InfluxDB 2.x and 3.x read back as an unsigned integer, so that the
	// kind survives a round trip.
	UintsTagged
)

// Byte classes for names (measurement, tag keys and values, field keys).
const (
	cPlain     = iota
	cEscape    // written with a backslash before it
	cControl   // cannot be written at all
	cBackslash // literal, but only where it cannot pair with the next byte
	cHigh      // part of a multi-byte UTF-8 sequence: validate once
)

var measurementClass, keyClass = func() (m, k [256]uint8) {
	for i := range 256 {
		c := uint8(cPlain)
		switch {
		case i < 0x20 || i == 0x7f:
			c = cControl
		case i == '\\':
			c = cBackslash
		case i >= 0x80:
			c = cHigh
		}
		m[i], k[i] = c, c
	}
	m[','], m[' '] = cEscape, cEscape
	k[','], k[' '], k['='] = cEscape, cEscape, cEscape
	return m, k
}()

// appendName appends s escaped by class table tab.
func appendName(dst []byte, s string, tab *[256]uint8) ([]byte, error) {
	if len(s) == 0 {
		return dst, errEmptyKey
	}
	var escape, high bool
	for i := 0; i < len(s); i++ {
		c := tab[s[i]]
		if c == cPlain {
			continue
		}
		switch c {
		case cEscape:
			escape = true
		case cControl:
			return dst, errControl
		case cBackslash:
			// InfluxDB 1.x's scanner pairs a backslash with whatever
			// follows it, while its unescaper and line-protocol/v2 only
			// pair it with an escapable byte; the two agree exactly when
			// a backslash is followed by an ordinary byte.
			if i+1 == len(s) {
				return dst, errBackslash
			}
			switch s[i+1] {
			case '\\', ',', ' ', '=', '"':
				return dst, errBackslash
			}
		case cHigh:
			high = true
		}
	}
	if high && !utf8.ValidString(s) {
		return dst, errUTF8
	}
	if !escape {
		return append(dst, s...), nil
	}
	for i := 0; i < len(s); i++ {
		if tab[s[i]] == cEscape {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst, nil
}

// appendString appends a quoted string field value. Only '"' and '\' are
// escaped; newlines and every other byte are written as they are, which
// all InfluxDB versions read back unchanged inside quotes.
func appendString(dst []byte, s string) ([]byte, error) {
	dst = append(dst, '"')
	start := 0
	high := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', c)
			start = i + 1
		case c >= 0x80:
			high = true
		}
	}
	if high && !utf8.ValidString(s) {
		return dst, errUTF8
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), nil
}

// appendValue appends one field value in line protocol.
func appendValue(dst []byte, v sluice.Value, uints Uints) ([]byte, error) {
	switch v.Kind() {
	case sluice.KindFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, errFloat
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case sluice.KindInt:
		return append(strconv.AppendInt(dst, v.Int(), 10), 'i'), nil
	case sluice.KindUint:
		u := v.Uint()
		if uints == UintsTagged {
			return append(strconv.AppendUint(dst, u, 10), 'u'), nil
		}
		if u > math.MaxInt64 {
			return dst, errUintRange
		}
		return append(strconv.AppendUint(dst, u, 10), 'i'), nil
	case sluice.KindString:
		return appendString(dst, v.Str())
	case sluice.KindBool:
		if v.Bool() {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	}
	return dst, errInvalidKind
}

// InfluxDB's timestamp range: int64 nanoseconds, less one at each end,
// which it reserves.
var (
	minTime = time.Unix(0, math.MinInt64+2)
	maxTime = time.Unix(0, math.MaxInt64-1)
)

// Nanos returns t as InfluxDB nanoseconds, or false outside its range.
func Nanos(t time.Time) (int64, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// AppendPoint appends p as one line (with its trailing newline), with ts
// as its timestamp in the write's precision and uints written as uints
// says. On error dst is returned unchanged in length, so a rejected point
// leaves no trace in the batch. Tags with an empty value are left out:
// InfluxDB does not store them, and a missing tag and an empty one read
// back the same.
func AppendPoint(dst []byte, p *sluice.Point, ts int64, uints Uints) ([]byte, error) {
	n := len(dst)
	out, err := appendLine(dst, p, ts, uints)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func appendLine(dst []byte, p *sluice.Point, ts int64, uints Uints) ([]byte, error) {
	if len(p.Measurement) == 0 {
		return dst, errNoMeasurement
	}
	if p.Measurement[0] == '#' {
		return dst, errCommentName
	}
	if len(p.Fields) == 0 {
		return dst, errNoFields
	}
	var err error
	if dst, err = appendName(dst, p.Measurement, &measurementClass); err != nil {
		return dst, fmt.Errorf("measurement: %w", err)
	}
	for i := range p.Tags {
		t := &p.Tags[i]
		if i > 0 {
			// Tags come sorted (sluice.Point's contract), so a
			// duplicate is next to its twin; InfluxDB itself catches
			// the rest.
			if p.Tags[i-1].Key == t.Key {
				return dst, fmt.Errorf("tag %q: %w", t.Key, errDuplicateTag)
			}
		}
		if t.Value == "" {
			continue
		}
		dst = append(dst, ',')
		if dst, err = appendName(dst, t.Key, &keyClass); err != nil {
			return dst, fmt.Errorf("tag key %q: %w", t.Key, err)
		}
		dst = append(dst, '=')
		if dst, err = appendName(dst, t.Value, &keyClass); err != nil {
			return dst, fmt.Errorf("tag %q value: %w", t.Key, err)
		}
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		if i == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		if dst, err = appendName(dst, f.Key, &keyClass); err != nil {
			return dst, fmt.Errorf("field key %q: %w", f.Key, err)
		}
		dst = append(dst, '=')
		if dst, err = appendValue(dst, f.Value, uints); err != nil {
			return dst, fmt.Errorf("field %q: %w", f.Key, err)
		}
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n'), nil
}
