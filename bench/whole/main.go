// Command whole is the "whole of Binance" benchmark profile: the simulated
// exchange serves 2 000 spot symbols with trade, bookTicker and
// depth@100ms streams at a mix of rates taken from recorded Binance
// sessions, and the real sluice and sluice-source-binance binaries, with
// their default settings and one feed file as a user writes it, stream
// them into SQLite. From outside it measures what landed and when, and
// the CPU and memory of each process, at stepped loads; each stream kind
// can run alone to apportion the cost. See bench/README.md for the method
// and the source of the mix.
//
//	go run ./bench/whole -out bench/results/whole.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"
	"github.com/sluicehq/sluice/bench/internal/procstat"
)

// The mix at scale 1, from the recorded spot sessions in
// shared/data/binance/recorded (bench/README.md gives the derivation).
const (
	// baseTradeRate is the simulator's TradeRate option at scale 1: with
	// the share and skew below it generates about 2 700 book events and
	// 150 trades a second over 2 000 symbols, the busiest symbol about
	// 150 book events a second, as BTCUSDT in the 2021-04-04 session.
	baseTradeRate = 100
	// takerShare: 1.7 % of engine events are taker orders, so trades are
	// about 5.5 % of book updates (the sessions' 24.6 trades/s against
	// 461 update ids/s).
	takerShare = 0.017
	// skew: symbol i has weight 1/i^0.8, a flatter split than 1/i, as the
	// mid-cap symbols of the sessions are busier than 1/i would make them.
	skew = 0.8
)

// allStreams are the kinds of the profile, in the feed file's order.
var allStreams = []string{"trade", "bookTicker", "depth@100ms"}

type options struct {
	symbols   int
	scales    []float64
	stage     time.Duration
	warmupMax time.Duration
	drain     time.Duration
	runs      []string
	binDir    string
	workDir   string
	out       string
	jsonOut   string
	profile   string
	// profileFor is the profiled window from the agent's start.
	profileFor time.Duration
	allStages  bool
	// Non-default book settings for the feed file ("" and 0: not written).
	bookInterval string
	bookDepth    int
}

func main() {
	var o options
	var scales, runs string
	flag.IntVar(&o.symbols, "symbols", 2000, "symbols (S0001USDT, ...), each with every stream kind of the run")
	flag.StringVar(&scales, "scales", "1,4,16", "load stages, as multiples of the recorded mix")
	flag.DurationVar(&o.stage, "stage", 30*time.Second, "how long each stage generates")
	flag.DurationVar(&o.warmupMax, "warmup-max", 5*time.Minute, "longest wait for every depth book to load (its snapshot) before the stages")
	flag.DurationVar(&o.drain, "drain", 30*time.Second, "longest wait after the last stage for what was generated to land")
	flag.StringVar(&runs, "runs", "all,trade,bookTicker", "runs, in order: all (every kind together) or one stream kind alone (trade, bookTicker, depth@100ms)")
	flag.StringVar(&o.binDir, "bin", "", "directory holding sluice and plugins/sluice-source-binance (default: build them)")
	flag.StringVar(&o.workDir, "work", "", "working directory (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.out, "out", "", "write the Markdown report here as well as to stdout")
	flag.StringVar(&o.jsonOut, "json", "", "write every run's figures here as JSON")
	flag.StringVar(&o.profile, "profile", "", "build bench/prof and write CPU and allocation profiles of each run's agent into this directory (the agent gives the plugin only the environment it needs, so the plugin writes none)")
	flag.DurationVar(&o.profileFor, "profile-for", time.Hour, "with -profile: the window profiled, from the agent's start (default: the whole run)")
	flag.BoolVar(&o.allStages, "all-stages", false, "run every stage even after one falls behind")
	flag.StringVar(&o.bookInterval, "book-interval", "", "write this book_interval into the feed file (default: not set, the plugin's default)")
	flag.IntVar(&o.bookDepth, "book-depth", 0, "write this book_depth into the feed file (default: not set, the plugin's default)")
	mixDir := flag.String("mix", "", "print the per-symbol figures of the recorded spot sessions in this directory (shared/data/binance/recorded) and exit")
	flag.Parse()
	if *mixDir != "" {
		mix, err := recordedMix(*mixDir)
		if err != nil {
			log.Fatal(err)
		}
		printMix(os.Stdout, mix)
		return
	}
	for _, f := range strings.Split(scales, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			log.Fatalf("bad scale %q", f)
		}
		o.scales = append(o.scales, v)
	}
	for _, r := range strings.Split(runs, ",") {
		if r = strings.TrimSpace(r); r != "all" && !slices.Contains(allStreams, r) {
			log.Fatalf("unknown run %q: want all, trade, bookTicker or depth@100ms", r)
		}
		o.runs = append(o.runs, strings.TrimSpace(r))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options) error {
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "sluice-whole-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.workDir = dir
	}
	if o.binDir == "" {
		o.binDir = filepath.Join(o.workDir, "bin")
		if err := build(o.binDir, o.profile != ""); err != nil {
			return err
		}
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	rep := &report{opts: o, started: time.Now(), load0: procstat.LoadAvg()}
	for _, name := range o.runs {
		streams := []string{name}
		if name == "all" {
			streams = allStreams
		}
		log.Printf("run %s: %d symbols × %v, stages %v of %v", name, o.symbols, streams, o.scales, o.stage)
		r, err := runOne(ctx, o, name, streams)
		if err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
		log.Print(r.summary())
		rep.runs = append(rep.runs, r)
	}
	rep.finished, rep.load1 = time.Now(), procstat.LoadAvg()
	text := rep.markdown()
	fmt.Print(text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep.runs, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// build compiles the agent and the Binance plugin from this module; with
// profiled, the profiling builds of bench/prof.
func build(dir string, profiled bool) error {
	agent, plugin := harness.AgentPkgs(profiled)
	if err := harness.GoBuild(dir, "sluice", agent, ""); err != nil {
		return err
	}
	return harness.GoBuild(dir, "plugins/sluice-source-binance", plugin, "")
}
