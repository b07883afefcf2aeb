package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/procstat"
)

type report struct {
	opts              options
	started, finished time.Time
	steps             []stepResult
	burst             *stepResult
	outage            *outageResult
	soak              *soakResult
	notes             []string
}

func (r *report) all() []stepResult {
	out := append([]stepResult(nil), r.steps...)
	if r.burst != nil {
		out = append(out, *r.burst)
	}
	return out
}

func (s stepResult) line() string {
	return fmt.Sprintf("%-16s %6d/s gen=%d (%.0f/s) landed=%d lost=%d sustained=%.0f/s lag p50=%.0fms p99=%.0fms max=%.0fms cpu/M=%s rss=%s anon=%s work=%s harness=%.1fs/M load=%.1f→%.1f %s",
		s.Target, s.Rate, s.Generated, s.GenRate, s.Landed, s.Lost, s.Sustained, s.LagP50ms, s.LagP99ms, s.LagMaxms,
		fmtMap(s.CPUPerM, "%.1fs"), fmtMap(s.RSSMB, "%.0fMiB"), fmtMap(s.AnonMB, "%.0fMiB"), fmtMap(s.WorkMB, "%.0fMiB"), s.HarnessCPUPerM, s.Load1Start, s.Load1End, s.Note)
}

func fmtMap(m map[string]float64, f string) string {
	var parts []string
	for _, k := range []string{"agent", "plugin", "floor", "influxd"} {
		if v, ok := m[k]; ok {
			parts = append(parts, k+"="+fmt.Sprintf(f, v))
		}
	}
	return strings.Join(parts, ",")
}

// headline is the highest step of a target with zero loss and p99 < 1s.
func (r *report) headline(target string) *stepResult {
	var best *stepResult
	for i := range r.steps {
		s := &r.steps[i]
		if s.Target == target && s.Pass && (best == nil || s.Rate > best.Rate) {
			best = s
		}
	}
	return best
}

