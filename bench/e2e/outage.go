package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"

	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// The outage run measures what a sink that is down costs the agent in
// memory: the agent streams trades at a steady rate into SQLite and into
// an InfluxDB sink whose server never answers (a closed port on
// loopback), for o.outageFor. Its entries pile up in that sink's part of
// the disk buffer; the agent's memory must not grow with them. Then the
// agent is stopped and started again on the backlog, with the market
// halted, to see what opening it costs.

// outageSample is one look at the agent during the outage.
type outageSample struct {
	At          float64 `json:"at_s"`
	AgentRSSMB  float64 `json:"agent_rss_mib"`
	PluginRSSMB float64 `json:"plugin_rss_mib"`
	BacklogMB   float64 `json:"backlog_mib"` // the down sink's part of the buffer on disk
	Buffered    int64   `json:"buffered_points"`
	Dropped     uint64  `json:"dropped_points"`
}

type outageResult struct {
	Rate      int            `json:"rate"`
	Seconds   float64        `json:"seconds"`
	Generated int64          `json:"generated"`
	Samples   []outageSample `json:"samples"`
	// After the outage, the agent stopped and started on the backlog.
	RestartRSSMB  float64 `json:"restart_agent_rss_mib"`
	RestartPeakMB float64 `json:"restart_agent_peak_rss_mib"`
	RestartSec    float64 `json:"restart_ready_s"` // from exec to ready
	BacklogMB     float64 `json:"restart_backlog_mib"`
}

func runOutage(ctx context.Context, o options) (*outageResult, error) {
	res := &outageResult{Rate: o.outageRate}
	syms := binancesim.SyntheticSymbols(market.Spot, o.symbols)
	// Only the newest trades are kept for REST: the run is long.
	sim, ws, rest, closeSim := startSim(syms, o.outageRate, 100_000)
	defer closeSim()

	dir := filepath.Join(o.workDir, "outage")
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	addr := harness.FreeAddr()
	closed := harness.FreeAddr() // nothing listens there: the sink is down
	cfgPath := filepath.Join(dir, "sluice.yaml")
	cfg := feedConfig{dataDir: filepath.Join(dir, "data"), pluginDir: filepath.Join(o.binDir, "plugins"), addr: addr,
		logLevel: "error", shutdownTimeout: "2s",
		sinks: []string{"sqlite: {type: sqlite, path: sluice.db}", fmt.Sprintf(`down: {type: influxdb, url: "http://%s", bucket: down/}`, closed)},
		feed:  "binance", feedSinks: []string{"sqlite", "down"}, ws: ws, rest: rest, symbols: syms}
	if err := cfg.write(cfgPath); err != nil {
		return nil, err
	}
	backlogDir := filepath.Join(dir, "data", "buffer", "sinks", "down")
	spec := harness.AgentSpec{Bin: filepath.Join(o.binDir, "sluice"), Config: cfgPath, Addr: addr,
		Log: filepath.Join(dir, "log.txt"), Env: o.agentEnv}

	ag, err := harness.StartAgent(spec)
	if err != nil {
		return nil, err
	}
	if err := harness.WaitUntil(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		n := 0
		for _, c := range sim.Conns() {
			n += len(c.Streams)
		}
		return n >= len(syms) && agentStatus(ag) != nil
	}); err != nil {
		ag.Stop()
		return nil, fmt.Errorf("outage: the feed did not subscribe: %w", err)
	}

	began := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, nextSample := began, began
	for {
		select {
		case <-ctx.Done():
			ag.Stop()
			return nil, ctx.Err()
		case now := <-tick.C:
			sim.Advance(now.Sub(last))
			last = now
			if now.Before(nextSample) {
				continue
			}
			nextSample = now.Add(o.outageEvery)
			s := outageSample{At: now.Sub(began).Seconds(), BacklogMB: float64(dirSize(backlogDir)) / (1 << 20)}
			s.AgentRSSMB, _ = procstat.RSSMB(ag.Pid())
			if st := agentStatus(ag); st != nil {
				s.PluginRSSMB, _ = procstat.RSSMB(st.pluginPid)
				s.Buffered, s.Dropped = st.downBuffered, st.downDropped
			}
			res.Samples = append(res.Samples, s)
			log.Printf("outage %4.0fs: agent %.0f MiB, plugin %.0f MiB, backlog %.0f MiB (%d points, %d dropped)",
				s.At, s.AgentRSSMB, s.PluginRSSMB, s.BacklogMB, s.Buffered, s.Dropped)
		}
		if time.Since(began) >= o.outageFor {
			break
		}
	}
	res.Seconds = time.Since(began).Seconds()
	for _, s := range syms {
		res.Generated += sim.TradeCount(market.Spot, s)
	}
	ag.Stop()

	// Start again on the backlog; the market is halted.
	res.BacklogMB = float64(dirSize(backlogDir)) / (1 << 20)
	t0 := time.Now()
	if ag, err = harness.StartAgent(spec); err != nil {
		return nil, err
	}
	defer ag.Stop()
	if err := harness.WaitUntil(ctx, 5*time.Minute, 50*time.Millisecond, func() bool { return agentStatus(ag) != nil }); err != nil {
		return nil, fmt.Errorf("outage: the agent did not start again on its backlog: %w", err)
	}
	res.RestartSec = time.Since(t0).Seconds()
	time.Sleep(5 * time.Second)
	res.RestartRSSMB, _ = procstat.RSSMB(ag.Pid())
	res.RestartPeakMB, _ = procstat.PeakRSSMB(ag.Pid())
	return res, nil
}

type outageStatus struct {
	pluginPid    int
	downBuffered int64
	downDropped  uint64
}

// agentStatus reads what the outage run samples from the agent's status;
// nil until the agent serves it.
func agentStatus(ag *harness.Proc) *outageStatus {
	st, ok := ag.Status()
	if !ok {
		return nil
	}
	out := &outageStatus{}
	if len(st.Feeds) > 0 {
		out.pluginPid = st.Feeds[0].Pid
	}
	for _, s := range st.Sinks {
		if s.Name == "down" {
			out.downBuffered = s.BufferedPoints
			for _, n := range s.Dropped {
				out.downDropped += n
			}
		}
	}
	return out
}

func (r *outageResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "Outage: %d trades/s for %.0fs into SQLite and into an InfluxDB sink that is down all along (%d trades generated); its backlog is in the disk buffer. The agent's memory as the backlog grows:\n\n",
		r.Rate, r.Seconds, r.Generated)
	b.WriteString("| at s | agent RSS MiB | plugin RSS MiB | backlog on disk MiB | points waiting | dropped |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Samples {
		fmt.Fprintf(b, "| %.0f | %.0f | %.0f | %.0f | %d | %d |\n", s.At, s.AgentRSSMB, s.PluginRSSMB, s.BacklogMB, s.Buffered, s.Dropped)
	}
	fmt.Fprintf(b, "\nStarted again on the %.0f MiB backlog (market halted): ready in %.1fs; agent RSS %.0f MiB 5s later, peak %.0f MiB.\n\n",
		r.BacklogMB, r.RestartSec, r.RestartRSSMB, r.RestartPeakMB)
}
