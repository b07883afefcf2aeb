package jsonws

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestFloatExact(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"0", true}, {"-0", true}, {"0.1", true}, {"52648.62", true}, {"4.74E-4", true},
		{"0.30000000000000004", true}, {"9007199254740992", true}, {"1e300", true},
		{"123456789012345", true}, {"1234567890123456789", false},
		{"9007199254740993", false}, {"137005445109359286410323766", false},
		{"1.37005445109359286410323766e26", false}, {"0.1000000000000000055511151231257827", false},
		{"1e400", false}, {"abc", false},
	} {
		if got := floatExact(tc.s); got != tc.ok {
			t.Errorf("floatExact(%s) = %v, want %v", tc.s, got, tc.ok)
		}
	}
}

func TestSameValueNumbers(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true}, {"1", "1e0", true}, {"100", "1e2", true}, {"-0", "0", true},
		{"1", "2", false}, {"0.1", "0.10000000000000001", false},
		{"137005445109359286410323766", "137005445109359286410323766", true},
		{"137005445109359286410323766", "137005445109359286410323767", false},
		{"137005445109359286410323766", "1.37005445109359286410323766e26", true},
		{"9007199254740993", "9007199254740992", false},
		{`"1"`, "1", false},
	} {
		if got := sameValue(gjson.Parse(tc.a), gjson.Parse(tc.b)); got != tc.want {
			t.Errorf("sameValue(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want string // exactDecimal of the result, or "" when refused
	}{
		{"12.50", "12.5"}, {"-0.005", "-0.005"}, {"+3", "3"}, {"1e-8", "0.00000001"}, {"1.5E3", "1500"},
		{"007", "7"}, {"137005445109359286410323766", "137005445109359286410323766"},
		{"", ""}, {".5", "0.5"}, {"1.", ""}, {"1e", ""}, {"0x10", ""}, {"1_000", ""}, {"NaN", ""}, {"Inf", ""},
		{"1e401", ""}, {"1e-401", ""}, {strings.Repeat("9", maxDecimalLen+1), ""},
	} {
		r, ok := parseDecimal(tc.s)
		got := ""
		if ok {
			got = exactDecimal(r)
		}
		if got != tc.want {
			t.Errorf("parseDecimal(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// Scaling keeps every digit of the product: the type rounds it once.
func TestScaleIsExact(t *testing.T) {
	for _, tc := range []struct{ v, scale, want string }{
		{"0.1", "3", "0.3"}, {"16578.50", "0.001", "16.5785"}, {"-12345", "1e-8", "-0.00012345"},
		{"137005445109359286410323766", "10", "1370054451093592864103237660"},
		{"1.1", "1.1", "1.21"},
	} {
		tf, err := compileTransforms(ValueSpec{Scale: []byte(tc.scale)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tf.apply(gjson.Parse(tc.v))
		if err != nil || got.Raw != tc.want || got.Type != gjson.Number {
			t.Errorf("%s × %s = %s (%v), want %s", tc.v, tc.scale, got.Raw, err, tc.want)
		}
	}
}

func TestDecimalSign(t *testing.T) {
	for s, want := range map[string]string{
		"1": "1", "-1": "-1", "0": "0", "-0": "0", "-0.000": "0", "+2.5": "1", "-1e-9": "-1", "0e5": "0",
	} {
		if got := decimalSign(s); got != want {
			t.Errorf("decimalSign(%s) = %s, want %s", s, got, want)
		}
	}
}

// A table holds at most MaxTableEntries keys: a server announcing
// channel after channel cannot grow it without bound. Known keys are
// still updated.
func TestStateTableBounded(t *testing.T) {
	m := mustMapper(t, `
- {name: sub, match: [{path: event, equals: subscribed}], remember: [{table: ch, key: chanId, value: symbol}]}
- {name: t, match: [{path: "0", in: ch}], measurement: m, tags: {s: {path: "0", lookup: ch}}, fields: {x: {value: 1}}}
`)
	st := NewState()
	sub := func(id int, sym string) []MapError {
		_, errs, _ := m.MapState(fmt.Appendf(nil, `{"event":"subscribed","chanId":%d,"symbol":%q}`, id, sym), received, nil, st)
		return errs
	}
	for i := range MaxTableEntries {
		if errs := sub(i, "S"); len(errs) != 0 {
			t.Fatalf("entry %d: %v", i, errs)
		}
	}
	if errs := sub(MaxTableEntries, "S"); len(errs) != 1 || !strings.Contains(errs[0].Msg, "table ch is full (10000 entries)") {
		t.Errorf("one past the bound: %v", errs)
	}
	if errs := sub(7, "NEW"); len(errs) != 0 {
		t.Errorf("updating a known key: %v", errs)
	}
	if n := len(st.Entries("ch")); n != MaxTableEntries {
		t.Errorf("%d entries", n)
	}
	points, errs, _ := m.MapState([]byte(`[7]`), received, nil, st)
	if len(errs) != 0 || len(points) != 1 || points[0].Tags[0].Value != "NEW" {
		t.Errorf("lookup after update: %v %v", points, errs)
	}
	// Without a State nothing is remembered, and nothing is looked up.
	if points, _, matched := m.Map([]byte(`[7]`), received, nil); matched || len(points) != 0 {
		t.Errorf("Map without state: matched %v, %v", matched, points)
	}
}
