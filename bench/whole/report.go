package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"
)

type report struct {
	opts              options
	started, finished time.Time
	load0, load1      float64 // 1-minute load average at the start and the end
	runs              []*runResult
}

// lagKinds are the tables whose lag is reported, with what their lag is.
var lagKinds = []struct{ table, label string }{
	{"trades", "trade"},
	{"book_ticker", "bookTicker"},
	{"book", "book"},
}

// pass is the #19 target for a stage: nothing lost or left unwritten in
// the run, the stage's input written as it came (at most a second of it
// waiting in the disk buffer at its end), and p99 lag under 1 s for the
// event streams (trade, bookTicker). The book's lag is reported beside
// it: it includes up to book_interval (1 s) by design; a run of books
// alone must see them land.
func (r *runResult) pass(s *stageResult) bool {
	if r.TradesMissing != 0 || r.BookTickersMissing != 0 || r.BufferedEnd != 0 || r.PluginDropped != 0 ||
		r.Events["resync"] != 0 || r.Events["gap"] != 0 || float64(s.Buffered) > s.PointsIn {
		return false
	}
	for _, k := range []string{"trades", "book_ticker"} {
		if !r.has(k) {
			continue
		}
		if l := s.Lag[k]; l.N == 0 || l.P99ms >= 1000 || s.Landed[k] < 0.99 {
			return false
		}
	}
	if r.has("book") && s.Lag["book"].N == 0 {
		return false
	}
	return true
}

// has says whether the run streams what lands in table.
func (r *runResult) has(table string) bool {
	return slices.Contains(r.Streams, map[string]string{"trades": "trade", "book_ticker": "bookTicker", "book": "depth@100ms"}[table])
}

func lagCell(s *stageResult, table string) string {
	l := s.Lag[table]
	if l.N == 0 {
		return "none landed"
	}
	c := fmt.Sprintf("%.0f / %.0f / %.0f", l.P50ms, l.P99ms, l.Maxms)
	// A thing generated within a 10 ms tick of a stage's start may count
	// in the stage before: below 99 % is not that.
	if share, ok := s.Landed[table]; ok && share < 0.99 {
		c += fmt.Sprintf(" (%.0f %% landed)", 100*share)
	}
	return c
}

func (r *runResult) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %d conns, %d streams, trades missing %d/%d, bookTickers missing %d/%d, resyncs %d, plugin dropped %d, backlog at end %d",
		r.Name, r.Connections, r.StreamsOn, r.TradesMissing, r.Generated.Trades, r.BookTickersMissing, r.Generated.BookTickers,
		r.Events["resync"], r.PluginDropped, r.BufferedEnd)
	for _, s := range r.Stages {
		fmt.Fprintf(&b, "\n  ×%g: in %.0f/s written %.0f/s backlog %d; agent %.2f plugin %.2f harness %.2f cores;",
			s.Scale, s.PointsIn, s.Written, s.Buffered, s.CPU["agent"], s.CPU["plugin"], s.CPU["harness"])
		for _, k := range lagKinds {
			if r.has(k.table) {
				fmt.Fprintf(&b, " %s %s;", k.label, lagCell(s, k.table))
			}
		}
	}
	return b.String()
}

