package pipeline

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

func TestNormalize(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := config.Limits{MaxTags: 2, MaxFields: 3, MaxKeyLength: 8, MaxValueLength: 10, MaxFuture: time.Hour}
	n := NewNormalizer(limits, func() time.Time { return now })
	f := func(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }
	ok := []sluice.Field{f("x", sluice.Int(1))}
	for _, tc := range []struct {
		name string
		p    sluice.Point
		want Reason // "" means kept
	}{
		{"valid", sluice.Point{Measurement: "m", Fields: ok, Time: now}, ""},
		{"empty measurement", sluice.Point{Fields: ok}, ReasonEmptyMeasurement},
		{"no fields", sluice.Point{Measurement: "m"}, ReasonNoFields},
		{"nan", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("x", sluice.Float(math.NaN()))}}, ReasonNonFinite},
		{"inf", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("x", sluice.Float(math.Inf(-1)))}}, ReasonNonFinite},
		{"too many tags", sluice.Point{Measurement: "m", Fields: ok, Tags: []sluice.Tag{{Key: "a"}, {Key: "b"}, {Key: "c"}}}, ReasonTooManyTags},
		{"too many fields", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("a", sluice.Int(1)), f("b", sluice.Int(1)), f("c", sluice.Int(1)), f("d", sluice.Int(1))}}, ReasonTooManyFields},
		{"long key", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("waytoolongkey", sluice.Int(1))}}, ReasonKeyTooLong},
		{"long measurement", sluice.Point{Measurement: "waytoolongname", Fields: ok}, ReasonKeyTooLong},
		{"empty tag key", sluice.Point{Measurement: "m", Fields: ok, Tags: []sluice.Tag{{Key: "", Value: "v"}}}, ReasonEmptyKey},
		{"duplicate tag", sluice.Point{Measurement: "m", Fields: ok, Tags: []sluice.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}}, ReasonDuplicateKey},
		{"duplicate field", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("a", sluice.Int(1)), f("a", sluice.Int(2))}}, ReasonDuplicateKey},
		{"long tag value", sluice.Point{Measurement: "m", Fields: ok, Tags: []sluice.Tag{{Key: "a", Value: strings.Repeat("v", 11)}}}, ReasonValueTooLong},
		{"long string field", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("s", sluice.String(strings.Repeat("v", 11)))}}, ReasonValueTooLong},
		{"bad utf8", sluice.Point{Measurement: "m", Fields: []sluice.Field{f("s", sluice.String("\xff"))}}, ReasonInvalidUTF8},
		{"unset value", sluice.Point{Measurement: "m", Fields: []sluice.Field{{Key: "x"}}}, ReasonUndecodable},
		{"future", sluice.Point{Measurement: "m", Fields: ok, Time: now.Add(2 * time.Hour)}, ReasonTimeOutOfRange},
		{"before epoch", sluice.Point{Measurement: "m", Fields: ok, Time: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, ReasonTimeOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Rejection
			kept, changed := n.Normalize([]sluice.Point{tc.p}, nil, func(r Rejection) { got = append(got, r) })
			if changed != (tc.want != "") {
				t.Errorf("changed = %v, want %v: a batch that lost a point is changed", changed, tc.want != "")
			}
			switch {
			case tc.want == "" && (len(kept) != 1 || len(got) != 0):
				t.Fatalf("want kept, got rejections %v", got)
			case tc.want != "" && (len(kept) != 0 || len(got) != 1 || got[0].Reason != tc.want):
				t.Fatalf("want rejected for %s, got kept=%d rejections=%v", tc.want, len(kept), got)
			}
		})
	}
}

func TestNormalizeSortsTagsAndFillsTime(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := NewNormalizer(config.Limits{MaxTags: 9, MaxFields: 9, MaxKeyLength: 9, MaxValueLength: 9, MaxFuture: time.Hour}, func() time.Time { return now })
	recv := now.Add(-time.Second)
	in := []sluice.Point{
		{Measurement: "m", Tags: []sluice.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}}, Fields: []sluice.Field{{Key: "x", Value: sluice.Int(1)}}, Received: recv},
		{Measurement: "", Fields: []sluice.Field{{Key: "x", Value: sluice.Int(1)}}},
		{Measurement: "m", Fields: []sluice.Field{{Key: "x", Value: sluice.Int(2)}}},
	}
	kept, _ := n.Normalize(in, nil, func(Rejection) {})
	if len(kept) != 2 {
		t.Fatalf("kept %d", len(kept))
	}
	if kept[0].Tags[0].Key != "a" || !kept[0].Time.Equal(recv) {
		t.Errorf("first point: tags %v time %v; want sorted tags and receive time", kept[0].Tags, kept[0].Time)
	}
	if !kept[1].Time.Equal(now) {
		t.Errorf("point with no times got %v, want now", kept[1].Time)
	}
}

// Normalize reports a batch changed when it sorted a point's tags or gave
// it a time, so that the agent does not store the plugin's bytes for it.
func TestNormalizeReportsChanges(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := NewNormalizer(config.Limits{MaxTags: 9, MaxFields: 9, MaxKeyLength: 9, MaxValueLength: 9, MaxFuture: time.Hour}, func() time.Time { return now })
	fields := []sluice.Field{{Key: "x", Value: sluice.Int(1)}}
	sorted := []sluice.Tag{{Key: "a", Value: "1"}, {Key: "z", Value: "2"}}
	for _, tc := range []struct {
		name string
		p    sluice.Point
		want bool
	}{
		{"as it came", sluice.Point{Measurement: "m", Tags: sorted, Fields: fields, Time: now}, false},
		{"tags out of order", sluice.Point{Measurement: "m", Tags: []sluice.Tag{sorted[1], sorted[0]}, Fields: fields, Time: now}, true},
		{"no time", sluice.Point{Measurement: "m", Tags: sorted, Fields: fields, Received: now}, true},
	} {
		ok := sluice.Point{Measurement: "m", Fields: fields, Time: now}
		_, changed := n.Normalize([]sluice.Point{ok, tc.p}, nil, func(r Rejection) { t.Errorf("%s: rejected %v", tc.name, r) })
		if changed != tc.want {
			t.Errorf("%s: changed = %v, want %v", tc.name, changed, tc.want)
		}
	}
}
