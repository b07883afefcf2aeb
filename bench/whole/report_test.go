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

// TestPass: a stage passes only with everything written, nothing waiting
// past a second of input, and the event streams' p99 under 1 s; a run of
// books alone is judged by its backlog, not passed for want of trades.
func TestPass(t *testing.T) {
	ok := func() (*runResult, *stageResult) {
		s := &stageResult{PointsIn: 1000, Buffered: 500,
			Lag:    map[string]lagStats{"trades": {N: 10, P99ms: 900}, "book_ticker": {N: 10, P99ms: 900}, "book": {N: 10, P99ms: 1900}},
			Landed: map[string]float64{"trades": 1, "book_ticker": 1}}
		return &runResult{Streams: allStreams}, s
	}
	r, s := ok()
	if !r.pass(s) {
		t.Error("a clean stage fails")
	}
	for name, spoil := range map[string]func(*runResult, *stageResult){
		"trades missing":         func(r *runResult, s *stageResult) { r.TradesMissing = 1 },
		"points left unwritten":  func(r *runResult, s *stageResult) { r.BufferedEnd = 1 },
		"backlog past a second":  func(r *runResult, s *stageResult) { s.Buffered = 1001 },
		"trade p99 of a second":  func(r *runResult, s *stageResult) { s.Lag["trades"] = lagStats{N: 10, P99ms: 1000} },
		"bookTickers not landed": func(r *runResult, s *stageResult) { s.Landed["book_ticker"] = 0.9 },
		"a resync":               func(r *runResult, s *stageResult) { r.Events = map[string]uint64{"resync": 1} },
		"books alone, none landed": func(r *runResult, s *stageResult) {
			r.Streams = []string{"depth@100ms"}
			s.Lag = map[string]lagStats{}
		},
	} {
		r, s := ok()
		spoil(r, s)
		if r.pass(s) {
			t.Errorf("%s: passes", name)
		}
	}
}
