package live

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// appendPayload appends p as the JSON object its channel carries:
//
//	{"measurement":"trades",
//	 "tags":{"exchange":"binance","market":"spot","side":"buy","symbol":"BTCUSDT"},
//	 "fields":{"price":65000.5,"quantity":0.012,"trade_id":123456789},
//	 "time":"2025-01-02T03:04:05.123Z","received":"2025-01-02T03:04:05.125861Z"}
//
// Tags and fields keep the point's order. Floats are written in the
// shortest form that reads back the same, ints and uints as integers,
// bools as true/false, strings as JSON strings (invalid UTF-8 as U+FFFD).
// Times are RFC 3339 in UTC with as many fraction digits as they need;
// received is left out when the source did not set it.
func appendPayload(b []byte, p *sluice.Point) []byte {
	b = append(b, `{"measurement":`...)
	b = appendString(b, p.Measurement)
	b = append(b, `,"tags":{`...)
	for i, t := range p.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Key)
		b = append(b, ':')
		b = appendString(b, t.Value)
	}
	b = append(b, `},"fields":{`...)
	for i, f := range p.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Key)
		b = append(b, ':')
		b = appendValue(b, f.Value)
	}
	b = append(b, `},"time":`...)
	b = appendTime(b, p.Time)
	if !p.Received.IsZero() {
		b = append(b, `,"received":`...)
		b = appendTime(b, p.Received)
	}
	return append(b, '}')
}

func appendValue(b []byte, v sluice.Value) []byte {
	switch v.Kind() {
	case sluice.KindFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// The pipeline never lets one through; JSON has no word for it.
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case sluice.KindInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case sluice.KindUint:
		return strconv.AppendUint(b, v.Uint(), 10)
	case sluice.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case sluice.KindString:
		return appendString(b, v.Str())
	}
	return append(b, "null"...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string. Besides what JSON requires,
// '<', '>', '&', U+2028 and U+2029 are escaped, as encoding/json does, so
// that a payload can be put into a page's script as is.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
