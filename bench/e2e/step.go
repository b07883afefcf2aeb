package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"

	"github.com/sluicehq/sluice/bench/internal/profile"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// pollEvery is how often the harness asks the store for the newest trade
// id of every symbol. A trade counts as committed at the first poll that
// sees it, so lags are upper bounds with this resolution.
const pollEvery = 50 * time.Millisecond

type stepSpec struct {
	target   string
	rate     int
	duration time.Duration
	// speed, when set, is the simulator's virtual clock speed relative to
	// the wall clock at each moment of the run (the burst run).
	speed  func(elapsed time.Duration) float64
	burst  bool
	influx *influxServer
}

// stepResult is one step's figures.
type stepResult struct {
	Target    string  `json:"target"`
	Rate      int     `json:"rate"`
	Symbols   int     `json:"symbols"`
	Generated int64   `json:"generated"`
	Landed    int64   `json:"landed"`
	Lost      int64   `json:"lost"`
	DriveSec  float64 `json:"drive_s"`
	// LandSec is from the first generated trade to the poll that saw the
	// last one committed; Sustained is Landed / LandSec.
	LandSec   float64 `json:"land_s"`
	Sustained float64 `json:"sustained_per_s"`
	// GenRate is what the simulator really generated per second (its
	// rate is approximate).
	GenRate  float64 `json:"generated_per_s"`
	LagP50ms float64 `json:"lag_p50_ms"`
	LagP99ms float64 `json:"lag_p99_ms"`
	LagMaxms float64 `json:"lag_max_ms"`
	// Per process (agent, plugin, floor, influxd): CPU seconds used from
	// the first generated trade to the end of the drain, per million
	// trades landed, and peak RSS (VmHWM) in MiB.
	CPUPerM map[string]float64 `json:"cpu_s_per_million"`
	RSSMB   map[string]float64 `json:"peak_rss_mib"`
	// AnonMB is RssAnon at the end of the step: the resident memory that
	// is the process's own (heap, stacks, SQLite's cache), without the
	// pages of its executable that RSS counts too.
	AnonMB map[string]float64 `json:"rss_anon_mib"`
	// WorkMB is the working set: the resident pages the process touched
	// from the first generated trade to the end of the drain (Referenced
	// after clear_refs). RSS also holds executable pages only start-up
	// ran, mapped 64 KiB at a time.
	WorkMB map[string]float64 `json:"working_set_mib"`
	// The harness (simulator and poller) and the machine's load.
	HarnessCPUPerM float64 `json:"harness_cpu_s_per_million"`
	Load1Start     float64 `json:"load1_start"`
	Load1End       float64 `json:"load1_end"`
	// BurstPeakRate is the fastest one-second generation rate (burst run).
	BurstPeakRate float64 `json:"burst_peak_rate,omitempty"`
	BufferPeakMB  float64 `json:"buffer_peak_mib,omitempty"`
	// PluginDropped is what the agent's status counted as dropped by the
	// plugin's queue while the pipeline pushed back (Sluice runs).
	PluginDropped uint64 `json:"plugin_dropped"`
	Pass          bool   `json:"pass"`
	Note          string `json:"note,omitempty"`
}