func (rep *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := rep.opts
	p("# The whole of Binance: %d symbols × trade, bookTicker, depth@100ms into SQLite\n\n", o.symbols)
	p("date:    %s\n", rep.started.UTC().Format(time.RFC3339))
	p("command: %s\n", strings.Join(os.Args, " "))
	p("commit:  %s\n", harness.Commit())
	p("machine: %s\n", harness.Machine())
	p("load:    %.2f at the start, %.2f at the end (1-minute average; other work on the machine competes)\n", rep.load0, rep.load1)
	p("go:      %s\n", runtime.Version())
	p("took:    %s\n\n", rep.finished.Sub(rep.started).Round(time.Second))
	settings := "default settings"
	if o.bookDepth != 0 || o.bookInterval != "" {
		settings = "default settings except, in the feed file,"
		if o.bookDepth != 0 {
			settings += fmt.Sprintf(" book_depth: %d", o.bookDepth)
		}
		if o.bookInterval != "" {
			settings += " book_interval: " + o.bookInterval
		}
	}
	p("The real `sluice` and `sluice-source-binance` with %s and one feed file;\n", settings)
	p("the simulated exchange in this process on loopback (its CPU is the harness column).\n")
	p("Stages of %v each at %v × the recorded mix (bench/README.md). CPU in cores\n", o.stage, o.scales)
	p("(CPU-seconds per second); RSS is VmRSS at the stage's end; lag is upper bounds\n")
	p("(%v polls) from generation to the first poll that read the row.\n\n", pollEvery)

	for _, r := range rep.runs {
		p("## Run `%s` (%s)\n\n", r.Name, strings.Join(r.Streams, ", "))
		p("- %d streams on %d connections, all subscribed %.1f s after the agent started\n", r.StreamsOn, r.Connections, r.SubscribeSec)
		if r.Warmup != nil {
			p("- every depth book loaded (its REST snapshot served) %.0f s after the first event\n", r.WarmupSec)
		}
		if slices.Contains(r.Streams, "trade") {
			p("- trades: %d generated, %d landed, **%d not landed** by the end\n", r.Generated.Trades, r.TradesLanded, r.TradesMissing)
		}
		if slices.Contains(r.Streams, "bookTicker") {
			p("- bookTicker: %d generated, %d landed, **%d not landed** by the end\n", r.Generated.BookTickers, r.BookTickersLanded, r.BookTickersMissing)
		}
		if slices.Contains(r.Streams, "depth@100ms") {
			p("- depth: %d diff events (%.1f levels each) generated; %d book rows landed; %d resyncs\n",
				r.Generated.DepthEvents, ratio(r.Generated.DepthLevels, r.Generated.DepthEvents), r.BookRows, r.Events["resync"])
		}
		p("- at the end, after %.0f s of drain: %d points in the disk buffer not yet written (kept, not lost); plugin dropped %d\n",
			r.DrainSec, r.BufferedEnd, r.PluginDropped)
		p("- feed events: %v\n", r.Events)
		x := r.Exchange
		p("- exchange: %d connections accepted (%d cut as slow consumers, %d for too many messages), %d REST requests (%d answered 429)\n",
			x.Accepted, x.SlowConsumer, x.RateLimited, x.REST, x.REST429)
		p("- peak RSS agent %.0f MiB, plugin %.0f MiB; database %.0f MiB\n", r.PeakRSSMB["agent"], r.PeakRSSMB["plugin"], r.DBMB)
		if r.Note != "" {
			p("- note: %s\n", r.Note)
		}
		p("\n| stage | events/s | trades/s | bookTicker/s | depth events/s | points in/s | written/s | backlog at end | agent µs per point written | CPU agent | plugin | agent+plugin | harness | RSS agent | plugin |")
		for _, k := range lagKinds {
			if r.has(k.table) {
				p(" %s lag p50 / p99 / max ms |", k.label)
			}
		}
		p(" load | pass |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, k := range lagKinds {
			if r.has(k.table) {
				p("---|")
			}
		}
		p("---|---|\n")
		rows := r.Stages
		if r.Warmup != nil {
			rows = append([]*stageResult{r.Warmup}, rows...)
		}
		for i, s := range rows {
			name := fmt.Sprintf("×%g", s.Scale)
			if r.Warmup != nil && i == 0 {
				name = fmt.Sprintf("warm-up ×%g (%.0f s)", s.Scale, s.Sec)
			}
			perPoint := "–"
			if s.Written > 0 {
				perPoint = fmt.Sprintf("%.0f", 1e6*s.CPU["agent"]/s.Written)
			}
			p("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |", name,
				s.Events, s.Trades, s.BookTickers, s.DepthEvents, s.PointsIn, s.Written, s.Buffered, perPoint,
				s.CPU["agent"], s.CPU["plugin"], s.CPU["agent"]+s.CPU["plugin"], s.CPU["harness"],
				s.RSSMB["agent"], s.RSSMB["plugin"])
			for _, k := range lagKinds {
				if r.has(k.table) {
					p(" %s |", lagCell(s, k.table))
				}
			}
			verdict := "yes"
			if !r.pass(s) {
				verdict = "**no**"
			}
			p(" %.1f | %s |\n", s.Load1, verdict)
		}
		p("\n")
	}
	rep.perKind(&b)
	return b.String()
}

// perKind apportions CPU and RSS to the stream kinds: each kind's own run
// where there is one; depth as the all-kinds run less the others' when it
// did not run alone.
func (rep *report) perKind(b *strings.Builder) {
	by := map[string]*runResult{}
	for _, r := range rep.runs {
		by[r.Name] = r
	}
	all := by["all"]
	if all == nil || len(rep.runs) < 2 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Per stream kind\n\n")
	p("CPU (agent + plugin, cores) and RSS (agent + plugin at the stage's end, MiB) of each kind\n")
	p("run alone. `depth@100ms (by difference)` is the CPU of the all-kinds run less the trade and\n")
	p("bookTicker runs, so it carries what the kinds share; RSS does not add up that way (each run's\n")
	p("agent and plugin have their own base), so depth's RSS is that of the all-kinds run, an upper bound.\n\n")
	p("| stage |")
	kinds := []string{"trade", "bookTicker", "depth@100ms"}
	for _, k := range kinds {
		p(" %s CPU | RSS |", k)
	}
	p(" all CPU | RSS |\n|---|")
	for range len(kinds) + 1 {
		p("---|---|")
	}
	p("\n")
	for i, s := range all.Stages {
		p("| ×%g |", s.Scale)
		cpuOf := func(r *runResult) (float64, float64, bool) {
			if r == nil || i >= len(r.Stages) {
				return 0, 0, false
			}
			x := r.Stages[i]
			return x.CPU["agent"] + x.CPU["plugin"], x.RSSMB["agent"] + x.RSSMB["plugin"], true
		}
		var sumC float64
		for _, k := range kinds[:2] {
			if c, m, ok := cpuOf(by[k]); ok {
				p(" %.2f | %.0f |", c, m)
				sumC += c
			} else {
				p(" – | – |")
			}
		}
		ac, am, _ := cpuOf(all)
		if c, m, ok := cpuOf(by["depth@100ms"]); ok {
			p(" %.2f | %.0f |", c, m)
		} else if by["trade"] != nil && by["bookTicker"] != nil {
			p(" %.2f (by difference) | ≤ %.0f |", ac-sumC, am)
		} else {
			p(" – | – |")
		}
		p(" %.2f | %.0f |\n", ac, am)
	}
	p("\n")
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
