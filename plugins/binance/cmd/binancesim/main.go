// Command binancesim serves a simulated Binance (spot, USD-M, COIN-M
// market streams and REST market data) on a loopback address, for demos
// and benchmarks of the Binance source. It prints each market's WebSocket
// and REST base URLs, and can inject faults on a schedule.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "binancesim:", err)
		os.Exit(1)
	}
}

// faults are the scheduled fault flags.
type faults struct {
	dropEvery     time.Duration
	dropCode      int
	dropReason    string
	dropN         int
	shutdownEvery time.Duration
	expireEvery   time.Duration
	gapEvery      time.Duration
	stall         string
	stallFor      time.Duration
	stallEvery    time.Duration
	refuse        int
	refuseStatus  int
	refuseRetry   time.Duration
}

func run() error {
	var (
		listen      = flag.String("listen", "127.0.0.1:0", "address to serve on")
		markets     = flag.String("markets", "spot,usdm,coinm", "markets to serve")
		symbols     = flag.String("symbols", "", "spot and USD-M symbols, comma separated (default BTCUSDT,ETHUSDT)")
		coinm       = flag.String("coinm-symbols", "", "COIN-M symbols (default BTCUSD_PERP,ETHUSD_PERP)")
		nsymbols    = flag.Int("nsymbols", 0, "add this many synthetic symbols to each market")
		rate        = flag.Float64("rate", 50, "trades per second per market, over all its symbols")
		seed        = flag.Uint64("seed", 1, "generator seed")
		history     = flag.Int("history", 100_000, "trades kept per symbol for REST backfill")
		replay      = flag.String("replay", "", "recorded session (*.replay.jsonl) to serve instead of generated data for its market")
		replaySpeed = flag.Float64("replay-speed", 1, "replay time compression: 1 real time, 0 as fast as the client reads")
		ping        = flag.Duration("ping", 0, "server ping interval (0: Binance's, 20s spot, 3m futures)")
		pongTimeout = flag.Duration("pong-timeout", 0, "drop a connection with a ping unanswered this long (0: Binance's)")
		lifetime    = flag.Duration("lifetime", 0, "maximum connection lifetime (0: 24h)")
		maxIncoming = flag.Int("max-incoming", 0, "incoming messages per second before a close (0: 5 spot, 10 futures)")
		weightLimit = flag.Int("weight-limit", 0, "REST weight per IP per minute (0: 6000 spot, 2400 futures)")
		f           faults
	)
	flag.DurationVar(&f.dropEvery, "drop-every", 0, "drop connections this often")
	flag.IntVar(&f.dropCode, "drop-code", 0, "close code for drops (0: abrupt TCP close, or 1000, 1001, 1008)")
	flag.StringVar(&f.dropReason, "drop-reason", "", "close reason for drops")
	flag.IntVar(&f.dropN, "drop-n", 0, "connections dropped each time, picked at random (0: all)")
	flag.DurationVar(&f.shutdownEvery, "shutdown-every", 0, "send serverShutdown (then close with 1001 after 1s) this often")
	flag.DurationVar(&f.expireEvery, "expire-every", 0, "force the max-lifetime close this often")
	flag.DurationVar(&f.gapEvery, "gap-every", 0, "lose one diff-depth event of every symbol this often")
	flag.StringVar(&f.stall, "stall", "", "market:stream to stall, e.g. spot:btcusdt@depth@100ms")
	flag.DurationVar(&f.stallFor, "stall-for", 5*time.Second, "how long a stall lasts")
	flag.DurationVar(&f.stallEvery, "stall-every", 30*time.Second, "how often the stall starts")
	flag.IntVar(&f.refuse, "refuse", 0, "refuse the first N handshakes")
	flag.IntVar(&f.refuseStatus, "refuse-status", 429, "HTTP status of refused handshakes")
	flag.DurationVar(&f.refuseRetry, "refuse-retry-after", 5*time.Second, "Retry-After of refused handshakes")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	opts := binancesim.Options{
		Symbols:      map[market.Market][]string{},
		Seed:         *seed,
		TradeRate:    *rate,
		HistoryCap:   *history,
		PingInterval: *ping,
		PongTimeout:  *pongTimeout,
		MaxLifetime:  *lifetime,
		MaxIncoming:  *maxIncoming,
		WeightLimit:  *weightLimit,
		ReplaySpeed:  *replaySpeed,
		Logger:       log,
	}
	for _, name := range strings.Split(*markets, ",") {
		m, err := market.ParseMarket(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		opts.Markets = append(opts.Markets, m)
		list := *symbols
		if m == market.COINM {
			list = *coinm
		}
		var syms []string
		if list != "" {
			syms = strings.Split(list, ",")
		} else {
			syms = binancesim.DefaultSymbols(m)
		}
		opts.Symbols[m] = append(syms, binancesim.SyntheticSymbols(m, *nsymbols)...)
	}
	if *replay != "" {
		r, err := binancesim.LoadReplay(*replay)
		if err != nil {
			return err
		}
		opts.Replay = r
	}

	sim := binancesim.New(opts)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	markets2 := opts.Markets
	if opts.Replay != nil && !contains(markets2, opts.Replay.Market) {
		markets2 = append(markets2, opts.Replay.Market)
	}
	for _, m := range markets2 {
		ws, rest := binancesim.URLs(base, m)
		fmt.Printf("%-5s ws_url=%s rest_url=%s\n", m, ws, rest)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ran := make(chan error, 1)
	go func() { ran <- sim.Run(ctx) }()
	if f.refuse > 0 {
		sim.RefuseHandshakes(f.refuse, f.refuseStatus, f.refuseRetry)
	}
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		runFaults(ctx, sim, opts.Markets, f, log)
	}()

	select {
	case <-ctx.Done():
	case err := <-served:
		stop()
		<-faultsDone
		sim.Close()
		return fmt.Errorf("serve: %w", err)
	}
	<-faultsDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sim.Close()
	err = srv.Shutdown(shutdownCtx)
	<-ran
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func contains(ms []market.Market, m market.Market) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// runFaults injects the scheduled faults until ctx ends.
func runFaults(ctx context.Context, sim *binancesim.Sim, markets []market.Market, f faults, log *slog.Logger) {
	type job struct {
		every time.Duration
		do    func()
	}
	how := binancesim.Close{Code: f.dropCode, Reason: f.dropReason, Abrupt: f.dropCode == 0}
	jobs := []job{
		{f.dropEvery, func() {
			if f.dropN > 0 {
				log.Info("fault: drop random", "conns", len(sim.DropRandom(f.dropN, how)))
			} else {
				log.Info("fault: drop all", "conns", sim.DropAll(how))
			}
		}},
		{f.shutdownEvery, func() { log.Info("fault: serverShutdown", "conns", sim.ServerShutdown(time.Second)) }},
		{f.expireEvery, func() { log.Info("fault: expire", "conns", sim.ExpireConns()) }},
		{f.gapEvery, func() {
			for _, m := range markets {
				for _, s := range sim.Symbols(m) {
					sim.InjectDepthGap(m, s)
				}
			}
			log.Info("fault: depth gap")
		}},
	}
	if f.stall != "" {
		mname, stream, ok := strings.Cut(f.stall, ":")
		m, err := market.ParseMarket(mname)
		if !ok || err != nil {
			log.Error("bad -stall, want market:stream", "stall", f.stall)
		} else {
			jobs = append(jobs, job{f.stallEvery, func() {
				sim.Stall(m, stream, f.stallFor)
				log.Info("fault: stall", "market", m.String(), "stream", stream, "for", f.stallFor.String())
			}})
		}
	}
	var tickers []*time.Ticker
	cases := make([]func(), 0, len(jobs))
	chans := make([]<-chan time.Time, 0, len(jobs))
	for _, j := range jobs {
		if j.every > 0 {
			t := time.NewTicker(j.every)
			tickers = append(tickers, t)
			chans = append(chans, t.C)
			cases = append(cases, j.do)
		}
	}
	defer func() {
		for _, t := range tickers {
			t.Stop()
		}
	}()
	merged := make(chan int)
	var wg sync.WaitGroup
	defer wg.Wait() // the forwarders stop with ctx
	for i, c := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-c:
					select {
					case merged <- i:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case i := <-merged:
			cases[i]()
		}
	}
}