func runStep(ctx context.Context, o options, spec stepSpec) (stepResult, error) {
	res := stepResult{Target: spec.target, Rate: spec.rate, Symbols: o.symbols,
		CPUPerM: map[string]float64{}, RSSMB: map[string]float64{}, AnonMB: map[string]float64{}, WorkMB: map[string]float64{}}
	if spec.burst {
		res.Target = "burst-sqlite"
		res.Rate = o.burstBase
	}
	syms := binancesim.SyntheticSymbols(market.Spot, o.symbols)
	sim, ws, rest, closeSim := startSim(syms, spec.rate, max(100_000, int(float64(spec.rate)*(o.duration.Seconds()+5))))
	defer closeSim()

	dir := filepath.Join(o.workDir, fmt.Sprintf("%s-%d", res.Target, spec.rate))
	os.RemoveAll(dir) // a previous run's data would count as landed
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	tgt, err := startTarget(ctx, o, spec, dir, ws, rest, syms)
	if err != nil {
		return res, err
	}
	defer tgt.stop()

	// Wait until every symbol's stream is subscribed, so that every trade
	// generated from now on reaches the consumer.
	if err := tgt.waitSubscribed(ctx, func() bool {
		n := 0
		for _, c := range sim.Conns() {
			n += len(c.Streams)
		}
		return n >= len(syms)
	}); err != nil {
		return res, fmt.Errorf("%s did not subscribe every stream: %w", spec.target, err)
	}

	pids := tgt.pids()
	cpu0 := map[string]float64{}
	cleared := map[string]bool{}
	for name, pid := range pids {
		if cpu0[name], err = procstat.CPUSeconds(pid); err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		// Without clear_refs (a /proc that does not allow it) the step
		// goes on, with no working set for this process.
		if err := procstat.ClearReferenced(pid); err != nil {
			log.Printf("%s: no working set: %v", name, err)
		} else {
			cleared[name] = true
		}
	}
	self0 := procstat.SelfCPUSeconds()
	res.Load1Start = procstat.LoadAvg()

	// Poll the store for the newest id of every symbol until told to stop.
	var (
		pollMu   sync.Mutex
		history_ = map[string][]obs{}
		pollErr  error
	)
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	lastIDs := func() map[string]int64 {
		pollMu.Lock()
		defer pollMu.Unlock()
		out := make(map[string]int64, len(history_))
		for s, h := range history_ {
			out[s] = h[len(h)-1].id
		}
		return out
	}
	go func() {
		defer close(pollDone)
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
			ids, err := tgt.store.maxIDs(pollCtx)
			at := time.Now()
			pollMu.Lock()
			if err != nil {
				if pollCtx.Err() == nil && pollErr == nil {
					pollErr = err
				}
			}
			for s, id := range ids {
				h := history_[s]
				if len(h) == 0 || h[len(h)-1].id < id {
					history_[s] = append(h, obs{at, id})
				}
			}
			pollMu.Unlock()
		}
	}()

	// Drive the simulator's clock in real time (or at spec.speed), noting
	// each move for the trades' generation times.
	start := time.Now()
	var peak float64
	var bufPeak int64
	var marks []clockMark
	{
		t := time.NewTicker(10 * time.Millisecond)
		last := start
		var secStart time.Time = start
		var secCount int64
		count := func() int64 {
			var n int64
			for _, s := range syms {
				n += sim.TradeCount(market.Spot, s)
			}
			return n
		}
	drive:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				stopPoll()
				return res, ctx.Err()
			case now := <-t.C:
				elapsed := now.Sub(start)
				if elapsed >= spec.duration {
					break drive
				}
				speed := 1.0
				if spec.speed != nil {
					speed = spec.speed(elapsed)
				}
				step := time.Duration(float64(now.Sub(last)) * speed)
				last = now
				if step > 0 {
					wall := time.Now()
					sim.Advance(step)
					marks = append(marks, clockMark{wall, sim.Now()})
				}
				if spec.burst && now.Sub(secStart) >= time.Second {
					n := count()
					peak = max(peak, float64(n-secCount)/now.Sub(secStart).Seconds())
					secStart, secCount = now, n
					if b := dirSize(filepath.Join(dir, "data", "buffer")); b > bufPeak {
						bufPeak = b
					}
				}
			}
		}
		t.Stop()
	}
	res.DriveSec = time.Since(start).Seconds()

	// What was generated: every trade of every symbol, ids contiguous.
	want := map[string][]binancesim.Trade{}
	for _, s := range syms {
		tr := sim.Trades(market.Spot, s)
		if int64(len(tr)) != sim.TradeCount(market.Spot, s) {
			stopPoll()
			return res, fmt.Errorf("simulator history of %s holds %d of %d trades", s, len(tr), sim.TradeCount(market.Spot, s))
		}
		want[s] = tr
		res.Generated += int64(len(tr))
	}
	res.GenRate = float64(res.Generated) / res.DriveSec

	// Drain: until every symbol's last trade is committed, or no progress
	// for 5s, or o.drain. A burst leaves the plugin REST backfills of
	// what its queue dropped, and trades after each hole wait for them;
	// Binance's request weight is budgeted per minute, so the burst
	// waits up to a minute and a bit without progress, two in all.
	drain, stall := o.drain, 5*time.Second
	if spec.burst {
		drain, stall = max(drain, 2*time.Minute), 70*time.Second
	}
	deadline := time.Now().Add(drain)
	var lastProgress = time.Now()
	var prev int64
	for time.Now().Before(deadline) && time.Since(lastProgress) < stall {
		ids := lastIDs()
		done := true
		var sum int64
		for s, tr := range want {
			sum += ids[s]
			if len(tr) > 0 && ids[s] < tr[len(tr)-1].ID {
				done = false
			}
		}
		if done {
			break
		}
		if sum != prev {
			prev, lastProgress = sum, time.Now()
		}
		if spec.burst {
			bufPeak = max(bufPeak, dirSize(filepath.Join(dir, "data", "buffer")))
		}
		time.Sleep(pollEvery)
	}
	stopPoll()
	<-pollDone
	if pollErr != nil {
		log.Printf("%s: a poll failed: %v", spec.target, pollErr)
	}

	// CPU and memory, before the processes go.
	for name, pid := range pids {
		c, err := procstat.CPUSeconds(pid)
		if err != nil {
			return res, fmt.Errorf("%s: %w (exited?); log:\n%s", name, err, tgt.proc.LogTail())
		}
		res.CPUPerM[name] = c - cpu0[name]
		if res.RSSMB[name], err = procstat.PeakRSSMB(pid); err != nil {
			return res, err
		}
		if res.AnonMB[name], err = procstat.AnonRSSMB(pid); err != nil {
			return res, err
		}
		if cleared[name] {
			if res.WorkMB[name], err = procstat.ReferencedMB(pid); err != nil {
				return res, err
			}
		}
	}
	res.PluginDropped = tgt.pluginDropped()
	selfCPU := procstat.SelfCPUSeconds() - self0
	res.Load1End = procstat.LoadAvg()

	counts, err := tgt.store.counts(ctx)
	if err != nil {
		return res, fmt.Errorf("counting landed trades: %w", err)
	}
	var lastCommit time.Time
	var lags []float64
	for s, tr := range want {
		c := counts[s]
		res.Landed += c.n
		h := history_[s]
		if len(h) > 0 && h[len(h)-1].at.After(lastCommit) {
			lastCommit = h[len(h)-1].at
		}
		lags = append(lags, tradeLags(tr, h, marks)...)
	}
	res.Lost = res.Generated - res.Landed
	res.LandSec = lastCommit.Sub(start).Seconds()
	if res.LandSec > 0 {
		res.Sustained = float64(res.Landed) / res.LandSec
	}
	if len(lags) > 0 && !spec.burst {
		slices.Sort(lags)
		res.LagP50ms = quantile(lags, 0.50)
		res.LagP99ms = quantile(lags, 0.99)
		res.LagMaxms = lags[len(lags)-1]
	}
	if res.Landed > 0 {
		for name, c := range res.CPUPerM {
			res.CPUPerM[name] = c / float64(res.Landed) * 1e6
		}
		res.HarnessCPUPerM = selfCPU / float64(res.Landed) * 1e6
	}
	res.BurstPeakRate = peak
	res.BufferPeakMB = float64(bufPeak) / (1 << 20)
	res.Pass = res.Lost == 0 && res.Generated > 0 && (spec.burst || res.LagP99ms < 1000)
	if res.Lost != 0 {
		res.Note = fmt.Sprintf("%d of %d trades missing after the drain (plugin queue dropped %d)", res.Lost, res.Generated, res.PluginDropped)
	}
	return res, nil
}

