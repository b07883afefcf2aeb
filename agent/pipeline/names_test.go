package pipeline

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

func TestNamesBudget(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := config.Limits{MaxTags: 9, MaxFields: 9, MaxKeyLength: 32, MaxValueLength: 32, MaxFuture: time.Hour,
		MaxMeasurements: 3, MaxColumns: 4}
	n := NewNormalizer(limits, func() time.Time { return now })
	names := NewNames(limits)
	names.Declare([]sluice.Measurement{{Name: "declared"}})
	p := func(m string, tags []string, fields ...string) sluice.Point {
		pt := sluice.Point{Measurement: m, Time: now}
		for _, k := range tags {
			pt.Tags = append(pt.Tags, sluice.Tag{Key: k, Value: "v"})
		}
		for _, k := range fields {
			pt.Fields = append(pt.Fields, sluice.Field{Key: k, Value: sluice.Int(1)})
		}
		return pt
	}
	for _, step := range []struct {
		name string
		p    sluice.Point
		want Reason // "" means kept
	}{
		{"declared measurement", p("declared", nil, "x"), ""},
		{"second measurement", p("a", []string{"s"}, "x"), ""},
		{"same shape again", p("a", []string{"s"}, "x"), ""},
		{"third measurement", p("b", nil, "x"), ""},
		{"a fourth is one too many", p("c", nil, "x"), ReasonTooManyMeasurements},
		{"still too many", p("d", nil, "x"), ReasonTooManyMeasurements},
		{"known measurements go on", p("b", nil, "x"), ""},
		// a has s (tag) and x (field): two columns of four.
		{"a tag and a field of one name are two columns", p("a", []string{"s", "x"}, "x"), ""},
		{"fourth column", p("a", []string{"s"}, "y"), ""},
		{"fifth column", p("a", []string{"s"}, "x", "z"), ReasonTooManyColumns},
		{"a refused point added nothing", p("a", []string{"s", "x"}, "x", "y"), ""},
		{"a new measurement needing too many columns", p("declared", []string{"t1", "t2"}, "x", "y", "z"), ReasonTooManyColumns},
		{"invalid points are not charged", p("e", nil), ReasonNoFields},
	} {
		var got []Rejection
		kept, _ := n.Normalize([]sluice.Point{step.p}, names, func(r Rejection) { got = append(got, r) })
		switch {
		case step.want == "" && (len(kept) != 1 || len(got) != 0):
			t.Fatalf("%s: want kept, got rejections %v", step.name, got)
		case step.want != "" && (len(kept) != 0 || len(got) != 1 || got[0].Reason != step.want):
			t.Fatalf("%s: want rejected for %s, got kept=%d rejections=%v", step.name, step.want, len(kept), got)
		}
		if step.want != "" && step.want != ReasonNoFields && !strings.Contains(got[0].Detail, "limits.max_") {
			t.Errorf("%s: detail %q does not name the limit", step.name, got[0].Detail)
		}
	}
	if got := names.Measurements(); got != 3 {
		t.Errorf("%d measurements admitted, want 3", got)
	}
	// A measurement declared later may pass the count.
	names.Declare([]sluice.Measurement{{Name: "late"}})
	if kept, _ := n.Normalize([]sluice.Point{p("late", nil, "x")}, names, func(r Rejection) { t.Errorf("rejected %v", r) }); len(kept) != 1 {
		t.Error("a measurement declared past the limit was refused")
	}
}

// A batch of mixed shapes, as a wire peer inventing names sends: each
// point is counted exactly, and those within the budget keep their order.
func TestNamesBudgetCountsEveryPoint(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := config.Default().Limits
	limits.MaxMeasurements = 100
	n := NewNormalizer(limits, func() time.Time { return now })
	names := NewNames(limits)
	var batch []sluice.Point
	for i := range 1000 {
		batch = append(batch, sluice.Point{Measurement: "m" + strconv.Itoa(i%250), Time: now,
			Fields: []sluice.Field{{Key: "v", Value: sluice.Int(int64(i))}}})
	}
	rejected := 0
	kept, _ := n.Normalize(batch, names, func(r Rejection) {
		if r.Reason != ReasonTooManyMeasurements {
			t.Fatalf("rejected for %s", r.Reason)
		}
		rejected++
	})
	// m0..m99 pass, four times each.
	if len(kept) != 400 || rejected != 600 {
		t.Fatalf("kept %d, rejected %d; want 400 and 600", len(kept), rejected)
	}
	for i, p := range kept {
		if want := "m" + strconv.Itoa(i%100); p.Measurement != want {
			t.Fatalf("kept[%d] is %s, want %s", i, p.Measurement, want)
		}
	}
}
