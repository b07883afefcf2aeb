package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"
	"github.com/sluicehq/sluice/bench/internal/procstat"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// The soak run is what running for a long time costs: the agent streams
// trades at a steady rate into SQLite for o.soakFor while the simulated
// exchange drops every connection every o.soakDropEvery (the plugin
// reconnects and backfills the gap from REST). Every o.soakEvery it
// samples what would grow if something leaked: the agent's and the
// plugin's memory, threads and open files, the agent's goroutines, and
// the buffer on disk. At the end the market halts and the run counts the
// trades in the store: each one generated must be there once.

type soakSample struct {
	At              float64 `json:"at_s"`
	AgentRSSMB      float64 `json:"agent_rss_mib"`
	AgentAnonMB     float64 `json:"agent_anon_mib"`
	PluginRSSMB     float64 `json:"plugin_rss_mib"`
	PluginAnonMB    float64 `json:"plugin_anon_mib"`
	AgentGoroutines int     `json:"agent_goroutines"`
	AgentThreads    int     `json:"agent_threads"`
	PluginThreads   int     `json:"plugin_threads"`
	AgentFiles      int     `json:"agent_open_files"`
	PluginFiles     int     `json:"plugin_open_files"`
	// Cores is agent + plugin CPU since the previous sample, per second.
	Cores      float64 `json:"cores"`
	BufferMB   float64 `json:"buffer_mib"`
	DBMB       float64 `json:"db_mib"`
	Reconnects uint64  `json:"reconnects"`
}

type soakResult struct {
	Rate       int          `json:"rate"`
	Symbols    int          `json:"symbols"`
	Seconds    float64      `json:"seconds"`
	DropEvery  string       `json:"drop_every"`
	DropEvents int          `json:"drop_events"`
	Drops      int          `json:"connections_dropped"`
	Generated  int64        `json:"generated"`
	Landed     int64        `json:"landed"` // distinct trade ids in the store
	Lost       int64        `json:"lost"`
	Restarts   uint64       `json:"plugin_restarts"`
	Backfilled uint64       `json:"backfilled_points"`
	DrainSec   float64      `json:"drain_s"`
	Samples    []soakSample `json:"samples"`
}

