package jsonws

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/plugins/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// received is the receive time of every message in the mapping tests.
var received = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// yamlJSON converts a YAML snippet to JSON, as the agent hands a feed's
// config to the plugin.
func yamlJSON(t testing.TB, doc string) json.RawMessage {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("yaml: %v\n%s", err, doc)
	}
	j, err := jsonable(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMapper(t testing.TB, rulesYAML string) *Mapper {
	t.Helper()
	var rules []Rule
	if err := decodeStrict(yamlJSON(t, rulesYAML), &rules, "rules"); err != nil {
		t.Fatalf("rules: %v", err)
	}
	m, errs := NewMapper(rules)
	if len(errs) > 0 {
		t.Fatalf("rules rejected: %v", errs)
	}
	return m
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// renderMap maps each message, as one connection's (what rules remember
// from one is there for the next), and renders what came out, for a
// golden file.
func renderMap(m *Mapper, msgs []string) string {
	var b strings.Builder
	st := NewState()
	for _, msg := range msgs {
		points, errs, matched := m.MapState([]byte(msg), received, nil, st)
		fmt.Fprintf(&b, "> %s\n", msg)
		for _, p := range points {
			fmt.Fprintf(&b, "  %s\n", sdk.FormatPoint(p))
			if !p.Received.Equal(received) {
				fmt.Fprintf(&b, "  !! received %s, want %s\n", p.Received, received)
			}
		}
		for _, e := range errs {
			fmt.Fprintf(&b, "  error: %s\n", e.Error())
		}
		if !matched {
			b.WriteString("  (no rule matched)\n")
		}
	}
	return b.String()
}

func TestMapGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules string
		msgs  []string
	}{
		{
			name: "first_match_wins",
			rules: `
- name: ticker
  match: [{path: type, equals: ticker}]
  measurement: ticker
  tags: {symbol: sym}
  fields: {price: {path: px, type: float}}
- name: catch_all
  measurement: other
  fields: {raw: {path: "@this", type: string}}
`,
			msgs: []string{
				`{"type":"ticker","sym":"ABC","px":"1.25"}`,
				`{"type":"trade","sym":"ABC","px":1}`,
			},
		},
		{
			name: "continue",
			rules: `
- name: block
  match: [{path: height, exists: true}]
  continue: true
  measurement: blocks
  fields: {height: {path: height, type: uint}, txs: {path: "tx.#", type: int}}
- name: big_tx
  match: [{path: height, exists: true}]
  each: "tx.#(value>=1000)#"
  measurement: big_tx
  tags: {height: $.height}
  fields: {value: {path: value, type: int}, id: id}
- name: never
  measurement: never
  fields: {x: {value: 1}}
`,
			msgs: []string{
				`{"height":100,"tx":[{"id":"a","value":5},{"id":"b","value":1000},{"id":"c","value":2500}]}`,
				`{"height":101,"tx":[]}`,
			},
		},
		{
			name: "conditions",
			rules: `
- name: equals_number
  match: [{path: code, equals: 1}]
  measurement: m
  fields: {rule: {value: equals_number}}
- name: equals_bool_and_absent
  match: [{path: ok, equals: true}, {path: err, exists: false}]
  measurement: m
  fields: {rule: {value: equals_bool_and_absent}}
- name: regex_on_string
  match: [{path: stream, regex: "@trade$"}]
  measurement: m
  fields: {rule: {value: regex_on_string}}
- name: regex_on_number
  match: [{path: n, regex: "^4\\d\\d$"}]
  measurement: m
  fields: {rule: {value: regex_on_number}}
- name: equals_null
  match: [{path: v, equals: null}]
  measurement: m
  fields: {rule: {value: equals_null}}
`,
			msgs: []string{
				`{"code":1.0}`,
				`{"code":"1"}`,
				`{"ok":true}`,
				`{"ok":true,"err":null}`,
				`{"stream":"btcusdt@trade"}`,
				`{"stream":"btcusdt@trades"}`,
				`{"n":404}`,
				`{"v":null}`,
				`{}`,
			},
		},
		{
			name: "types",
			rules: `
- name: t
  measurement: types
  fields:
    f_num: {path: a, type: float}
    f_str: {path: b, type: float}
    i_num: {path: c, type: int}
    i_exp: {path: d, type: int}
    i_str: {path: e, type: int}
    u_num: {path: f, type: uint}
    u_big: {path: g, type: uint}
    s_num: {path: h, type: string}
    s_obj: {path: i, type: string}
    b_bool: {path: j, type: bool}
    b_str: {path: k, type: bool}
    inferred_num: l
    inferred_str: m
    inferred_bool: n
`,
			msgs: []string{
				`{"a":1.5,"b":"2.25","c":-7,"d":1e3,"e":"42","f":7,"g":18446744073709551615,"h":12.50,"i":{"x":[1,2]},"j":false,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":"x","b":"2.25","c":-7,"d":1e3,"e":"42","f":7,"g":1,"h":1,"i":1,"j":true,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":1,"b":"NaN","c":-7,"d":1e3,"e":"42","f":7,"g":1,"h":1,"i":1,"j":true,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":1,"b":1,"c":1.5,"d":1e3,"e":"42","f":7,"g":1,"h":1,"i":1,"j":true,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":1,"b":1,"c":1,"d":1e3,"e":"42","f":-1,"g":1,"h":1,"i":1,"j":true,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":1,"b":1,"c":1,"d":1e3,"e":"42","f":1,"g":1,"h":1,"i":1,"j":1,"k":"true","l":3,"m":"s","n":true}`,
				`{"a":1,"b":1,"c":1,"d":1e3,"e":"42","f":1,"g":1,"h":1,"i":1,"j":true,"k":"true","l":[3],"m":"s","n":true}`,
			},
		},
		{
			name: "missing_and_optional",
			rules: `
- name: r
  measurement: m
  tags:
    need: t
    maybe: {path: u, optional: true}
  fields:
    x: {path: x, type: float}
    y: {path: y, type: float, optional: true}
`,
			msgs: []string{
				`{"t":"a","u":"b","x":1,"y":2}`,
				`{"t":"a","x":1}`,
				`{"t":"a","u":null,"x":1,"y":null}`,
				`{"u":"b","x":1}`,
				`{"t":"a","x":null}`,
				`{"t":{"o":1},"x":1}`,
				`[1,2,3]`,
			},
		},
		{
			name: "no_fields_left",
			rules: `
- name: r
  measurement: m
  fields: {x: {path: x, optional: true}}
`,
			msgs: []string{`{"x":1}`, `{}`},
		},
		{
			name: "map_and_literals",
			rules: `
- name: trade
  measurement: trades
  tags:
    exchange: {value: acme}
    side: {path: m, map: {"true": sell, "false": buy}}
  fields:
    qty: q
    code: {path: c, type: int, map: {"A": 1, "B": 2}}
    source: {value: ws}
    weight: {value: "0.5", type: float}
`,
			msgs: []string{
				`{"m":true,"q":1,"c":"A"}`,
				`{"m":false,"q":2,"c":"B"}`,
				`{"m":"maybe","q":3,"c":"A"}`,
				`{"m":true,"q":4,"c":"Z"}`,
			},
		},
		{
			name: "measurement_path",
			rules: `
- name: r
  measurement_path: kind
  tags: {id: id}
  fields: {v: v}
`,
			msgs: []string{
				`{"kind":"cpu","id":1,"v":0.5}`,
				`{"id":1,"v":0.5}`,
				`{"kind":7,"id":1,"v":0.5}`,
				`{"kind":"","id":1,"v":0.5}`,
			},
		},
		{
			name: "each",
			rules: `
- name: levels
  match: [{path: e, equals: depth}]
  each: data
  measurement: book
  tags: {symbol: $.s, side: 2}
  fields: {price: {path: "0", type: float}, qty: {path: "1", type: float}}
  time: {path: $.T, format: unix_ms}
- name: not_array
  match: [{path: e, equals: bad}]
  each: data
  measurement: m
  fields: {x: x}
`,
			msgs: []string{
				`{"e":"depth","s":"ABC","T":1700000000123,"data":[["1.5","2","bid"],["1.6","3","ask"],["x","1","bid"]]}`,
				`{"e":"depth","s":"ABC","T":1700000000123,"data":[]}`,
				`{"e":"depth","s":"ABC","T":1700000000123}`,
				`{"e":"bad","data":{"x":1}}`,
			},
		},
		{
			name: "time_formats",
			rules: `
- {name: s, match: [{path: f, equals: s}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: unix_s}}
- {name: ms, match: [{path: f, equals: ms}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: unix_ms}}
- {name: us, match: [{path: f, equals: us}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: unix_us}}
- {name: ns, match: [{path: f, equals: ns}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: unix_ns}}
- {name: rfc, match: [{path: f, equals: rfc}], measurement: t, fields: {x: {value: 1}}, time: t}
- {name: layout, match: [{path: f, equals: layout}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: "2006-01-02 15:04:05.000"}}
- {name: optional, match: [{path: f, equals: opt}], measurement: t, fields: {x: {value: 1}}, time: {path: t, format: unix_ms, optional: true}}
- {name: none, match: [{path: f, equals: none}], measurement: t, fields: {x: {value: 1}}}
`,
			msgs: []string{
				`{"f":"s","t":1700000000}`,
				`{"f":"s","t":1700000000.123456789}`,
				`{"f":"s","t":"1700000000.5"}`,
				`{"f":"s","t":1.7e9}`,
				`{"f":"s","t":99999999999999999}`,
				`{"f":"ms","t":1700000000123}`,
				`{"f":"ms","t":"1700000000123"}`,
				`{"f":"ms","t":1700000000123.5}`,
				`{"f":"us","t":1700000000123456}`,
				`{"f":"ns","t":1700000000123456789}`,
				`{"f":"rfc","t":"2024-01-02T03:04:05.5+01:00"}`,
				`{"f":"rfc","t":"2024-01-02"}`,
				`{"f":"layout","t":"2024-01-02 03:04:05.678"}`,
				`{"f":"ms"}`,
				`{"f":"ms","t":"soon"}`,
				`{"f":"opt"}`,
				`{"f":"none"}`,
			},
		},
		{
			// Bitfinex: the subscribe ack names the symbol once; data
			// messages carry only the channel id. The sign of the amount
			// is the side; its absolute value the quantity.
			name: "remember_lookup",
			rules: `
- name: subscribed
  match: [{path: event, equals: subscribed}, {path: channel, equals: trades}]
  remember: [{table: channels, key: chanId, value: symbol}, {table: pairs, key: chanId, value: pair}]
- name: trade
  match: [{path: "0", in: channels}, {path: "1", equals: te}]
  measurement: trades
  tags:
    symbol: {path: "0", lookup: channels}
    pair: {path: "0", lookup: pairs, case: lower}
    side: {path: "2.2", sign: true, map: {"1": buy, "-1": sell}}
  fields:
    trade_id: {path: "2.0", type: int}
    qty: {path: "2.2", abs: true, type: float}
    price: {path: "2.3", type: float}
    chan: {path: "0", type: int}
  time: {path: "2.1", format: unix_ms}
- name: unknown_channel
  match: [{path: "1", equals: te}]
  measurement: trades
  tags: {symbol: {path: "0", lookup: channels}}
  fields: {x: {value: 1}}
`,
			msgs: []string{
				`[17470,"te",[401597395,1574694478808,0.005,7245.3]]`,
				`{"event":"subscribed","channel":"trades","chanId":17470,"symbol":"tBTCUSD","pair":"BTCUSD"}`,
				`{"event":"subscribed","channel":"book","chanId":99,"symbol":"tBTCUSD"}`,
				`[17470,"te",[401597395,1574694478808,0.005,7245.3]]`,
				`[17470,"te",[401597396,1574694478809,-0.25,7245.2]]`,
				`[17470,"te",[401597397,1574694478809,0,7245.2]]`,
				`[99,"te",[1,2,3,4]]`,
				`{"event":"subscribed","channel":"trades","chanId":17470,"symbol":"tETHUSD","pair":"ETHUSD"}`,
				`[17470,"te",[5,1574694478810,"-1e-3",2000]]`,
				`{"event":"subscribed","channel":"trades","symbol":"tX"}`,
			},
		},
		{
			// Huobi and Bitstamp name the symbol only inside a channel
			// name; some feeds send the side as "B"/"S" or "Buy"; sizes
			// in contracts are scaled to base units exactly.
			name: "transforms",
			rules: `
- name: t
  measurement: trades
  tags:
    symbol: {path: ch, regex: "^market\\.([a-z0-9]+)\\.trade\\.detail$", case: upper}
    side: {path: S, case: lower}
    flag: {path: b, map: {B: buy, S: sell}}
  fields:
    base_qty: {path: contracts, scale: "0.001", type: float}
    notional: {path: contracts, scale: 100, type: int}
    sign: {path: contracts, sign: true, type: int}
`,
			msgs: []string{
				`{"ch":"market.btcusdt.trade.detail","S":"Buy","b":"B","contracts":"12345"}`,
				`{"ch":"market.ethusdt.trade.detail","S":"SELL","b":"S","contracts":0.1}`,
				`{"ch":"market.btc-usdt.trade.detail","S":"Buy","b":"B","contracts":1}`,
				`{"ch":"market.btcusdt.trade.detail","S":"Buy","b":"X","contracts":1}`,
				`{"ch":"market.btcusdt.trade.detail","S":"Buy","b":"B","contracts":"many"}`,
				`{"ch":"market.btcusdt.trade.detail","S":"Buy","b":"B","contracts":0.0015}`,
				`{"ch":"market.btcusdt.trade.detail","S":"Buy","b":"B","contracts":{"n":1}}`,
			},
		},
		{
			// A 27-digit Huobi id: the shorthand refuses it rather than
			// round it to a float equal to its neighbour's; type string
			// keeps every digit; int and uint refuse what they cannot
			// hold.
			name: "big_numbers",
			rules: `
- name: keep_digits
  match: [{path: id, exists: true}]
  continue: true
  measurement: ids
  fields: {id: {path: id, type: string}}
- name: any
  measurement: m
  fields:
    shorthand: {path: id, optional: true}
    as_string: {path: id, type: string, optional: true}
    as_int: {path: n, type: int, optional: true}
    as_uint: {path: u, type: uint, optional: true}
    small: {path: f, optional: true}
`,
			msgs: []string{
				`{"id":137005445109359286410323766}`,
				`{"id":137005445109359286410323767}`,
				`{"id":1.37005445109359286410323766e26}`,
				`{"f":52648.62}`,
				`{"f":4.74E-4}`,
				`{"f":0.30000000000000004}`,
				`{"f":9007199254740993}`,
				`{"n":"9007199254740993.0"}`,
				`{"n":9223372036854775807}`,
				`{"n":9223372036854775808}`,
				`{"n":1e3}`,
				`{"n":"1e999999999"}`,
				`{"u":18446744073709551615}`,
				`{"u":1.8446744073709551615e19}`,
				`{"u":-0.0}`,
			},
		},
		{
			name: "not_json",
			rules: `
- {name: r, measurement: m, fields: {x: x}}
`,
			msgs: []string{`ping`, `{"x":1`, `{"x":1}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name+".txt", renderMap(mustMapper(t, tc.rules), tc.msgs))
		})
	}
}

func TestNewMapperRejects(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
		want        []string // substrings of the errors, in order
	}{
		{"no measurement", `[{fields: {x: x}}]`, []string{"rules[0]: set exactly one of measurement"}},
		{"both measurements", `[{measurement: a, measurement_path: b, fields: {x: x}}]`, []string{"rules[0]: set exactly one"}},
		{"no fields", `[{measurement: a}]`, []string{"rules[0].fields: must name at least one field"}},
		{"bad type", `[{measurement: a, fields: {x: {path: x, type: decimal}}}]`, []string{`rules[0].fields.x: unknown field type "decimal"`}},
		{"type on tag", `[{measurement: a, tags: {t: {path: t, type: int}}, fields: {x: x}}]`, []string{"rules[0].tags.t: a tag is always a string"}},
		{"unknown spec key", `[{measurement: a, fields: {x: {pth: x}}}]`, []string{`rules[0].fields.x.pth: unknown key`}},
		{"path and value", `[{measurement: a, fields: {x: {path: x, value: 1}}}]`, []string{"rules[0].fields.x: set exactly one of path and value"}},
		{"bad literal", `[{measurement: a, fields: {x: {value: abc, type: int}}}]`, []string{`rules[0].fields.x: value: string "abc" is not an int64`}},
		{"bad path", `[{measurement: a, fields: {x: "a..b"}}]`, []string{"rules[0].fields.x: empty path component"}},
		{"unbalanced", `[{measurement: a, fields: {x: "a.#(b==1"}}]`, []string{`rules[0].fields.x: unclosed '('`}},
		{"modifier", `[{measurement: a, fields: {x: "@nosuch"}}]`, []string{"rules[0].fields.x: unknown modifier @nosuch"}},
		{"bad regex", `[{measurement: a, match: [{path: a, regex: "("}], fields: {x: x}}]`, []string{"rules[0].match[0]: regex:"}},
		{"two tests", `[{measurement: a, match: [{path: a, equals: 1, exists: true}], fields: {x: x}}]`, []string{"rules[0].match[0]: set exactly one of equals, exists, regex and in"}},
		{"no test", `[{measurement: a, match: [{path: a}], fields: {x: x}}]`, []string{"rules[0].match[0]: set exactly one"}},
		{"object equals", `[{measurement: a, match: [{path: a, equals: {b: 1}}], fields: {x: x}}]`, []string{"equals must be a string, number, bool or null"}},
		{"bad time format", `[{measurement: a, fields: {x: x}, time: {path: t, format: unix_minutes}}]`, []string{`rules[0].time: format "unix_minutes" is not`}},
		{"unique unknown", `[{measurement: a, fields: {x: x}, unique: [y]}]`, []string{`rules[0].unique[0]: "y" is neither`}},
		{"unique with path measurement", `[{measurement_path: k, fields: {x: x}, unique: [x]}]`, []string{"rules[0].unique: needs a literal measurement"}},
		{"unique conflict", `[{measurement: a, fields: {x: x, y: y}, unique: [x]}, {measurement: a, fields: {x: x, y: y}, unique: [y]}]`, []string{`rules[1].unique: measurement "a" already has unique [x]`}},
		{"duplicate names", `[{name: r, measurement: a, fields: {x: x}}, {name: r, measurement: b, fields: {x: x}}]`, []string{`rules[1].name: "r" is used by an earlier rule`}},
		{"tag and field", `[{measurement: a, tags: {x: x}, fields: {x: x}}]`, []string{"rules[0].fields.x: is also a tag"}},
		{"each from root", `[{measurement: a, each: $.items, fields: {x: x}}]`, []string{"rules[0].each: is always read from the message"}},
		{"map to object", `[{measurement: a, tags: {s: {path: s, map: {a: {b: 1}}}}, fields: {x: x}}]`, []string{"rules[0].tags.s: map.a: must be a string, number or bool"}},
		{"regex without a group", `[{measurement: a, tags: {s: {path: ch, regex: "^market"}}, fields: {x: x}}]`, []string{`rules[0].tags.s: regex: needs exactly one capture group`}},
		{"regex with two groups", `[{measurement: a, tags: {s: {path: ch, regex: "(a)(b)"}}, fields: {x: x}}]`, []string{`has 2`}},
		{"bad regex", `[{measurement: a, tags: {s: {path: ch, regex: "("}}, fields: {x: x}}]`, []string{`rules[0].tags.s: regex: error parsing regexp`}},
		{"abs and sign", `[{measurement: a, fields: {x: {path: x, abs: true, sign: true}}}]`, []string{"rules[0].fields.x: set at most one of abs and sign"}},
		{"scale zero", `[{measurement: a, fields: {x: {path: x, scale: 0}}}]`, []string{"rules[0].fields.x: scale: must be a non-zero decimal number"}},
		{"scale text", `[{measurement: a, fields: {x: {path: x, scale: lots}}}]`, []string{"rules[0].fields.x: scale: must be a non-zero decimal number"}},
		{"scale huge exponent", `[{measurement: a, fields: {x: {path: x, scale: "1e100000"}}}]`, []string{"scale: must be a non-zero decimal number"}},
		{"bad case", `[{measurement: a, tags: {s: {path: s, case: title}}, fields: {x: x}}]`, []string{`rules[0].tags.s: case: must be upper or lower, not "title"`}},
		{"abs on a literal", `[{measurement: a, fields: {x: {value: abc, abs: true}}}]`, []string{`rules[0].fields.x: value: string "abc" is not a number`}},
		{"lookup of a literal", `[{measurement: a, fields: {x: {value: 1, lookup: t}}}]`, []string{"rules[0].fields.x: lookup takes its key from a path"}},
		{"lookup of a table nothing fills", `[{measurement: a, tags: {s: {path: "0", lookup: channels}}, fields: {x: x}}]`,
			[]string{`rules[0].tags.s.lookup: no rule remembers into table "channels"`}},
		{"in a table nothing fills", `[{measurement: a, match: [{path: "0", in: chans}], fields: {x: x}}]`,
			[]string{`rules[0].match[0].in: no rule remembers into table "chans"`}},
		{"in and equals", `[{measurement: a, match: [{path: "0", in: t, equals: 1}], fields: {x: x}}]`,
			[]string{"rules[0].match[0]: set exactly one of equals, exists, regex and in"}},
		{"remember without conditions", `[{remember: [{table: t, key: k, value: v}]}, {measurement: a, fields: {x: x}}]`,
			[]string{"rules[0].match: a rule that only remembers needs conditions"}},
		{"remember bad table and paths", `[{match: [{path: e, equals: s}], remember: [{table: "a b", key: "a..b", value: ""}]}, {measurement: a, fields: {x: x}}]`,
			[]string{"rules[0].remember[0].table: must be a name", "rules[0].remember[0].key: empty path component", "rules[0].remember[0].value: path is empty"}},
		{"alive that remembers", `[{alive: true, match: [{path: e, equals: hb}], remember: [{table: t, key: k, value: v}]}, {measurement: a, fields: {x: x}}]`,
			[]string{"rules[0].remember: an alive rule only proves the feed alive"}},
		{"wrong kinds, every one", `[{name: 7, measurement: a, match: [{path: 1}], fields: {x: {path: [x], optional: maybe}}, unique: x}]`,
			[]string{"rules[0].match[0].path: must be a string, got number 1", "rules[0].name: must be a string, got number 7", "rules[0].unique: must be a list, got string \"x\"",
				"rules[0].fields.x.optional: must be true or false, got string \"maybe\"", "rules[0].fields.x.path: must be a string, got an array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rules []Rule
			// Every problem at once: decoding goes on past one.
			errs := decodeStrict(yamlJSON(t, tc.rules), &rules, "rules")
			_, merrs := NewMapper(rules)
			errs = append(errs, merrs...)
			got := errs.Error()
			if len(errs) == 0 {
				t.Fatal("rules accepted")
			}
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("errors %q lack %q", got, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestMeasurementsDeclared(t *testing.T) {
	m := mustMapper(t, `
- {measurement: trades, fields: {id: id}, unique: [id]}
- {measurement: trades, fields: {id: id}}
- {measurement_path: kind, fields: {x: x}}
- {measurement: blocks, fields: {h: h}, unique: [h, time]}
`)
	got, _ := json.Marshal(m.Measurements())
	want := `[{"Name":"trades","Unique":["id"]},{"Name":"blocks","Unique":["h","time"]}]`
	if string(got) != want {
		t.Errorf("measurements = %s, want %s", got, want)
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"a", true}, {"a.b.c", true}, {"a.0", true}, {"a.#", true}, {"a.#.b", true},
		{`a.#(b=="x.y")#`, true}, {`a.#(b%"*z")`, true}, {"a|@reverse", true}, {"@this", true},
		{`a\.b`, true}, {"a.b|0", true}, {`{a,b}`, true}, {"[a,b]", true}, {"a.*", true}, {"a?c", true},
		{"", false}, {".a", false}, {"a.", false}, {"a..b", false}, {"..a", false}, {"a|", false},
		{`a\`, false}, {"a.#(b==1", false}, {"a)", false}, {"[a,b", false}, {`a.#(b=="x)`, false},
		{"@bogus", false}, {"a.@bogus", false}, {"\xff", false}, {strings.Repeat("a", maxPathLen+1), false},
	} {
		err := checkPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("checkPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}

func TestParseUnix(t *testing.T) {
	for _, tc := range []struct {
		s    string
		unit int64
		want time.Time
		ok   bool
	}{
		{"0", 1e9, time.Unix(0, 0), true},
		{"-1.5", 1e9, time.Unix(-2, 5e8), true},
		{"1700000000.000000001", 1e9, time.Unix(1700000000, 1), true},
		{"1700000000123.456", 1e6, time.Unix(1700000000, 123456000), true},
		{"1700000000123456.7", 1e3, time.Unix(1700000000, 123456700), true},
		{"9223372036854775807", 1, time.Unix(0, 9223372036854775807), true},
		{"1.7e9", 1e9, time.Unix(1700000000, 0), true},
		{"1e30", 1e9, time.Time{}, false},
		{"1.", 1e9, time.Time{}, false},
		{".5", 1e9, time.Time{}, false},
		{"1.2.3", 1e9, time.Time{}, false},
		{"abc", 1e9, time.Time{}, false},
		{"9223372037", 1e9, time.Time{}, false},
	} {
		got, err := parseUnix(tc.s, tc.unit)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseUnix(%q, %d) = %v, %v; want %v ok %v", tc.s, tc.unit, got, err, tc.want, tc.ok)
		}
	}
}

func TestMapErrorNamesRuleAndPath(t *testing.T) {
	m := mustMapper(t, `[{name: trade, measurement: trades, fields: {price: {path: data.p, type: float}}}]`)
	_, errs, matched := m.Map([]byte(`{"data":{}}`), received, nil)
	if !matched || len(errs) != 1 || errs[0].Rule != "trade" || errs[0].Path != "data.p" || !bytes.Contains([]byte(errs[0].Error()), []byte("missing")) {
		t.Fatalf("matched %v, errors %+v", matched, errs)
	}
}

// A message nesting deeper than the limit is refused before gjson parses
// it: 4 MiB of `[` would otherwise overflow the stack and kill the process.
// One within the limit maps as usual.
func TestMapRefusesDeepNesting(t *testing.T) {
	m := mustMapper(t, `[{name: any, measurement: m, fields: {x: {path: "0", type: string}}}]`)
	for _, tc := range []struct {
		name, msg string
		want      string // the only error; "" for a point
	}{
		{"bomb", strings.Repeat("[", 4<<20), ErrTooDeep},
		{"bomb in an object", `{"a":` + strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1001), ErrTooDeep},
		{"one past the default", strings.Repeat("[", DefaultMaxJSONDepth+1) + strings.Repeat("]", DefaultMaxJSONDepth+1), ErrTooDeep},
		{"at the default", strings.Repeat("[", DefaultMaxJSONDepth) + strings.Repeat("]", DefaultMaxJSONDepth), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points, errs, matched := m.Map([]byte(tc.msg), received, nil)
			switch {
			case tc.want != "" && (len(errs) != 1 || errs[0].Msg != tc.want || errs[0].Rule != "" || matched || len(points) != 0):
				t.Errorf("matched %v, %d points, errors %v; want only %q", matched, len(points), errs, tc.want)
			case tc.want == "" && (len(errs) != 0 || len(points) != 1):
				t.Errorf("%d points, errors %v; want one point", len(points), errs)
			}
		})
	}
}
