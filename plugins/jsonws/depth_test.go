package jsonws

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestNestingDepth(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		limit    int
		want     int
	}{
		{"empty", ``, 8, 0},
		{"scalar", `12.5`, 8, 0},
		{"string", `"[[[{{{"`, 8, 0},
		{"object", `{}`, 8, 1},
		{"nested objects and arrays", `{"a":[1,2],"b":{"c":[]}}`, 8, 3},
		{"siblings do not add", `[[1],[2],[3],[4]]`, 8, 2},
		{"deepest branch counts", `[[1],[[[2]]],[3]]`, 8, 4},
		{"brackets in strings", `{"k":"]]]]}}}","v":[{"w":"[[[["}]}`, 8, 3},
		{"escaped quote", `["a\"[[[[[[[[[["]`, 8, 1},
		{"escaped backslash ends string", `["a\\",[[1]]]`, 8, 3},
		{"escaped backslash before quote", `["\\\"[[[[[[[[[[["]`, 8, 1},
		{"at the limit", `[[[[]]]]`, 4, 4},
		{"one past the limit", `[[[[[]]]]]`, 4, 5},
		{"far past the limit stops at limit+1", strings.Repeat("[", 1<<20), 64, 65},
		{"unclosed", `[[[`, 8, 3},
		{"closing first cannot hide depth", `]]]]][[[[[`, 4, 5},
		{"mismatched closers", `[}[}[}`, 8, 1},
		{"unterminated string hides the rest", `["[[[[[[[[`, 2, 1},
		{"limit zero", `{}`, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nestingDepth([]byte(tc.in), tc.limit); got != tc.want {
				t.Errorf("nestingDepth(%.40q, %d) = %d, want %d", tc.in, tc.limit, got, tc.want)
			}
			if got, want := tooDeep([]byte(tc.in), tc.limit), tc.want > tc.limit; got != want {
				t.Errorf("tooDeep = %v, want %v", got, want)
			}
		})
	}
}

// refDepth is the nesting of valid JSON as encoding/json's tokenizer sees
// it.
func refDepth(b []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // a valid number may not fit a float64
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest, nil
		}
		if err != nil {
			return 0, err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzNestingDepth checks the scan against encoding/json on valid JSON,
// and on any input that the result respects the limit and that a message
// within the limit is safe to hand to gjson.
func FuzzNestingDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[1],[[2]]]`, `{"a":"]]\"[[","b":[{"c":[]}]}`, `]]][[[`, `"\\"`, `[`, `{"a":[1,2,{"b":null}]}`} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = max(0, limit%64)
		d := nestingDepth(b, limit)
		if d < 0 || d > limit+1 {
			t.Fatalf("nestingDepth(%q, %d) = %d, outside 0..limit+1", b, limit, d)
		}
		if d <= limit {
			// The full depth, whatever the limit above it.
			if full := nestingDepth(b, 1<<30); full != d {
				t.Fatalf("depth %d under limit %d, %d without one", d, limit, full)
			}
		}
		if json.Valid(b) {
			want, err := refDepth(b)
			if err != nil {
				t.Fatalf("encoding/json: valid but %v", err)
			}
			if full := nestingDepth(b, 1<<30); full != want {
				t.Fatalf("nestingDepth(%q) = %d, encoding/json says %d", b, full, want)
			}
			if !gjson.ValidBytes(b) {
				t.Fatalf("gjson rejects valid JSON %q", b)
			}
		}
	})
}

func BenchmarkNestingDepth(b *testing.B) {
	msg := []byte(`{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":3456789012,"p":"43123.45000000","q":"0.00123000","T":1700000000122,"m":true,"M":true}`)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		nestingDepth(msg, DefaultMaxJSONDepth)
	}
}
