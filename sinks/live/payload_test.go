package live

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func TestPayload(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	for _, c := range []struct {
		name string
		p    sluice.Point
		want string
	}{
		{"trade", sluice.Point{
			Measurement: "trades",
			Tags:        []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "symbol", Value: "BTCUSDT"}},
			Fields:      []sluice.Field{{Key: "price", Value: sluice.Float(65000.5)}, {Key: "quantity", Value: sluice.Float(0.012)}, {Key: "trade_id", Value: sluice.Int(123456789)}},
			Time:        at, Received: at.Add(2861 * time.Microsecond),
		}, `{"measurement":"trades","tags":{"exchange":"binance","symbol":"BTCUSDT"},"fields":{"price":65000.5,"quantity":0.012,"trade_id":123456789},"time":"2025-01-02T03:04:05.123Z","received":"2025-01-02T03:04:05.125861Z"}`},
		{"kinds", sluice.Point{
			Measurement: "m",
			Fields: []sluice.Field{{Key: "u", Value: sluice.Uint(math.MaxUint64)}, {Key: "b", Value: sluice.Bool(true)}, {Key: "s", Value: sluice.String("a\"b\\c\n<x>&\u2028\x01")},
				{Key: "big", Value: sluice.Float(1e300)}, {Key: "neg", Value: sluice.Int(-5)}},
			Time: at.In(time.FixedZone("X", 3600)),
		}, `{"measurement":"m","tags":{},"fields":{"u":18446744073709551615,"b":true,"s":"a\"b\\c\n\u003cx\u003e\u0026\u2028\u0001","big":1e+300,"neg":-5},"time":"2025-01-02T03:04:05.123Z"}`},
		{"bad utf-8", sluice.Point{Measurement: "m\xff", Time: at}, `{"measurement":"m\ufffd","tags":{},"fields":{},"time":"2025-01-02T03:04:05.123Z"}`},
	} {
		if got := string(appendPayload(nil, &c.p)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// Every payload is valid JSON holding the point's strings as they were
// (invalid UTF-8 aside), and its numbers exactly.
func FuzzPayload(f *testing.F) {
	f.Add("trades", "symbol", "BTCUSDT", "price", 65000.5, int64(7), "x")
	f.Add("m\xff", "<k>", "\u2028", "f", math.SmallestNonzeroFloat64, int64(math.MinInt64), "\x00\"\\")
	f.Fuzz(func(t *testing.T, meas, tagKey, tagValue, fieldKey string, fv float64, iv int64, sv string) {
		if math.IsNaN(fv) || math.IsInf(fv, 0) {
			return
		}
		p := sluice.Point{Measurement: meas, Tags: []sluice.Tag{{Key: tagKey, Value: tagValue}},
			Fields: []sluice.Field{{Key: "f" + fieldKey, Value: sluice.Float(fv)}, {Key: "i" + fieldKey, Value: sluice.Int(iv)}, {Key: "s" + fieldKey, Value: sluice.String(sv)}},
			Time:   time.Unix(0, iv).UTC()}
		b := appendPayload(nil, &p)
		var got struct {
			Measurement string                     `json:"measurement"`
			Tags        map[string]string          `json:"tags"`
			Fields      map[string]json.RawMessage `json:"fields"`
			Time        time.Time                  `json:"time"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		valid := func(s string) string { r, _ := json.Marshal(s); var o string; json.Unmarshal(r, &o); return o }
		if got.Measurement != valid(meas) || !reflect.DeepEqual(got.Tags, map[string]string{valid(tagKey): valid(tagValue)}) {
			t.Fatalf("%s: strings changed", b)
		}
		var f float64
		var i int64
		json.Unmarshal(got.Fields[valid("f"+fieldKey)], &f)
		json.Unmarshal(got.Fields[valid("i"+fieldKey)], &i)
		if f != fv || i != iv || !got.Time.Equal(p.Time) {
			t.Fatalf("%s: numbers changed: %v %v %v", b, f, i, got.Time)
		}
	})
}