func runSoak(ctx context.Context, o options) (*soakResult, error) {
	res := &soakResult{Rate: o.soakRate, Symbols: o.symbols, DropEvery: o.soakDropEvery.String()}
	syms := binancesim.SyntheticSymbols(market.Spot, o.symbols)
	// The simulator keeps the newest trades for REST backfills only: a
	// long run's whole history would not fit in memory.
	sim, ws, rest, closeSim := startSim(syms, o.soakRate, 200_000)
	defer closeSim()

	dir := filepath.Join(o.workDir, "soak")
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	addr := harness.FreeAddr()
	cfgPath := filepath.Join(dir, "sluice.yaml")
	cfg := feedConfig{dataDir: filepath.Join(dir, "data"), pluginDir: filepath.Join(o.binDir, "plugins"), addr: addr,
		shutdownTimeout: "2s", sinks: []string{"sqlite: {type: sqlite, path: sluice.db}"},
		feed: "binance", feedSinks: []string{"sqlite"}, ws: ws, rest: rest, symbols: syms}
	if err := cfg.write(cfgPath); err != nil {
		return nil, err
	}
	ag, err := harness.StartAgent(harness.AgentSpec{Bin: filepath.Join(o.binDir, "sluice"), Config: cfgPath, Addr: addr,
		Log: filepath.Join(dir, "log.txt"), Env: o.agentEnv})
	if err != nil {
		return nil, err
	}
	defer ag.Stop()
	if err := harness.WaitUntil(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		n := 0
		for _, c := range sim.Conns() {
			n += len(c.Streams)
		}
		st, ok := ag.Status()
		return n >= len(syms) && ok && len(st.Feeds) > 0 && st.Feeds[0].Pid > 0
	}); err != nil {
		return nil, fmt.Errorf("soak: the feed did not subscribe: %w", err)
	}
	store, err := openSQLite(filepath.Join(dir, "data", "sluice.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()

	began := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, nextSample, nextDrop := began, began, began.Add(o.soakDropEvery)
	var prevCPU float64
	prevAt := began
	for time.Since(began) < o.soakFor {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case now := <-tick.C:
			sim.Advance(now.Sub(last))
			last = now
			if o.soakDropEvery > 0 && !now.Before(nextDrop) {
				nextDrop = now.Add(o.soakDropEvery)
				res.DropEvents++
				res.Drops += sim.DropAll(binancesim.Abrupt)
			}
			if now.Before(nextSample) {
				continue
			}
			nextSample = now.Add(o.soakEvery)
			st, ok := ag.Status()
			if !ok || len(st.Feeds) == 0 {
				return nil, fmt.Errorf("soak: the agent's status does not answer; log:\n%s", ag.LogTail())
			}
			s := soakSample{At: now.Sub(began).Seconds(), Reconnects: st.Feeds[0].Reconnects,
				BufferMB: float64(dirSize(filepath.Join(dir, "data", "buffer"))) / (1 << 20),
				DBMB:     float64(dirSize(filepath.Join(dir, "data"))-dirSize(filepath.Join(dir, "data", "buffer"))) / (1 << 20)}
			apid, ppid := ag.Pid(), st.Feeds[0].Pid
			s.AgentRSSMB, _ = procstat.RSSMB(apid)
			s.AgentAnonMB, _ = procstat.AnonRSSMB(apid)
			s.PluginRSSMB, _ = procstat.RSSMB(ppid)
			s.PluginAnonMB, _ = procstat.AnonRSSMB(ppid)
			s.AgentThreads, _ = procstat.Threads(apid)
			s.PluginThreads, _ = procstat.Threads(ppid)
			s.AgentFiles, _ = procstat.OpenFiles(apid)
			s.PluginFiles, _ = procstat.OpenFiles(ppid)
			s.AgentGoroutines, _ = goroutines(addr)
			ac, _ := procstat.CPUSeconds(apid)
			pc, _ := procstat.CPUSeconds(ppid) // a restarted plugin starts from 0: that sample's cores read low
			if len(res.Samples) > 0 {
				s.Cores = (ac + pc - prevCPU) / now.Sub(prevAt).Seconds()
			}
			prevCPU, prevAt = ac+pc, now
			res.Samples = append(res.Samples, s)
			log.Printf("soak %5.0fs: agent %.0f MiB (own %.0f), %d goroutines, %d threads, %d files; plugin %.0f MiB (own %.0f), %d threads, %d files; %.2f cores; buffer %.1f MiB, db %.0f MiB; %d reconnects",
				s.At, s.AgentRSSMB, s.AgentAnonMB, s.AgentGoroutines, s.AgentThreads, s.AgentFiles,
				s.PluginRSSMB, s.PluginAnonMB, s.PluginThreads, s.PluginFiles, s.Cores, s.BufferMB, s.DBMB, s.Reconnects)
		}
	}
	res.Seconds = time.Since(began).Seconds()

	// The market halts; wait for every symbol's last trade to land.
	lastID := map[string]int64{}
	for _, s := range syms {
		res.Generated += sim.TradeCount(market.Spot, s)
		if tr := sim.Trades(market.Spot, s); len(tr) > 0 {
			lastID[s] = tr[len(tr)-1].ID
		}
	}
	drainStart := time.Now()
	seen := map[string]int64{}
	err = harness.WaitUntil(ctx, 3*time.Minute, 200*time.Millisecond, func() bool {
		ids, err := store.maxIDs(ctx)
		if err != nil {
			return false
		}
		for s, id := range ids {
			seen[s] = max(seen[s], id)
		}
		for s, id := range lastID {
			if seen[s] < id {
				return false
			}
		}
		return true
	})
	res.DrainSec = time.Since(drainStart).Seconds()
	if err != nil {
		log.Printf("soak: not every symbol's last trade landed within 3 minutes of the end")
	}
	counts, err := store.counts(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range syms {
		c := counts[s]
		res.Landed += c.n
		res.Lost += sim.TradeCount(market.Spot, s) - c.n
	}
	if st, ok := ag.Status(); ok && len(st.Feeds) > 0 {
		res.Restarts, res.Backfilled = st.Feeds[0].Restarts, st.Feeds[0].BackfilledPoints
	}
	return res, nil
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// goroutines reads go_goroutines from the agent's /metrics.
func goroutines(addr string) (int, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics")
}

func (r *soakResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "Soak: %d trades/s over %d symbols into SQLite for %.0f s, every exchange connection dropped every %s (%d times, %d connections); %d trades generated, %d landed, **%d lost**; the plugin backfilled %d, restarted %d times; the last trades landed %.1f s after the market halted.\n\n",
		r.Rate, r.Symbols, r.Seconds, r.DropEvery, r.DropEvents, r.Drops, r.Generated, r.Landed, r.Lost, r.Backfilled, r.Restarts, r.DrainSec)
	b.WriteString("| at s | agent RSS MiB (own) | goroutines | threads | open files | plugin RSS MiB (own) | threads | open files | cores | buffer MiB | db MiB | reconnects |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Samples {
		fmt.Fprintf(b, "| %.0f | %.0f (%.0f) | %d | %d | %d | %.0f (%.0f) | %d | %d | %.2f | %.1f | %.0f | %d |\n",
			s.At, s.AgentRSSMB, s.AgentAnonMB, s.AgentGoroutines, s.AgentThreads, s.AgentFiles,
			s.PluginRSSMB, s.PluginAnonMB, s.PluginThreads, s.PluginFiles, s.Cores, s.BufferMB, s.DBMB, s.Reconnects)
	}
	b.WriteString("\n")
}
