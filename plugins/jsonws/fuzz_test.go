package jsonws

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
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
		{`[{"match":[{"path":"event","equals":"subscribed"}],"remember":[{"table":"c","key":"chanId","value":"symbol"}]},{"match":[{"path":"0","in":"c"}],"measurement":"t","tags":{"s":{"path":"0","lookup":"c","case":"lower"},"side":{"path":"2.2","sign":true,"map":{"1":"buy","-1":"sell"}}},"fields":{"q":{"path":"2.2","abs":true,"scale":"0.001","type":"float"}}}]`,
			`{"event":"subscribed","chanId":1,"symbol":"tBTCUSD"}`},
		{`[{"measurement":"m","tags":{"s":{"path":"ch","regex":"^market\\.(\\w+)\\.trade"}},"fields":{"id":{"path":"id"},"n":{"path":"n","type":"int","scale":1000}}}]`,
			`{"ch":"market.btcusdt.trade.detail","id":137005445109359286410323766,"n":"1e-3"}`},
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
		// Twice on one connection's state: what the first remembers, the
		// second reads.
		st := NewState()
		m.MapState(msg, received, nil, st)
		points, merrs, _ := m.MapState(msg, received, nil, st)
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

// FuzzReply parses arbitrary answer replies and renders them for
// arbitrary pings: parsing fails with an error or yields a reply whose
// rendering never panics, and a JSON reply renders to valid JSON.
func FuzzReply(f *testing.F) {
	for _, s := range []struct{ reply, ping string }{
		{`{"pong":"${msg:ping}"}`, `{"ping":1492420473027}`},
		{`"pong ${msg:ts} $$ ${msg:a.b}"`, `{"ts":"x","a":{"b":[1]}}`},
		{`{"jsonrpc":"2.0","id":"${msg:id}","result":["${msg:params}"]}`, `{"id":12,"params":{"type":"test_request"}}`},
		{`{"a":"${msg:"}`, `{}`},
		{`"$${msg:x}"`, `{"x":1}`},
	} {
		f.Add([]byte(s.reply), []byte(s.ping))
	}
	f.Fuzz(func(t *testing.T, reply, ping []byte) {
		if !json.Valid(reply) {
			return
		}
		m, err := parseMessageRefs(reply, nil, true)
		if err != nil {
			return
		}
		var root gjson.Result
		if gjson.ValidBytes(ping) && !tooDeep(ping, DefaultMaxJSONDepth) {
			root = gjson.ParseBytes(ping)
		}
		b, err := m.renderFor(root, true)
		if err == nil && m.value != nil && !json.Valid(b) {
			t.Fatalf("reply %s for %s rendered invalid JSON %s", reply, ping, b)
		}
	})
}

// FuzzDecodeConfig decodes arbitrary JSON as a feed config: it never
// panics, and every problem it reports names a key unless the document
// itself is wrong.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"url":"ws://x","rules":[{"measurement":"m","fields":{"x":"x"}}]}`,
		`{"url":1,"rules":[{"match":[{"path":1}],"fields":{"x":{"path":[1]}}}],"stale_after":30}`,
		`{"on_open":[{"send":{"a":1},"expect":{"path":"a","count":"2"}}],"headers":{"A":1},"tls":[],"reconnect":{"budget":1.5}}`,
		`[]`, `null`, `{"answer":[{"match":{},"reply":null}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || tooDeep(raw, DefaultMaxJSONDepth) {
			return
		}
		var cfg Config
		for _, e := range decodeStrict(raw, &cfg, "") {
			if e.Key == "" && !strings.HasPrefix(e.Msg, "must be a mapping") {
				t.Fatalf("a problem without a key: %v", e)
			}
		}
		// What decoded compiles without panicking.
		cfg.compile(nil, &sdk.ConfigCheck{})
	})
}