// calibrate returns the TradeRate option that makes the simulator really
// generate o.TradeRate trades a second: its rate is approximate (trades
// per taker order are drawn at random), about 1.4 times the option. It
// runs the same seeded market for 5s of virtual time without clients.
// startSim starts the simulated exchange on loopback, trading syms at
// rate (calibrated) on a clock the caller drives, keeping the newest
// history trades of each symbol for REST.
func startSim(syms []string, rate, history int) (sim *binancesim.Sim, ws, rest string, closeFn func()) {
	opts := binancesim.Options{
		Markets:    []market.Market{market.Spot},
		Symbols:    map[market.Market][]string{market.Spot: syms},
		TradeRate:  float64(rate),
		HistoryCap: history,
		Manual:     true,
		// The simulator drops a connection whose send queue fills; at the
		// top steps a consumer may fall behind by seconds, and that is
		// what this benchmark measures, so the queue holds 10s of trades.
		SendQueue: max(16384, rate*10),
		Seed:      1,
	}
	opts.TradeRate = harness.CalibrateTradeRate(opts, opts.TradeRate)
	sim = binancesim.New(opts)
	srv := httptest.NewServer(sim)
	ws, rest = binancesim.URLs(srv.URL, market.Spot)
	return sim, ws, rest, func() { srv.Close(); sim.Close() }
}

