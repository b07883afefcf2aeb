package lineproto

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func pt(m string, tags []sluice.Tag, fields ...sluice.Field) sluice.Point {
	return sluice.Point{Measurement: m, Tags: tags, Fields: fields, Time: time.Unix(0, 1700000000123456789)}
}

func tg(kv ...string) []sluice.Tag {
	var ts []sluice.Tag
	for i := 0; i < len(kv); i += 2 {
		ts = append(ts, sluice.Tag{Key: kv[i], Value: kv[i+1]})
	}
	return ts
}

func fl(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }

// appendPoint is AppendPoint as the InfluxDB sink calls it.
func appendPoint(dst []byte, p *sluice.Point, ts int64) ([]byte, error) {
	return AppendPoint(dst, p, ts, UintsAsInts)
}

func TestAppendPoint(t *testing.T) {
	const ts = " 1700000000123456789\n"
	tests := []struct {
		name string
		p    sluice.Point
		want string // without the timestamp
	}{
		{"float", pt("m", nil, fl("f", sluice.Float(0.1))), `m f=0.1`},
		{"float full precision", pt("m", nil, fl("f", sluice.Float(1.0000000000000002))), `m f=1.0000000000000002`},
		{"float integral", pt("m", nil, fl("f", sluice.Float(3))), `m f=3`},
		{"float exponent", pt("m", nil, fl("f", sluice.Float(1e300))), `m f=1e+300`},
		{"float tiny", pt("m", nil, fl("f", sluice.Float(5e-324))), `m f=5e-324`},
		{"float negative zero", pt("m", nil, fl("f", sluice.Float(math.Copysign(0, -1)))), `m f=-0`},
		{"int", pt("m", nil, fl("i", sluice.Int(-42))), `m i=-42i`},
		{"int min", pt("m", nil, fl("i", sluice.Int(math.MinInt64))), `m i=-9223372036854775808i`},
		{"uint as int", pt("m", nil, fl("u", sluice.Uint(math.MaxInt64))), `m u=9223372036854775807i`},
		{"bools", pt("m", nil, fl("t", sluice.Bool(true)), fl("f", sluice.Bool(false))), `m t=t,f=f`},
		{"string escapes", pt("m", nil, fl("s", sluice.String(`a "q" \ b`))), `m s="a \"q\" \\ b"`},
		{"string newline kept", pt("m", nil, fl("s", sluice.String("a\nb\r\tc"))), "m s=\"a\nb\r\tc\""},
		{"string empty", pt("m", nil, fl("s", sluice.String(""))), `m s=""`},
		{"string backslash n", pt("m", nil, fl("s", sluice.String(`\n`))), `m s="\\n"`},
		{"measurement escapes", pt("a b,c=d", nil, fl("f", sluice.Int(1))), `a\ b\,c=d f=1i`},
		{"tag escapes", pt("m", tg("k =,", "v =,"), fl("f", sluice.Int(1))), `m,k\ \=\,=v\ \=\, f=1i`},
		{"field key escapes", pt("m", nil, fl("a b=c,d", sluice.Int(1))), `m a\ b\=c\,d=1i`},
		{"quotes in names", pt(`"m"`, tg(`"k"`, `"v"`), fl(`"f"`, sluice.Int(1))), `"m","k"="v" "f"=1i`},
		{"backslash before ordinary byte", pt(`a\b`, tg(`k\x`, `v\y`), fl(`f\z`, sluice.Int(1))), `a\b,k\x=v\y f\z=1i`},
		{"unicode", pt("température", tg("città", "Zürich 東京"), fl("ß", sluice.String("😀"))), `température,città=Zürich\ 東京 ß="😀"`},
		{"empty tag value left out", pt("m", tg("a", "", "b", "x"), fl("f", sluice.Int(1))), `m,b=x f=1i`},
		{"many tags and fields", pt("m", tg("a", "1", "b", "2"), fl("x", sluice.Float(1.5)), fl("y", sluice.String("s"))), `m,a=1,b=2 x=1.5,y="s"`},
		{"hash not first", pt("m#", nil, fl("#f", sluice.Int(1))), `m# #f=1i`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendPoint([]byte("prefix\n"), &tt.p, 1700000000123456789)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if want := "prefix\n" + tt.want + ts; string(got) != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestAppendPointRejects(t *testing.T) {
	tests := []struct {
		name string
		p    sluice.Point
		want error
	}{
		{"no measurement", pt("", nil, fl("f", sluice.Int(1))), errNoMeasurement},
		{"comment", pt("#m", nil, fl("f", sluice.Int(1))), errCommentName},
		{"no fields", pt("m", tg("a", "b")), errNoFields},
		{"NaN", pt("m", nil, fl("f", sluice.Float(math.NaN()))), errFloat},
		{"Inf", pt("m", nil, fl("f", sluice.Float(math.Inf(-1)))), errFloat},
		{"uint too big", pt("m", nil, fl("u", sluice.Uint(math.MaxInt64+1))), errUintRange},
		{"invalid kind", pt("m", nil, fl("f", sluice.Value{})), errInvalidKind},
		{"newline in measurement", pt("a\nb", nil, fl("f", sluice.Int(1))), errControl},
		{"tab in tag value", pt("m", tg("k", "a\tb"), fl("f", sluice.Int(1))), errControl},
		{"DEL in field key", pt("m", nil, fl("a\x7f", sluice.Int(1))), errControl},
		{"trailing backslash", pt("m", tg("k", `v\`), fl("f", sluice.Int(1))), errBackslash},
		{"backslash before comma", pt(`a\,b`, nil, fl("f", sluice.Int(1))), errBackslash},
		{"backslash before space", pt("m", nil, fl(`a\ b`, sluice.Int(1))), errBackslash},
		{"double backslash", pt("m", tg(`a\\b`, "v"), fl("f", sluice.Int(1))), errBackslash},
		{"backslash before quote", pt("m", tg("k", `a\"`), fl("f", sluice.Int(1))), errBackslash},
		{"invalid utf8 name", pt("m\xff", nil, fl("f", sluice.Int(1))), errUTF8},
		{"invalid utf8 string", pt("m", nil, fl("f", sluice.String("\xc3"))), errUTF8},
		{"empty tag key", pt("m", tg("", "v"), fl("f", sluice.Int(1))), errEmptyKey},
		{"empty field key", pt("m", nil, fl("", sluice.Int(1))), errEmptyKey},
		{"duplicate tag", pt("m", tg("a", "1", "a", "2"), fl("f", sluice.Int(1))), errDuplicateTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep\n")
			got, err := appendPoint(prefix, &tt.p, 1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if string(got) != "keep\n" {
				t.Errorf("rejected point left %q in the buffer", got)
			}
		})
	}
}

func TestAppendPointUintsTagged(t *testing.T) {
	p := pt("m", nil, fl("u", sluice.Uint(math.MaxUint64)), fl("i", sluice.Int(-1)))
	got, err := AppendPoint(nil, &p, 5, UintsTagged)
	if err != nil {
		t.Fatal(err)
	}
	if want := "m u=18446744073709551615u,i=-1i 5\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
