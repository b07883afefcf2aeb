// Command fanout measures the live sink's fan-out: the real sluice agent
// and binance plugin (built from this checkout), fed by the simulated
// exchange at a fixed trade rate over 100 symbols, with a live sink only;
// many WebSocket clients (centrifuge-go, in this process) spread over the
// channels. It reports what the clients received, the latency from the
// plugin receiving a trade to a client receiving it, the agent's CPU per
// delivered message and its memory. Figures, never assertions.
//
//	go run ./bench/fanout                                  # 1000 clients, 100 channels, 10 000 trades/s, 20s
//	go run ./bench/fanout -clients 200 -rate 2000 -duration 10s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/sluicehq/sluice/bench/internal/procstat"

	"github.com/centrifugal/centrifuge-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/sinks/live"
)

func main() {
	var (
		clients  = flag.Int("clients", 1000, "WebSocket clients")
		channels = flag.Int("channels", 100, "channels (symbols), the clients spread evenly over them")
		rate     = flag.Int("rate", 10000, "trades per second the exchange generates, over all symbols")
		duration = flag.Duration("duration", 20*time.Second, "measured window")
		out      = flag.String("out", "", "also write the report to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	rep, err := run(*clients, *channels, *rate, *duration)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(rep)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

const secret = "fanout-benchmark-secret-0123456789abcdef"

func run(nClients, nChannels, rate int, window time.Duration) (string, error) {
	tmp, err := os.MkdirTemp("", "sluice-fanout-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin, plugins := filepath.Join(tmp, "sluice"), filepath.Join(tmp, "plugins")
	for _, b := range [][2]string{{"sluice", "./agent/cmd/sluice"}, {"plugins/sluice-source-binance", "./plugins/binance/cmd/sluice-source-binance"}} {
		if err := harness.GoBuild(tmp, b[0], b[1], ""); err != nil {
			return "", err
		}
	}

	var syms []string
	for i := 1; i <= nChannels; i++ {
		syms = append(syms, fmt.Sprintf("S%04dUSDT", i))
	}
	opts := binancesim.Options{
		Markets: []binance.Market{binance.Spot}, Symbols: map[binance.Market][]string{binance.Spot: syms},
		TradeRate: float64(rate), HistoryCap: 1000, Manual: true, SendQueue: max(16384, rate*10), Seed: 1,
	}
	opts.TradeRate = harness.CalibrateTradeRate(opts, opts.TradeRate)
	sim := binancesim.New(opts)
	srv := httptest.NewServer(sim)
	defer func() { srv.Close(); sim.Close() }()
	wsURL, restURL := binancesim.URLs(srv.URL, binance.Spot)

	httpAddr, liveAddr := harness.FreeAddr(), harness.FreeAddr()
	os.WriteFile(filepath.Join(tmp, "live.secret"), []byte(secret), 0o600)
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: ""
http: {listen: %q, socket: ""}
log: {level: warn}
sinks:
  live: {type: live, listen: %q, token_hmac_secret_file: %s}
feeds:
  spot:
    plugin: binance
    sinks: [live]
    flush_interval: 10ms
    config: {market: spot, symbols: [%s], streams: [trade], ws_url: %q, rest_url: %q}
`, tmp, plugins, httpAddr, liveAddr, filepath.Join(tmp, "live.secret"), strings.Join(syms, ", "), wsURL, restURL)
	cfgPath := filepath.Join(tmp, "sluice.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ag, err := harness.StartAgent(harness.AgentSpec{Bin: bin, Config: cfgPath, Addr: httpAddr,
		Log: filepath.Join(tmp, "sluice.log"), Echo: os.Stderr})
	if err != nil {
		return "", err
	}
	defer ag.Kill()

	ctx := context.Background()
	f, err := ag.WaitFeed(ctx, "spot", time.Minute, 100*time.Millisecond, func() bool {
		for _, c := range sim.Conns() {
			if len(c.Streams) >= nChannels {
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("the feed did not start: %w", err)
	}
	pluginPid := f.Pid

	// The clients, each on one channel.
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, live.ConnectionClaims{Channels: []string{"*"}}).SignedString([]byte(secret))
	var (
		measuring  atomic.Bool
		subscribed atomic.Int64
		lat        = make([][]time.Duration, nClients)
		mus        = make([]sync.Mutex, nClients)
		cls        []*centrifuge.Client
	)
	for i := range nClients {
		c := centrifuge.NewJsonClient("ws://"+liveAddr+"/connection/websocket", centrifuge.Config{Token: tok})
		cls = append(cls, c)
		sub, _ := c.NewSubscription("trades:binance:spot:" + syms[i%nChannels])
		sub.OnSubscribed(func(centrifuge.SubscribedEvent) { subscribed.Add(1) })
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			now := time.Now()
			if !measuring.Load() {
				return
			}
			recv, ok := received(e.Data)
			if !ok {
				return
			}
			mus[i].Lock()
			lat[i] = append(lat[i], now.Sub(recv))
			mus[i].Unlock()
		})
		sub.Subscribe()
		c.Connect()
	}
	defer func() {
		for _, c := range cls {
			c.Close()
		}
	}()
	if err := harness.WaitUntil(ctx, 2*time.Minute, 100*time.Millisecond, func() bool { return subscribed.Load() >= int64(nClients) }); err != nil {
		return "", fmt.Errorf("%d of %d clients subscribed: %w", subscribed.Load(), nClients, err)
	}

	// Drive the exchange; measure after a warm-up of 3s.
	stop := make(chan struct{})
	var driver sync.WaitGroup
	driver.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				sim.Advance(now.Sub(last))
				last = now
			}
		}
	})
	time.Sleep(3 * time.Second)
	gen0 := generated(sim, syms)
	cpuA0, _ := procstat.CPUSeconds(ag.Pid())
	cpuP0, _ := procstat.CPUSeconds(pluginPid)
	self0 := procstat.SelfCPUSeconds()
	load0 := procstat.LoadAvg()
	measuring.Store(true)
	start := time.Now()
	var rssMax float64
	for time.Since(start) < window {
		time.Sleep(500 * time.Millisecond)
		if r, err := procstat.RSSMB(ag.Pid()); err == nil {
			rssMax = max(rssMax, r)
		}
	}
	measuring.Store(false)
	elapsed := time.Since(start).Seconds()
	gen := generated(sim, syms) - gen0
	cpuA1, _ := procstat.CPUSeconds(ag.Pid())
	cpuP1, _ := procstat.CPUSeconds(pluginPid)
	self1 := procstat.SelfCPUSeconds()
	close(stop)
	driver.Wait()
	st, _ := ag.Status()

	var all []time.Duration
	for i := range nClients {
		mus[i].Lock()
		all = append(all, lat[i]...)
		mus[i].Unlock()
	}
	slices.Sort(all)
	delivered := float64(len(all))
	q := func(s []time.Duration, p float64) string {
		if len(s) == 0 {
			return "-"
		}
		return s[int(p*float64(len(s)-1))].Round(100 * time.Microsecond).String()
	}
	var disconnects []string
	for _, s := range st.Sinks {
		for _, x := range s.Stats {
			if x.Name == "live_disconnects_total" && x.Value > 0 {
				disconnects = append(disconnects, fmt.Sprintf("%s %v", x.LabelValue, x.Value))
			}
		}
	}
	var dropped uint64
	for _, s := range st.Sinks {
		dropped += s.Dropped["buffer_full"]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# live sink fan-out\n\n")
	fmt.Fprintf(&b, "date: %s, %d CPUs, Go %s, load %.2f at the start\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), load0)
	fmt.Fprintf(&b, "command: go run ./bench/fanout -clients %d -channels %d -rate %d -duration %s\n\n", nClients, nChannels, rate, window)
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| clients, channels | %d WebSocket clients (JSON), %d per channel, %d channels |\n", nClients, nClients/nChannels, nChannels)
	fmt.Fprintf(&b, "| trades in (generated by the exchange) | %.0f/s |\n", float64(gen)/elapsed)
	fmt.Fprintf(&b, "| messages delivered to clients | %.0f/s (%.0f in %.1fs) |\n", delivered/elapsed, delivered, elapsed)
	fmt.Fprintf(&b, "| latency, plugin received → client received (the plugin batches for up to 10ms: feed flush_interval) | p50 %s, p90 %s, p99 %s, max %s |\n", q(all, .5), q(all, .9), q(all, .99), q(all, 1))
	fmt.Fprintf(&b, "| agent CPU | %.2f cores, %.1f µs per delivered message |\n", (cpuA1-cpuA0)/elapsed, (cpuA1-cpuA0)/delivered*1e6)
	fmt.Fprintf(&b, "| binance plugin CPU | %.2f cores |\n", (cpuP1-cpuP0)/elapsed)
	fmt.Fprintf(&b, "| this harness's CPU (exchange and %d clients) | %.2f cores |\n", nClients, (self1-self0)/elapsed)
	fmt.Fprintf(&b, "| agent RSS | %.0f MiB at most during the window |\n", rssMax)
	fmt.Fprintf(&b, "| clients disconnected | %s |\n", orNone(strings.Join(disconnects, ", ")))
	fmt.Fprintf(&b, "| dropped from the live sink's buffer | %d |\n", dropped)
	return b.String(), nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// received finds a payload's received time without decoding the whole
// object: the harness shares the machine with the agent. (The trade's
// exchange time is the simulator's virtual clock, which is not the wall
// clock to the millisecond: it is not used.)
func received(data []byte) (time.Time, bool) {
	const key = `"received":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	v, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return v, err == nil
}

func generated(sim *binancesim.Sim, syms []string) int64 {
	var n int64
	for _, s := range syms {
		n += sim.TradeCount(binance.Spot, s)
	}
	return n
}
