package lineproto

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// representable is an independent statement of which names the encoder
// must accept: non-empty valid UTF-8 without control characters, and no
// backslash at the end or before '\', ',', ' ', '=' or '"'.
func representable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c == '\\' && (i+1 == len(s) || strings.IndexByte(`\, ="`, s[i+1]) >= 0) {
			return false
		}
	}
	return true
}

// decode parses one line with Decode, which wraps the reference decoder.
func decode(t *testing.T, line []byte) sluice.Point {
	t.Helper()
	var got []sluice.Point
	bad, err := Decode(line, time.Time{}, func(p sluice.Point) { got = append(got, p) })
	if bad != 0 || len(got) != 1 {
		t.Fatalf("decoding %q: %d points, %d bad: %v", line, len(got), bad, err)
	}
	return got[0]
}

// FuzzAppendPoint checks that every encoded point decodes to itself with
// the reference decoder (uints coming back as ints, empty tags left out),
// and that the encoder refuses exactly the points documented as
// unrepresentable.
func FuzzAppendPoint(f *testing.F) {
	f.Add("cpu", "host", "a", "msg", "hello", int64(1), uint64(2), 3.5, true, int64(1700000000000000000))
	f.Add("a b,c", "k =,", `v\x`, "f\"", "q\"\\\n", int64(-1), uint64(math.MaxInt64), math.SmallestNonzeroFloat64, false, int64(-1))
	f.Add("é", "東京", "", "😀", "", int64(math.MinInt64), uint64(math.MaxUint64), math.NaN(), false, int64(0))
	f.Add("#x", "a\\", "b", "c", "\r\n", int64(0), uint64(0), math.Inf(1), true, int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk, s string, i int64, u uint64, fv float64, b bool, ts int64) {
		p := sluice.Point{
			Measurement: m,
			Tags:        []sluice.Tag{{Key: tk, Value: tv}},
			Fields: []sluice.Field{
				{Key: fk, Value: sluice.String(s)},
				{Key: "\x01i", Value: sluice.Int(i)},
				{Key: "\x01u", Value: sluice.Uint(u)},
				{Key: "\x01f", Value: sluice.Float(fv)},
				{Key: "\x01b", Value: sluice.Bool(b)},
			},
		}
		// The fixed keys above are unrepresentable on purpose only in the
		// first pass; the second pass renames them.
		for pass := range 2 {
			if pass == 1 {
				for j := 1; j < len(p.Fields); j++ {
					p.Fields[j].Key = p.Fields[j].Key[1:]
					if p.Fields[j].Key == fk {
						return
					}
				}
			}
			line, err := appendPoint(nil, &p, ts)
			want := pass == 1 &&
				representable(m) && m[0] != '#' &&
				(tv == "" || representable(tk) && representable(tv)) &&
				representable(fk) && utf8.ValidString(s) &&
				u <= math.MaxInt64 && !math.IsNaN(fv) && !math.IsInf(fv, 0)
			if (err == nil) != want {
				t.Fatalf("pass %d: appendPoint error = %v, want success %v, line %q", pass, err, want, line)
			}
			if err != nil {
				if len(line) != 0 {
					t.Fatalf("rejected point left %q", line)
				}
				continue
			}
			got := decode(t, line)
			wantP := p
			wantP.Tags = nil
			if tv != "" {
				wantP.Tags = p.Tags
			}
			wantP.Fields = append([]sluice.Field(nil), p.Fields...)
			wantP.Fields[2].Value = sluice.Int(int64(u))
			wantP.Time = time.Unix(0, ts)
			if !got.Equal(&wantP) {
				t.Fatalf("round trip of %q:\n got %+v\nwant %+v", line, got, wantP)
			}
		}
	})
}
