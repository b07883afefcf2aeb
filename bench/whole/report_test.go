package main

import (
	"strings"
	"testing"
	"time"
)

// TestMarkdownTables: every row of every table in the report has as many
// cells as its header, whatever kinds a run streams.
func TestMarkdownTables(t *testing.T) {
	stage := func(scale float64) *stageResult {
		return &stageResult{Scale: scale, Sec: 30, PointsIn: 100, Written: 100,
			CPU:   map[string]float64{"agent": 0.1, "plugin": 0.05, "harness": 0.02},
			RSSMB: map[string]float64{"agent": 40, "plugin": 20},
			Lag:   map[string]lagStats{"trades": {N: 10, P50ms: 5, P99ms: 9, Maxms: 10}},
		}
	}
	rep := &report{opts: options{symbols: 2, scales: []float64{1, 4}, stage: 30 * time.Second}}
	for _, name := range []string{"all", "trade", "bookTicker"} {
		streams := []string{name}
		if name == "all" {
			streams = allStreams
		}
		r := &runResult{Name: name, Streams: streams, Stages: []*stageResult{stage(1), stage(4)}, PeakRSSMB: map[string]float64{}}
		if name == "all" {
			r.Warmup = stage(1)
		}
		rep.runs = append(rep.runs, r)
	}
	md := rep.markdown()
	tables := 0
	cells := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = 0
			continue
		}
		n := strings.Count(line, "|")
		if cells == 0 {
			cells = n
			tables++
			continue
		}
		if n != cells {
			t.Errorf("%d cells, the header has %d: %s", n-1, cells-1, line)
		}
	}
	if tables != 4 {
		t.Errorf("%d tables, want 3 runs and the per-kind one:\n%s", tables, md)
	}
}
