package lineproto

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func TestDecode(t *testing.T) {
	def := time.Unix(0, 42)
	tests := []struct {
		name string
		in   string
		want []sluice.Point
		bad  int
	}{
		{"kinds", `m,b=2,a=1 f=1.5,i=-3i,u=7u,s="x \"y\"",t=t 1700000000123456789`, []sluice.Point{{
			Measurement: "m",
			Tags:        tg("a", "1", "b", "2"), // sorted
			Fields: []sluice.Field{fl("f", sluice.Float(1.5)), fl("i", sluice.Int(-3)), fl("u", sluice.Uint(7)),
				fl("s", sluice.String(`x "y"`)), fl("t", sluice.Bool(true))},
			Time: time.Unix(0, 1700000000123456789),
		}}, 0},
		{"no timestamp takes the default", "m f=1i", []sluice.Point{{Measurement: "m", Fields: []sluice.Field{fl("f", sluice.Int(1))}, Time: def}}, 0},
		{"escapes", `a\ b,k\ \=\,=v\ \=\, f\ x=1i 1`, []sluice.Point{{Measurement: "a b", Tags: tg("k =,", "v =,"), Fields: []sluice.Field{fl("f x", sluice.Int(1))}, Time: time.Unix(0, 1)}}, 0},
		{"bad line skipped, others kept", "m f=1i 1\nm f= 2\nm,x f=1i 3\nm g=2i 4\n", []sluice.Point{
			{Measurement: "m", Fields: []sluice.Field{fl("f", sluice.Int(1))}, Time: time.Unix(0, 1)},
			{Measurement: "m", Fields: []sluice.Field{fl("g", sluice.Int(2))}, Time: time.Unix(0, 4)},
		}, 2},
		{"no fields", "m 1", nil, 1},
		{"uint out of range", "m u=18446744073709551616u 1", nil, 1},
		{"empty and comments", "\n# comment\n\n", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sluice.Point
			bad, first := Decode([]byte(tt.in), def, func(p sluice.Point) { got = append(got, p) })
			if bad != tt.bad || (bad > 0) != (first != nil) {
				t.Fatalf("bad = %d (first %v), want %d", bad, first, tt.bad)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d points %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(&tt.want[i]) {
					t.Errorf("point %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzDecode: any input decodes without panicking, and whatever it yields
// encodes (uints tagged) and decodes back to the same points.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`m,a=1 f=1.5,i=-3i,u=7u,s="x",t=t 17`))
	f.Add([]byte("m f=1i\nbad\nm\\ x,k=v g=\"a\nb\" -5\n"))
	f.Add([]byte(`m u=18446744073709551615u,f=-0,g=1e300 1`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var first []sluice.Point
		Decode(in, time.Unix(0, 0), func(p sluice.Point) { first = append(first, p) })
		for _, p := range first {
			line, err := AppendPoint(nil, &p, p.Time.UnixNano(), UintsTagged)
			if err != nil {
				// The decoder is more lenient than the encoder (empty
				// tag values, names it cannot write back exactly).
				continue
			}
			var again []sluice.Point
			if bad, err := Decode(line, time.Time{}, func(q sluice.Point) { again = append(again, q) }); bad != 0 {
				t.Fatalf("re-decoding %q: %v", line, err)
			}
			if len(again) != 1 || !again[0].Equal(&p) {
				t.Fatalf("round trip of %q:\n got %+v\nwant %+v", line, again, p)
			}
		}
	})
}

func TestDecodeRoundTripTagged(t *testing.T) {
	p := pt("trades", tg("exchange", "binance", "symbol", "BTC USDT"),
		fl("price", sluice.Float(math.Pi)), fl("trade_id", sluice.Int(1<<62)), fl("n", sluice.Uint(math.MaxUint64)),
		fl("note", sluice.String("line\nbreak \"q\"")), fl("ok", sluice.Bool(false)))
	line, err := AppendPoint(nil, &p, p.Time.UnixNano(), UintsTagged)
	if err != nil {
		t.Fatal(err)
	}
	var got []sluice.Point
	if bad, err := Decode(line, time.Time{}, func(q sluice.Point) { got = append(got, q) }); bad != 0 {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Equal(&p) {
		t.Fatalf("got %+v from %q, want %+v", got, line, p)
	}
	if strings.Count(string(line), "\n") != 2 {
		t.Errorf("line %q: the string's newline should be kept as is", line)
	}
}
