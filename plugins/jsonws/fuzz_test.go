package jsonws

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"
)

// FuzzMap feeds arbitrary rules (as the JSON the agent would send) and
// arbitrary messages to the mapper. Whatever the input, compiling either
// fails with config errors or yields a mapper whose Map never panics and
// only produces points a sink can take: a measurement, at least one
// field, tags in key order, a time.
func FuzzMap(f *testing.F) {
	seeds := []struct{ rules, msg string }{
		{`[{"measurement":"m","fields":{"x":"x"}}]`, `{"x":1}`},
		{`[{"name":"t","match":[{"path":"e","equals":"trade"}],"measurement":"trades","tags":{"s":"s","side":{"path":"m","map":{"true":"sell","false":"buy"}}},"fields":{"p":{"path":"p","type":"float"},"id":{"path":"t","type":"int"}},"time":{"path":"T","format":"unix_ms"},"unique":["s","id"]}]`,
			`{"e":"trade","s":"BTCUSDT","t":12,"p":"1.5","m":true,"T":1700000000000}`},
		{`[{"match":[{"path":"h","exists":true}],"continue":true,"measurement":"b","fields":{"h":{"path":"h","type":"uint"}}},{"each":"tx.#(v>10)#","measurement":"t","tags":{"h":"$.h"},"fields":{"v":{"path":"v","type":"int"}}}]`,
			`{"h":1,"tx":[{"v":5},{"v":50}]}`},
		{`[{"measurement_path":"k","fields":{"x":{"path":"x","type":"string"}},"time":{"path":"t","format":"2006-01-02"}}]`, `{"k":"m","x":{"a":[1]},"t":"2024-01-02"}`},
		{`[{"match":[{"path":"s","regex":"^a+$"}],"measurement":"m","fields":{"x":{"path":"x","optional":true},"y":{"value":true}}}]`, `{"s":"aaa"}`},
		{`[{"measurement":"m","fields":{"x":"@reverse|0"}}]`, `[3,2,1]`},
		{`[{"measurement":"m","fields":{"x":"a.#(b==\"c\").d"}}]`, `{"a":[{"b":"c","d":1e308}]}`},
		{`[]`, `not json`},
	}
	for _, s := range seeds {
		f.Add([]byte(s.rules), []byte(s.msg))
	}
	f.Fuzz(func(t *testing.T, rulesJSON, msg []byte) {
		var rules []Rule
		if err := decodeStrict(rulesJSON, &rules, "rules"); err != nil {
			return
		}
		m, errs := NewMapper(rules)
		if len(errs) > 0 {
			return
		}
		points, merrs, _ := m.Map(msg, received, nil)
		for _, e := range merrs {
			if strings.HasPrefix(e.Msg, "internal:") {
				t.Fatalf("mapper panicked: %v", e)
			}
		}
		for _, p := range points {
			if p.Measurement == "" || len(p.Fields) == 0 || p.Time.IsZero() || !p.Received.Equal(received) {
				t.Fatalf("unusable point %+v", p)
			}
			if !slices.IsSortedFunc(p.Tags, func(a, b sluice.Tag) int { return strings.Compare(a.Key, b.Key) }) {
				t.Fatalf("tags out of order: %+v", p.Tags)
			}
			for _, f := range p.Fields {
				if f.Value.Kind() == sluice.KindInvalid {
					t.Fatalf("field %s has no value", f.Key)
				}
			}
		}
	})
}
