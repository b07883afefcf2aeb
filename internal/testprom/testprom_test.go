package testprom

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A real Prometheus scrapes a target and answers instant, range and
// label-value queries about what it scraped.
func TestStartScrapeQuery(t *testing.T) {
	var scrapes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE demo_total counter\ndemo_total{kind=\"a\"} %d\ndemo_total{kind=\"b\"} 0\n", n)
	}))
	defer target.Close()
	addr := strings.TrimPrefix(target.URL, "http://")
	s := Start(t, Options{Targets: []string{addr}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	deadline := start.Add(time.Minute)
	for scrapes.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("prometheus scraped %d times in a minute", scrapes.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The third scrape was served; give Prometheus a moment to store it.
	time.Sleep(200 * time.Millisecond)
	now := time.Now()

	got, err := s.Query(ctx, `sum by (kind) (increase(demo_total[1m]))`, now)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]float64{}
	for _, sr := range got {
		if len(sr.Samples) != 1 {
			t.Fatalf("instant query: %d samples in %v", len(sr.Samples), sr.Labels)
		}
		byKind[sr.Labels["kind"]] = sr.Samples[0].Value
	}
	if byKind["a"] <= 0 || byKind["b"] != 0 || len(byKind) != 2 {
		t.Errorf("increase by kind = %v, want a > 0 and b = 0", byKind)
	}

	got, err = s.QueryRange(ctx, `demo_total{kind="a"}`, start.Add(-time.Second), now, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) < 2 || got[0].Labels["job"] != Job || got[0].Labels["instance"] != addr {
		t.Errorf("range query = %+v, want one series of job %s, instance %s, with samples", got, Job, addr)
	}

	vals, err := s.LabelValues(ctx, "kind", `demo_total{job="`+Job+`"}`, start.Add(-time.Second), now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(vals, ",") != "a,b" {
		t.Errorf("label values of kind = %q, want a, b", vals)
	}

	if _, err := s.Query(ctx, `sum(`, now); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("a malformed query gave %v, want Prometheus's bad_data error", err)
	}
}

func TestParseResult(t *testing.T) {
	for _, tc := range []struct {
		name, typ, raw string
		want           string // series as labels:values, or "error"
	}{
		{"vector", "vector", `[{"metric":{"a":"1"},"value":[1700000000.5,"2.5"]}]`, "map[a:1]:[2.5]"},
		{"matrix", "matrix", `[{"metric":{},"values":[[1,"1"],[2,"NaN"],[3,"+Inf"]]}]`, "map[]:[1 NaN +Inf]"},
		{"empty", "vector", `[]`, ""},
		{"scalar", "scalar", `[1,"1"]`, "error"},
		{"bad value", "vector", `[{"metric":{},"value":[1,"x"]}]`, "error"},
		{"value not a string", "vector", `[{"metric":{},"value":[1,2]}]`, "error"},
		{"not json", "matrix", `[{`, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResult(tc.typ, []byte(tc.raw))
			var s []string
			for _, sr := range got {
				var vs []string
				for _, smp := range sr.Samples {
					vs = append(vs, formatValue(smp.Value))
				}
				s = append(s, fmt.Sprintf("%v:%v", sr.Labels, vs))
			}
			str := strings.Join(s, " ")
			if err != nil {
				str = "error"
			}
			if str != tc.want {
				t.Errorf("parseResult = %q (%v), want %q", str, err, tc.want)
			}
		})
	}
	got, _ := parseResult("vector", []byte(`[{"metric":{},"value":[1700000000.123,"1"]}]`))
	if ms := got[0].Samples[0].Time.UnixMilli(); ms != 1700000000123 {
		t.Errorf("time = %d ms, want 1700000000123", ms)
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	}
	return fmt.Sprint(v)
}

func FuzzParseResult(f *testing.F) {
	f.Add("vector", []byte(`[{"metric":{"a":"1"},"value":[1700000000.5,"2.5"]}]`))
	f.Add("matrix", []byte(`[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]`))
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		got, err := parseResult(typ, raw)
		if err != nil && got != nil {
			t.Fatalf("both a result and an error: %v", err)
		}
	})
}