func (r *report) find(target string, rate int) *stepResult {
	for i := range r.steps {
		if s := &r.steps[i]; s.Target == target && s.Rate == rate {
			return s
		}
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := "unknown"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	fmt.Fprintf(&b, "# Sluice end-to-end benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s (%.0fs)\n- machine: %s, %d CPUs, %s, %s\n- load average at the end: %.2f\n",
		r.started.UTC().Format(time.RFC3339), r.finished.Sub(r.started).Seconds(), host, runtime.NumCPU(), cpu, memTotal(), procstat.LoadAvg())
	if len(r.all()) > 0 {
		fmt.Fprintf(&b, "- symbols: %d (spot, `trade` stream), %s per step, store polled every %s\n", r.opts.symbols, r.opts.duration, pollEvery)
	}
	if len(r.opts.agentEnv) > 0 {
		fmt.Fprintf(&b, "- agent settings (not the defaults): `%s`\n", strings.Join(r.opts.agentEnv, "` `"))
	}
	b.WriteString("\n")

	for _, t := range []string{"sluice-sqlite", "sluice-sqlite-cgo", "floor-sqlite", "floor-cgo", "sluice-influxdb"} {
		h := r.headline(t)
		if h == nil {
			if r.has(t) {
				fmt.Fprintf(&b, "**%s**: no step passed (zero loss and p99 lag < 1s)\n\n", t)
			}
			continue
		}
		fmt.Fprintf(&b, "**%s headline: %d trades/s** (sustained %.0f/s, zero loss, p99 lag %.0f ms)\n\n", t, h.Rate, h.Sustained, h.LagP99ms)
	}
	for _, st := range sluiceSQLite {
		for _, fl := range floors {
			if s, f := r.headline(st), r.headline(fl.target); s != nil && f != nil {
				fmt.Fprintf(&b, "%s/%s, highest passing step: %.0f%% of that floor's rate.\n\n", st, fl.target, 100*float64(s.Rate)/float64(f.Rate))
			}
		}
	}

	if len(r.all()) > 0 {
		b.WriteString("| target | step/s | generated/s | lost | sustained/s | lag p50 ms | p99 ms | max ms | CPU s per M msgs | peak RSS MiB | RSS anon MiB at the end | working set MiB | harness CPU s/M | load1 start→end | pass |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---|---|\n")
		for _, s := range r.all() {
			pass := "yes"
			if !s.Pass {
				pass = "**no** " + s.Note
			}
			lag := func(v float64) string {
				if s.Target == "burst-sqlite" {
					return "–"
				}
				return fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f→%.1f | %s |\n",
				s.Target, s.Rate, s.GenRate, s.Lost, s.Sustained, lag(s.LagP50ms), lag(s.LagP99ms), lag(s.LagMaxms),
				fmtMap(s.CPUPerM, "%.1f"), fmtMap(s.RSSMB, "%.0f"), fmtMap(s.AnonMB, "%.0f"), fmtMap(s.WorkMB, "%.0f"), s.HarnessCPUPerM, s.Load1Start, s.Load1End, pass)
		}
		b.WriteString("\n")
	}

	// Sluice as a ratio of each floor at each rate both ran.
	for _, st := range sluiceSQLite {
		for _, fl := range floors {
			r.ratios(&b, st, fl.target, fl.what)
		}
	}
	if r.burst != nil {
		fmt.Fprintf(&b, "Burst: %d/s steady with %s at %d× (fastest second generated %.0f trades/s): lost %d (the plugin's queue dropped %d), peak RSS agent %.0f MiB + plugin %.0f MiB, buffer on disk peaked at %.1f MiB.\n\n",
			r.opts.burstBase, r.opts.burstFor, r.opts.burstFactor, r.burst.BurstPeakRate, r.burst.Lost, r.burst.PluginDropped,
			r.burst.RSSMB["agent"], r.burst.RSSMB["plugin"], r.burst.BufferPeakMB)
	}
	if r.soak != nil {
		r.soak.markdown(&b)
	}
	if r.outage != nil {
		r.outage.markdown(&b)
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}

// sluiceSQLite are the Sluice targets compared with the floors: the
// default build, and the agent built with the cgo SQLite driver.
var sluiceSQLite = []string{"sluice-sqlite", "sluice-sqlite-cgo"}

// ratios writes the table of target st against floor fl, rate by rate.
func (r *report) ratios(b *strings.Builder, st, fl, what string) {
	var rows []string
	for _, s := range r.steps {
		if s.Target != st {
			continue
		}
		f := r.find(fl, s.Rate)
		if f == nil || f.Landed == 0 || s.Landed == 0 {
			continue
		}
		sc := s.CPUPerM["agent"] + s.CPUPerM["plugin"]
		rows = append(rows, fmt.Sprintf("| %d | %.2f | %.1f (%.1f + %.1f) | %.1f | **%.2f** | %.0f / %.0f | %.0f + %.0f | %.0f + %.0f | %.0f | %.0f |",
			s.Rate, s.Sustained/f.Sustained, sc, s.CPUPerM["agent"], s.CPUPerM["plugin"], f.CPUPerM["floor"], sc/f.CPUPerM["floor"],
			s.LagP99ms, f.LagP99ms, s.RSSMB["agent"], s.RSSMB["plugin"], s.WorkMB["agent"], s.WorkMB["plugin"], f.RSSMB["floor"], f.WorkMB["floor"]))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "%s (agent + plugin) against %s (%s), step by step:\n\n", st, fl, what)
	b.WriteString("| rate/s | sustained ratio | Sluice CPU s/M (agent + plugin) | floor CPU s/M | CPU ratio | p99 lag ms Sluice / floor | Sluice RSS MiB | Sluice working set MiB | floor RSS MiB | floor working set MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

// floors are the programs Sluice is compared with.
var floors = []struct{ target, what string }{
	{"floor-sqlite", "bench/floor: Sluice's Binance parser and the sink's table, indexes and pure-Go driver"},
	{"floor-cgo", "bench/floorcgo: encoding/json, the cgo driver, one unique index on (symbol, trade_id)"},
}

func (r *report) has(target string) bool {
	for _, s := range r.steps {
		if s.Target == target {
			return true
		}
	}
	return false
}

func memTotal() string {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "? RAM"
	}
	var kb int64
	fmt.Sscanf(strings.SplitN(string(raw), "\n", 2)[0], "MemTotal: %d kB", &kb)
	return fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
}
