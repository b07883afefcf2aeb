package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testConfig has every shape Decode walks: nested structs and pointers
// to them, lists and maps of structs and of values, an embedded struct,
// and values that decode themselves.
type testConfig struct {
	Name    string              `json:"name"`
	Count   int                 `json:"count"`
	Wait    Duration            `json:"wait"`
	Opt     *Duration           `json:"opt"`
	Tags    []string            `json:"tags"`
	Limits  map[string]Duration `json:"limits"`
	TLS     testTLS             `json:"tls"`
	Retry   *testRetry          `json:"retry"`
	Rules   []testRule          `json:"rules"`
	Raw     json.RawMessage     `json:"raw"`
	At      time.Time           `json:"at"`
	Skipped string              `json:"-"`
	testEmbedded
}

type testTLS struct {
	CAFile string `json:"ca_file"`
	Verify bool   `json:"verify"`
}

type testRetry struct {
	Max   Duration `json:"max"`
	Tries int      `json:"tries"`
}

type testRule struct {
	Match  []string          `json:"match"`
	Fields map[string]string `json:"fields"`
	Every  Duration          `json:"every"`
}

type testEmbedded struct {
	Extra string `json:"extra"`
}

func decodeErrs(t *testing.T, raw string, v any) []string {
	t.Helper()
	err := ConfigureRequest{Config: json.RawMessage(raw)}.Decode(v)
	if err == nil {
		return nil
	}
	var ces ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("%s: %v (%T), want ConfigErrors", raw, err, err)
	}
	var out []string
	for _, e := range ces {
		out = append(out, e.Error())
	}
	return out
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      []string
	}{
		{"valid", `{"name":"a","count":2,"wait":"1s","opt":"2s","tags":["x"],"limits":{"a":"1m"},"tls":{"ca_file":"f"},` +
			`"retry":{"max":"5s","tries":3},"rules":[{"match":["m"],"fields":{"k":"v"},"every":"1s"}],"raw":{"any":[1]},` +
			`"at":"2024-01-01T00:00:00Z","extra":"e"}`, nil},
		{"empty", ``, nil},
		{"null", `null`, nil},
		{"not an object", `[1]`, []string{"must be a mapping, got a list"}},
		{"not JSON", `{"name":`, []string{"unexpected end of JSON input"}},
		{"every kind of problem, in order", `{"count":"x","wait":"soon","opt":true,"tags":["a",1,"b",{}],"limits":{"a":"1m","b":"x","c":5},` +
			`"tls":{"ca_file":1,"verfy":true},"retry":{"max":"no","tries":"3"},"rules":[{"match":"m"},{"fields":{"k":1},"every":"x"},{"nope":1}],` +
			`"at":"yesterday","Skipped":"x","extra":2,"zzz":null}`, []string{
			"count: must be an integer, got a string",
			`wait: must be a duration like "500ms" or "5m", got "soon"`,
			`opt: must be a duration like "500ms" or "5m", got a boolean`,
			"tags[1]: must be a string, got a number",
			"tags[3]: must be a string, got a mapping",
			`limits.b: must be a duration like "500ms" or "5m", got "x"`,
			`limits.c: must be a duration with a unit, such as "30s" (a bare number is not a duration)`,
			"tls.ca_file: must be a string, got a number",
			"tls.verfy: unknown key",
			`retry.max: must be a duration like "500ms" or "5m", got "no"`,
			"retry.tries: must be an integer, got a string",
			"rules[0].match: must be a list, got a string",
			"rules[1].fields.k: must be a string, got a number",
			`rules[1].every: must be a duration like "500ms" or "5m", got "x"`,
			"rules[2].nope: unknown key",
			`at: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`,
			"Skipped: unknown key",
			"extra: must be a string, got a number",
			"zzz: unknown key",
		}},
		{"struct where a value is", `{"tls":"x","retry":[1],"rules":{"a":1}}`, []string{
			"tls: must be a mapping, got a string",
			"retry: must be a mapping, got a list",
			"rules: must be a list, got a mapping",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			if got := decodeErrs(t, tc.raw, &cfg); !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// What decodes is set even when other keys fail; a map value that failed
// is left out.
func TestDecodeSetsWhatDecodes(t *testing.T) {
	cfg := testConfig{Name: "default", Count: 7}
	errs := decodeErrs(t, `{"count":"x","wait":"2s","limits":{"a":"1m","b":"x"},"retry":{"tries":3},"rules":[{"every":"3s"}],"extra":"e","NAME":"upper"}`, &cfg)
	if len(errs) != 2 {
		t.Fatalf("errors %v", errs)
	}
	want := testConfig{Name: "upper", Count: 7, Wait: Duration(2 * time.Second), Limits: map[string]Duration{"a": Duration(time.Minute)},
		Retry: &testRetry{Tries: 3}, Rules: []testRule{{Every: Duration(3 * time.Second)}}, testEmbedded: testEmbedded{Extra: "e"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("decoded\n  %+v\nwant\n  %+v", cfg, want)
	}
	// null clears a pointer, a list and a map, as encoding/json does.
	cfg = testConfig{Retry: &testRetry{}, Tags: []string{"x"}, Limits: map[string]Duration{}}
	if errs := decodeErrs(t, `{"retry":null,"tags":null,"limits":null,"tls":null}`, &cfg); errs != nil || cfg.Retry != nil || cfg.Tags != nil || cfg.Limits != nil {
		t.Errorf("null: %v %+v", errs, cfg)
	}
}

// The checks record what fails, each once, and leave alone what did not
// decode: a bad value is reported once.
func TestConfigCheck(t *testing.T) {
	var cfg testConfig
	c := ConfigureRequest{Config: json.RawMessage(`{"count":"x","retry":"x","name":"n","tls":{"ca_file":"f"}}`)}.Check(&cfg)
	c.Int("count", cfg.Count, 1, 10)                       // did not decode: skipped
	c.Duration("retry.max", 0, time.Second, math.MaxInt64) // under a key that did not decode: skipped
	c.Required("wait", cfg.Wait != 0)
	c.Int("count2", 0, 1, math.MaxInt)
	c.Int("count3", 11, math.MinInt, 10)
	c.Float("rate", math.NaN(), 0, math.Inf(1))
	c.Duration("d", time.Minute, 0, time.Second)
	c.OneOf("mode", "x", "a", "b", "c")
	c.OneOf("one", "x", "a")
	c.That("tls", false, "applies only to wss:// URLs")
	c.That("tls.ca_file", false, "holds no PEM certificate") // a check at a parent does not hide its children
	c.That("tls", false, "a second problem")                 // but one per key
	c.Add("rules[0]", ConfigErrors{{Key: "fields", Msg: "bad"}, {Key: "[1]", Msg: "worse"}})
	c.Add("extra", errors.New("plain"))
	if !c.That("name", true, "never") || c.OK("count") || c.OK("retry.max") || !c.OK("name") {
		t.Error("That/OK answer wrongly")
	}
	var got []string
	for _, e := range c.Err().(ConfigErrors) {
		got = append(got, e.Error())
	}
	want := []string{
		"count: must be an integer, got a string",
		"retry: must be a mapping, got a string",
		"wait: is required",
		"count2: must be at least 1, got 0",
		"count3: must be at most 10, got 11",
		"rate: must be at least 0, got NaN",
		"d: must be between 0s and 1s, got 1m0s",
		`mode: must be a, b or c, got "x"`,
		`one: must be a, got "x"`,
		"tls: applies only to wss:// URLs",
		"tls.ca_file: holds no PEM certificate",
		"rules[0].fields: bad",
		"rules[0][1]: worse",
		"extra: plain",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if err := (&ConfigCheck{}).Err(); err != nil {
		t.Errorf("an empty check: %v", err)
	}
}

// FuzzDecode: on any input, Decode agrees with encoding/json (unknown
// keys refused) wherever encoding/json decodes it: the same value, no
// error. Where encoding/json fails, Decode fails too.
func FuzzDecode(f *testing.F) {
	f.Add(`{"name":"a","count":2,"wait":"1s","tags":["x"],"limits":{"a":"1m"},"tls":{"ca_file":"f"},"rules":[{"every":"1s"}]}`)
	f.Add(`{"count":"x","wait":"soon","tags":["a",1],"limits":{"b":"x"},"tls":{"verfy":true},"rules":[{"nope":1}]}`)
	f.Add(`{"retry":null,"tags":null,"tls":null,"NAME":"x","Extra":"y"}`)
	f.Add(`{"raw":{"a":[1,{"b":null}]},"at":"2024-01-01T00:00:00Z","opt":5}`)
	f.Add(`[]`)
	f.Add(`{"name":"a","name":"b"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var got testConfig
		gerr := ConfigureRequest{Config: json.RawMessage(raw)}.Decode(&got)
		if s := strings.TrimSpace(raw); s == "" || s == "null" {
			if gerr != nil {
				t.Fatalf("%q: %v", raw, gerr)
			}
			return
		}
		var want testConfig
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.DisallowUnknownFields()
		werr := dec.Decode(&want)
		if !json.Valid([]byte(raw)) {
			werr = errors.New("not JSON") // the decoder stops after the first value
		}
		if werr != nil {
			if gerr == nil {
				t.Fatalf("%q: encoding/json failed (%v), Decode did not", raw, werr)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("%q: Decode failed where encoding/json did not: %v", raw, gerr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n Decode       %+v\n encoding/json %+v", raw, got, want)
		}
	})
}

func TestTypeWord(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"", "a string"},
		{true, "true or false"},
		{int64(0), "an integer"},
		{uint8(0), "a non-negative integer"},
		{0.5, "a number"},
		{[]string{}, "a list"},
		{map[string]int{}, "a mapping"},
		{struct{}{}, "a mapping"},
		{new([]int), "a list"}, // a pointer says what it points to
	} {
		if got := TypeWord(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("TypeWord(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
