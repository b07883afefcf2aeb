package influxdb

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", defaultRetryAfter},
		{"0", 0},
		{" 30 ", 30 * time.Second},
		{"-4", defaultRetryAfter},
		{"99999999999", 24 * time.Hour},
		{now.Add(42 * time.Second).Format(http.TimeFormat), 42 * time.Second},
		{now.Add(42 * time.Second).Format(time.RFC850), 42 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"tomorrow", defaultRetryAfter},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRejection(t *testing.T) {
	tests := []struct {
		name string
		body string
		want rejection
	}{
		{
			name: "1.8 unable to parse",
			body: `{"error":"partial write: unable to parse 'm f=x 1': invalid boolean\nunable to parse 'm g=y 2': invalid boolean dropped=0"}`,
			want: rejection{
				msg:        "partial write: unable to parse 'm f=x 1': invalid boolean\nunable to parse 'm g=y 2': invalid boolean dropped=0",
				pointLevel: true, partial: true, dropped: 0,
				quoted: []string{"m f=x 1': invalid boolean\nunable to parse 'm g=y 2': invalid boolean dropped=0", "m g=y 2': invalid boolean dropped=0"},
			},
		},
		{
			name: "1.8 type conflict",
			body: `{"error":"partial write: field type conflict: input field \"v\" on measurement \"m\" is type string, already exists as type float dropped=3"}`,
			want: rejection{
				msg:        `partial write: field type conflict: input field "v" on measurement "m" is type string, already exists as type float dropped=3`,
				pointLevel: true, partial: true, dropped: 3,
			},
		},
		{
			name: "1.8 in-batch conflict",
			body: `{"error":"field type conflict"}`,
			want: rejection{msg: "field type conflict", pointLevel: true, dropped: -1},
		},
		{
			name: "1.8 request-level",
			body: `{"error":"database is required"}`,
			want: rejection{msg: "database is required", dropped: -1},
		},
		{
			name: "2.x unable to parse",
			body: `{"code":"invalid","message":"unable to parse 'm f= 1': missing field value"}`,
			want: rejection{msg: "unable to parse 'm f= 1': missing field value", pointLevel: true, dropped: -1, quoted: []string{"m f= 1': missing field value"}},
		},
		{
			name: "cloud line numbers",
			body: `{"code":"invalid","line":2,"message":"failed to parse line protocol: errors encountered on 2 lines:\nerror parsing line 2 (1-based): Invalid\nerror parsing line 5 (1-based): Invalid"}`,
			want: rejection{
				msg:        "failed to parse line protocol: errors encountered on 2 lines:\nerror parsing line 2 (1-based): Invalid\nerror parsing line 5 (1-based): Invalid",
				pointLevel: true, dropped: -1, numbers: []int{2, 2, 5},
			},
		},
		{
			name: "cloud line_errors",
			body: `{"code":"invalid","line_errors":[{"err":"x","index":3}],"message":"failed to parse line protocol: errors encountered on 1 lines"}`,
			want: rejection{msg: "failed to parse line protocol: errors encountered on 1 lines", pointLevel: true, dropped: -1, numbers: []int{3}},
		},
		{
			name: "3.x data array",
			body: `{"error":"partial write of line protocol occurred","data":[{"original_line":"m f=1 1","line_number":1,"error_message":"x"},{"line_number":4,"error_message":"y"}]}`,
			want: rejection{msg: "partial write of line protocol occurred", pointLevel: true, partial: true, dropped: -1, exact: []string{"m f=1 1"}, numbers: []int{4}},
		},
		{
			name: "3.x data object",
			body: `{"error":"parsing failed for write_lp endpoint","data":{"original_line":"m f=1 1","line_number":1,"error_message":"x"}}`,
			want: rejection{msg: "parsing failed for write_lp endpoint", pointLevel: true, dropped: -1, exact: []string{"m f=1 1"}},
		},
		{
			name: "plain text",
			body: "unable to parse 'x': bad\n",
			want: rejection{msg: "unable to parse 'x': bad", pointLevel: true, dropped: -1, quoted: []string{"x': bad"}},
		},
		{
			name: "empty",
			body: "",
			want: rejection{dropped: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseRejection([]byte(tt.body))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMatchQuoted(t *testing.T) {
	lines := map[string]int{
		"m s=\"a': b\" 1":       0, // the line itself holds "': "
		"m s=\"a\" 1":           1,
		"m s=\"multi\nline\" 2": 2,
	}
	tests := []struct {
		tail string
		want int
		ok   bool
	}{
		{"m s=\"a': b\" 1': invalid", 0, true},
		{"m s=\"a\" 1': invalid dropped=0", 1, true},
		{"m s=\"multi\nline\" 2': x", 2, true},
		{"other 1': x", 0, false},
		{"m s=\"a\" 1", 0, false},
	}
	for _, tt := range tests {
		got, ok := matchQuoted(tt.tail, lines)
		if ok != tt.ok || got != tt.want {
			t.Errorf("matchQuoted(%q) = %d, %v; want %d, %v", tt.tail, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIdentifyLineNumbers(t *testing.T) {
	var b batch
	for _, l := range []string{"a f=1 1\n", "b s=\"x\ny\" 1\n", "c f=1 1\n", "d f=1 1\n"} {
		b.buf = append(b.buf, l...)
		b.ends = append(b.ends, len(b.buf))
	}
	// Physical lines: a=1, b=2-3, c=4, d=5.
	bad := b.identify(b.all(), rejection{numbers: []int{3, 5, 9}, msg: "x"})
	if len(bad) != 2 || bad[1] == "" || bad[3] == "" {
		t.Errorf("identify = %v, want lines 1 and 3", bad)
	}
	// A subset of lines numbers from its own start.
	bad = b.identify([]int{2, 3}, rejection{numbers: []int{2}, msg: "x"})
	if _, ok := bad[3]; !ok || len(bad) != 1 {
		t.Errorf("identify on subset = %v, want line 3", bad)
	}
	if got := string(b.body([]int{0, 2})); got != "a f=1 1\nc f=1 1\n" {
		t.Errorf("body of a non-contiguous subset = %q", got)
	}
}

func FuzzParseRejection(f *testing.F) {
	f.Add([]byte(`{"error":"partial write: unable to parse 'm f=x 1': invalid dropped=0"}`))
	f.Add([]byte(`{"code":"invalid","line":2,"message":"error parsing line 2 (1-based): x"}`))
	f.Add([]byte(`{"error":"e","data":[{"original_line":"m","line_number":1}]}`))
	f.Add([]byte("unable to parse '"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := parseRejection(body)
		lines := map[string]int{"m f=x 1": 0}
		for _, q := range r.quoted {
			matchQuoted(q, lines)
		}
		var b batch
		b.buf = append(b.buf, "m f=x 1\nn f=y 2\n"...)
		b.ends = append(b.ends, 8, 16)
		for i, reason := range b.identify(b.all(), r) {
			if i < 0 || i > 1 || reason == "" && len(r.quoted) == 0 && r.msg != "" {
				t.Fatalf("identify named line %d (%q)", i, reason)
			}
		}
	})
}
