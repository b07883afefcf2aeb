package lineproto

import (
	"fmt"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/sluicehq/sluice"
)

// Decode parses every line of data with the reference decoder
// (line-protocol/v2) and calls emit with each point, in order, tags sorted
// by key. A line without a timestamp gets def; timestamps are nanoseconds.
// Integers come back as KindInt ("1i"), unsigned ones as KindUint ("1u").
//
// A line that does not parse is skipped: bad counts them and first is the
// first one's error, so one broken line costs that line only. Points
// handed to emit own their strings (nothing refers to data afterwards).
func Decode(data []byte, def time.Time, emit func(sluice.Point)) (bad int, first error) {
	d := lineprotocol.NewDecoderWithBytes(data)
	for d.Next() {
		p, err := decodeLine(d, def)
		if err != nil {
			bad++
			if first == nil {
				first = err
			}
			continue
		}
		emit(p)
	}
	return bad, first
}

func decodeLine(d *lineprotocol.Decoder, def time.Time) (sluice.Point, error) {
	var p sluice.Point
	m, err := d.Measurement()
	if err != nil {
		return p, err
	}
	p.Measurement = string(m)
	for {
		k, v, err := d.NextTag()
		if err != nil {
			return p, err
		}
		if k == nil {
			break
		}
		p.Tags = append(p.Tags, sluice.Tag{Key: string(k), Value: string(v)})
	}
	for {
		k, v, err := d.NextField()
		if err != nil {
			return p, err
		}
		if k == nil {
			break
		}
		var val sluice.Value
		switch v.Kind() {
		case lineprotocol.Float:
			val = sluice.Float(v.FloatV())
		case lineprotocol.Int:
			val = sluice.Int(v.IntV())
		case lineprotocol.Uint:
			val = sluice.Uint(v.UintV())
		case lineprotocol.String:
			val = sluice.String(v.StringV())
		case lineprotocol.Bool:
			val = sluice.Bool(v.BoolV())
		default:
			return p, fmt.Errorf("field %q: unknown value kind %v", k, v.Kind())
		}
		p.Fields = append(p.Fields, sluice.Field{Key: string(k), Value: val})
	}
	if len(p.Fields) == 0 {
		return p, fmt.Errorf("measurement %q: no fields", p.Measurement)
	}
	ts, err := d.Time(lineprotocol.Nanosecond, def)
	if err != nil {
		return p, err
	}
	p.Time = ts
	p.SortTags()
	return p, nil
}