func quantile(sorted []float64, q float64) float64 {
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// target is what a step measures: its process and the store it writes.
type target struct {
	proc  *harness.Proc
	store store
	// agent is set for the Sluice targets: the process is the agent, with
	// a status API and a plugin; otherwise it is a floor.
	agent     bool
	pluginPid int
	extra     map[string]int // other processes measured (influxd)
}

// feedName is the feed the Sluice targets' config runs.
const feedName = "binance"

// waitSubscribed waits until the target's consumer has subscribed every
// stream (subscribed) and, for the agent, its feed runs.
func (t *target) waitSubscribed(ctx context.Context, subscribed func() bool) error {
	const limit, every = 30 * time.Second, 50 * time.Millisecond
	if !t.agent {
		if err := harness.WaitUntil(ctx, limit, every, subscribed); err != nil {
			return fmt.Errorf("%w; log:\n%s", err, t.proc.LogTail())
		}
		return nil
	}
	f, err := t.proc.WaitFeed(ctx, feedName, limit, every, subscribed)
	t.pluginPid = f.Pid
	return err
}

// pluginDropped reads the feed's plugin_dropped counter from the status.
func (t *target) pluginDropped() uint64 {
	if !t.agent {
		return 0
	}
	f, _ := t.proc.Feed(feedName)
	return f.PluginDropped
}

func (t *target) pids() map[string]int {
	if !t.agent {
		return map[string]int{"floor": t.proc.Pid()}
	}
	out := map[string]int{"agent": t.proc.Pid(), "plugin": t.pluginPid}
	for k, v := range t.extra {
		out[k] = v
	}
	return out
}

// stop ends the process with SIGTERM (the agent drains and exits), then
// SIGKILL after 20s.
func (t *target) stop() {
	if t.store != nil {
		t.store.Close()
	}
	t.proc.Stop()
}

func startTarget(ctx context.Context, o options, spec stepSpec, dir, ws, rest string, syms []string) (*target, error) {
	t := &target{}
	logPath := filepath.Join(dir, "log.txt")
	dbPath := filepath.Join(dir, "data", "sluice.db")
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return nil, err
	}
	var floor *exec.Cmd
	var ag harness.AgentSpec
	switch spec.target {
	case "floor-sqlite":
		floor = exec.Command(filepath.Join(o.binDir, "floor"), "-ws", ws, "-db", dbPath, "-symbols", strings.Join(syms, ","))
		floor.Env = harness.ChildEnv()
		if o.profile != "" {
			floor.Env = append(floor.Env, profileEnv(o, spec)...)
		}
	case "floor-cgo":
		floor = exec.Command(filepath.Join(o.binDir, "floorcgo"), "-ws", ws, "-db", dbPath, "-symbols", strings.Join(syms, ","))
		floor.Env = harness.ChildEnv()
		// Its table has the symbol and trade id and no exchange or
		// market columns; the unique index is on (symbol, trade_id).
		s, err := openSQLite(dbPath)
		if err != nil {
			return nil, err
		}
		t.store = s
	case "sluice-sqlite", "sluice-sqlite-cgo", "sluice-influxdb":
		t.agent = true
		addr := harness.FreeAddr()
		cfgPath := filepath.Join(dir, "sluice.yaml")
		sink, sinkName := "sqlite: {type: sqlite, path: sluice.db}", "sqlite"
		if spec.target == "sluice-influxdb" {
			db := fmt.Sprintf("bench_%d_%d", spec.rate, time.Now().UnixNano())
			if err := influxExec(ctx, spec.influx.url, "CREATE DATABASE "+db); err != nil {
				return nil, err
			}
			acks := startAckProxy(spec.influx.url)
			sink, sinkName = fmt.Sprintf("influxdb: {type: influxdb, url: %q, bucket: %s/}", acks.url(), db), "influxdb"
			t.extra = map[string]int{"influxd": spec.influx.Pid()}
			t.store = &influxStore{base: spec.influx.url, db: db, client: &http.Client{Timeout: 5 * time.Second}, acks: acks}
		}
		cfg := feedConfig{dataDir: filepath.Join(dir, "data"), pluginDir: filepath.Join(o.binDir, "plugins"), addr: addr,
			sinks: []string{sink}, feed: feedName, feedSinks: []string{sinkName}, ws: ws, rest: rest, symbols: syms}
		if err := cfg.write(cfgPath); err != nil {
			return nil, err
		}
		bin := "sluice"
		if spec.target == "sluice-sqlite-cgo" {
			bin = "sluice-cgo" // built with -tags sqlite_cgo
		}
		ag = harness.AgentSpec{Bin: filepath.Join(o.binDir, bin), Config: cfgPath, Addr: addr, Log: logPath}
		if o.profile != "" {
			ag.Env = profileEnv(o, spec)
			// The plugin gets none of the agent's SLUICEBENCH_*
			// variables: it reads them from a file beside it.
			if err := profile.WriteFile(filepath.Join(o.binDir, "plugins", "sluice-source-binance"), profilePrefix(o, spec), spec.duration); err != nil {
				return nil, err
			}
		}
		ag.Env = append(ag.Env, o.agentEnv...)
	default:
		return nil, fmt.Errorf("unknown target %q", spec.target)
	}
	if t.store == nil {
		s, err := openSQLite(dbPath)
		if err != nil {
			return nil, err
		}
		t.store = s
	}
	var err error
	if t.agent {
		t.proc, err = harness.StartAgent(ag)
	} else {
		t.proc, err = harness.Start(floor, logPath)
	}
	if err != nil {
		t.store.Close()
		return nil, err
	}
	return t, nil
}

// profileEnv asks the profiling builds for profiles of the step.
func profileEnv(o options, spec stepSpec) []string {
	return []string{
		profile.EnvPrefix + "=" + profilePrefix(o, spec),
		fmt.Sprintf("%s=%s", profile.EnvFor, spec.duration)}
}

func profilePrefix(o options, spec stepSpec) string {
	return filepath.Join(o.profile, fmt.Sprintf("%s-%d", spec.target, spec.rate))
}
