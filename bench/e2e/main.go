// Command e2e is Sluice's end-to-end benchmark. It runs the simulated
// exchange in this process at stepped trade rates over many symbols and,
// for each step, the real agent and Binance plugin binaries (or the floor
// program) streaming `trade` into SQLite or InfluxDB 1.8. It measures from
// outside: what landed in the store, when, and what each process spent in
// CPU and memory. See bench/README.md for the method.
//
//	go run ./bench/e2e -out bench/results/e2e.md
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"
)

type options struct {
	rates       []int
	influxRates []int
	symbols     int
	duration    time.Duration
	drain       time.Duration
	targets     []string
	binDir      string
	workDir     string
	influxd     string
	out         string
	jsonOut     string
	keepGoing   bool
	sequential  bool
	burst       bool
	burstBase   int
	burstFactor int
	burstFor    time.Duration
	profile     string
	cpuprofile  string
	agentEnv    []string // extra environment for the agent (settings to compare)
	outageRate  int
	outageFor   time.Duration
	outageEvery time.Duration
	// The soak run (soak.go).
	soakRate      int
	soakFor       time.Duration
	soakEvery     time.Duration
	soakDropEvery time.Duration
}

func main() {
	exit := 0
	defer func() { os.Exit(exit) }()
	var o options
	var rates, influxRates, targets string
	flag.StringVar(&rates, "rates", "5000,10000,20000,35000,50000,65000,80000,100000", "SQLite steps: trades/s over all symbols")
	flag.StringVar(&influxRates, "influx-rates", "20000,50000,100000,110000,120000", "InfluxDB steps: trades/s")
	flag.IntVar(&o.symbols, "symbols", 100, "symbols streamed (S0001USDT, ...)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each step generates trades")
	flag.DurationVar(&o.drain, "drain", 15*time.Second, "longest wait for a step's last trades to land")
	flag.StringVar(&targets, "targets", "sluice-sqlite,sluice-sqlite-cgo,floor-sqlite,floor-cgo,sluice-influxdb,burst,outage", "what to run, in order")
	flag.IntVar(&o.outageRate, "outage-rate", 10000, "outage run: trades/s while a sink is down")
	flag.DurationVar(&o.outageFor, "outage-for", 10*time.Minute, "outage run: how long the sink is down")
	flag.DurationVar(&o.outageEvery, "outage-every", 30*time.Second, "outage run: how often the agent's memory is sampled")
	flag.IntVar(&o.soakRate, "soak-rate", 2000, "soak run (-targets soak): trades/s")
	flag.DurationVar(&o.soakFor, "soak-for", 30*time.Minute, "soak run: how long it streams")
	flag.DurationVar(&o.soakEvery, "soak-every", time.Minute, "soak run: how often memory, goroutines, threads and files are sampled")
	flag.DurationVar(&o.soakDropEvery, "soak-drop-every", 5*time.Minute, "soak run: how often the exchange drops every connection (0: never)")
	flag.StringVar(&o.binDir, "bin", "", "directory holding sluice, plugins/sluice-source-binance and floor (default: build them)")
	flag.StringVar(&o.workDir, "work", "", "working directory (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.influxd, "influxd", os.Getenv("SLUICE_INFLUXD"), "influxd 1.8 binary for the InfluxDB run")
	flag.StringVar(&o.out, "out", "", "write the Markdown report here as well as to stdout")
	flag.StringVar(&o.jsonOut, "json", "", "write every step's figures here as JSON")
	flag.BoolVar(&o.keepGoing, "all-steps", false, "run every step even after one fails")
	flag.BoolVar(&o.sequential, "sequential", false, "run each SQLite target through all its rates before the next (default: all SQLite targets at one rate, then the next rate)")
	flag.IntVar(&o.burstBase, "burst-base", 10000, "burst run: the steady rate, trades/s")
	flag.IntVar(&o.burstFactor, "burst-factor", 20, "burst run: the burst is this many times the steady rate")
	flag.DurationVar(&o.burstFor, "burst-for", 2*time.Second, "burst run: how long the burst lasts")
	flag.StringVar(&o.profile, "profile", "", "write pprof CPU and allocation profiles of the agent and plugin into this directory (sluice runs only; adds the profiling cost)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write this harness's own CPU profile here")
	flag.Func("agent-env", "a `SLUICE_KEY=value` setting for the agent, to measure a non-default (repeatable)", func(kv string) error {
		if !strings.HasPrefix(kv, "SLUICE_") || !strings.Contains(kv, "=") {
			return fmt.Errorf("want SLUICE_KEY=value, got %q", kv)
		}
		o.agentEnv = append(o.agentEnv, kv)
		return nil
	})
	flag.Parse()
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	if o.rates, err = parseInts(rates); err == nil {
		o.influxRates, err = parseInts(influxRates)
	}
	if err != nil {
		log.Fatal(err)
	}
	o.targets = strings.Split(targets, ",")
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			log.Fatal(err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Print(err)
		exit = 1
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.workDir = dir
	}
	var notes []string
	if o.binDir == "" {
		o.binDir = filepath.Join(o.workDir, "bin")
		if err := build(o.binDir, o.profile != ""); err != nil {
			return err
		}
		// The cgo builds need a C compiler; without one their targets
		// are left out, and the report says so.
		cgo := []struct {
			target string
			build  func() error
		}{
			{"floor-cgo", func() error { return buildFloorCgo(o.binDir) }},
			{"sluice-sqlite-cgo", func() error { return buildCgoAgent(o.binDir, o.profile != "") }},
		}
		for _, c := range cgo {
			if !slices.Contains(o.targets, c.target) {
				continue
			}
			if err := c.build(); err != nil {
				log.Printf("skipping %s: %v", c.target, err)
				notes = append(notes, fmt.Sprintf("%s skipped: %v", c.target, err))
				o.targets = slices.DeleteFunc(o.targets, func(t string) bool { return t == c.target })
			}
		}
	}
	rep := &report{opts: o, started: time.Now(), notes: notes}
	var influx *influxServer
	defer func() {
		if influx != nil {
			influx.Stop()
		}
	}()
	sqliteDone := false
	for _, target := range o.targets {
		steps := o.rates
		switch target {
		case "sluice-sqlite", "sluice-sqlite-cgo", "floor-sqlite", "floor-cgo":
			if !o.sequential {
				// Every SQLite target at one rate, then the next rate:
				// the floors and Sluice meet the same machine load, so
				// their ratios are fair.
				if !sqliteDone {
					sqliteDone = true
					if err := runSideBySide(ctx, o, rep); err != nil {
						return err
					}
				}
				continue
			}
		case "sluice-influxdb":
			steps = o.influxRates
			if o.influxd == "" {
				log.Printf("skipping %s: no influxd (set SLUICE_INFLUXD or -influxd)", target)
				rep.notes = append(rep.notes, "InfluxDB run skipped: no influxd binary")
				continue
			}
			if influx == nil {
				var err error
				if influx, err = startInflux(ctx, o.influxd, filepath.Join(o.workDir, "influxd")); err != nil {
					return err
				}
			}
		case "outage":
			r, err := runOutage(ctx, o)
			if err != nil {
				return fmt.Errorf("outage: %w", err)
			}
			rep.outage = r
			continue
		case "soak":
			r, err := runSoak(ctx, o)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			rep.soak = r
			continue
		case "burst":
			r, err := runStep(ctx, o, stepSpec{target: "sluice-sqlite", rate: o.burstBase * o.burstFactor,
				speed: burstSpeed(o), duration: o.duration, burst: true})
			if err != nil {
				return fmt.Errorf("burst: %w", err)
			}
			log.Print(r.line())
			rep.burst = &r
			continue
		default:
			return fmt.Errorf("unknown target %q", target)
		}
		for _, rate := range steps {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := runStep(ctx, o, stepSpec{target: target, rate: rate, duration: o.duration, influx: influx})
			if err != nil {
				return fmt.Errorf("%s at %d/s: %w", target, rate, err)
			}
			log.Print(r.line())
			rep.steps = append(rep.steps, r)
			if !r.Pass && !o.keepGoing {
				break // the next step only fails harder; save the time
			}
		}
	}
	rep.finished = time.Now()
	text := rep.markdown()
	fmt.Print(text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep.all(), "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
		if rep.outage != nil {
			b, _ := json.MarshalIndent(rep.outage, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(o.jsonOut, ".json")+"-outage.json", b, 0o644); err != nil {
				return err
			}
		}
		if rep.soak != nil {
			b, _ := json.MarshalIndent(rep.soak, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(o.jsonOut, ".json")+"-soak.json", b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// sqliteTargets are the targets stepped through the SQLite rates.
var sqliteTargets = []string{"sluice-sqlite", "sluice-sqlite-cgo", "floor-sqlite", "floor-cgo"}

// runSideBySide runs the SQLite targets of o.targets rate by rate, in the
// order given. A target that fails a step runs no higher step (unless
// -all-steps); the others go on.
func runSideBySide(ctx context.Context, o options, rep *report) error {
	var targets []string
	for _, t := range o.targets {
		if slices.Contains(sqliteTargets, t) && !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	failed := map[string]bool{}
	for _, rate := range o.rates {
		for _, target := range targets {
			if failed[target] {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := runStep(ctx, o, stepSpec{target: target, rate: rate, duration: o.duration})
			if err != nil {
				return fmt.Errorf("%s at %d/s: %w", target, rate, err)
			}
			log.Print(r.line())
			rep.steps = append(rep.steps, r)
			failed[target] = !r.Pass && !o.keepGoing
		}
	}
	return nil
}

// burstSpeed drives the burst run: the simulator is set to the burst rate
// and its virtual clock runs at 1/factor of wall speed (the steady rate)
// except during the burst, in the middle of the run, when it runs at full
// speed. Event times then fall behind the wall clock, so the burst run
// reports memory and loss, not lag.
func burstSpeed(o options) func(elapsed time.Duration) float64 {
	from := (o.duration - o.burstFor) / 2
	slow := 1 / float64(o.burstFactor)
	return func(elapsed time.Duration) float64 {
		if elapsed >= from && elapsed < from+o.burstFor {
			return 1
		}
		return slow
	}
}

// build compiles the agent, the Binance plugin and the floor program from
// the module this runs in; profiled, the agent and plugin are the
// profiling builds in bench/prof.
func build(dir string, profiled bool) error {
	agent, plugin := harness.AgentPkgs(profiled)
	for _, b := range [][2]string{
		{"sluice", agent},
		{"plugins/sluice-source-binance", plugin},
		{"floor", "./bench/floor"},
	} {
		if err := harness.GoBuild(dir, b[0], b[1], ""); err != nil {
			return err
		}
	}
	return nil
}

// buildCgoAgent builds the agent with the cgo SQLite driver
// (-tags sqlite_cgo) as dir/sluice-cgo. It needs a C compiler.
func buildCgoAgent(dir string, profiled bool) error {
	agent, _ := harness.AgentPkgs(profiled)
	if err := harness.GoBuild(dir, "sluice-cgo", agent, "sqlite_cgo"); err != nil {
		return fmt.Errorf("%w (-tags sqlite_cgo needs cgo and a C compiler)", err)
	}
	return nil
}

// buildFloorCgo builds bench/floorcgo, a module of its own (so that the
// cgo driver is its dependency only), into dir/floorcgo. It needs cgo and
// a C compiler; without them the floor-cgo target is left out.
func buildFloorCgo(dir string) error {
	out, err := filepath.Abs(filepath.Join(dir, "floorcgo"))
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join("bench", "floorcgo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build bench/floorcgo (needs cgo and a C compiler): %w", err)
	}
	return nil
}

var errNotReady = errors.New("not ready")
