package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

// binanceStep is the recorder as deployed: the simulated exchange (in
// this process, as bench/e2e runs it) → the binance plugin → the agent
// → the nats sink, at rate trades/s over 100 symbols for b.duration.
// Every trade the exchange generated must be in the stream, on its
// symbol's subject.
func (b *bench) binanceStep(rate int) (*sinkResult, error) {
	ctx := context.Background()
	if err := b.freshNATS(""); err != nil {
		return nil, err
	}
	var syms []string
	for i := 1; i <= symbols; i++ {
		syms = append(syms, fmt.Sprintf("S%04dUSDT", i))
	}
	opts := binancesim.Options{
		Markets: []binance.Market{binance.Spot}, Symbols: map[binance.Market][]string{binance.Spot: syms},
		TradeRate: float64(rate), HistoryCap: 1000, Manual: true, SendQueue: max(16384, rate*10), Seed: 1,
	}
	opts.TradeRate = harness.CalibrateTradeRate(opts, float64(rate))
	sim := binancesim.New(opts)
	srv := httptest.NewServer(sim)
	defer func() { srv.Close(); sim.Close() }()
	wsURL, restURL := binancesim.URLs(srv.URL, binance.Spot)

	cfg, err := writeConfig(b.bins, filepath.Join(b.dir, fmt.Sprintf("binance-%d", rate)), "", fmt.Sprintf(`sinks:
  bus: {type: nats, url: %q, stream: %s, create_stream: true}
feeds:
  spot:
    plugin: binance
    sinks: [bus]
    config: {market: spot, symbols: [%s], streams: [trade], ws_url: %q, rest_url: %q}
`, b.nats.url, busStream, strings.Join(syms, ", "), wsURL, restURL))
	if err != nil {
		return nil, err
	}
	a, plugin, err := runFeed(cfg, "spot")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	// Every stream subscribed before the exchange's clock starts, so that
	// every trade it generates is owed.
	if err := waitUntil(30*time.Second, func() bool {
		for _, c := range sim.Conns() {
			if len(c.Streams) >= symbols {
				return true
			}
		}
		return false
	}); err != nil {
		return nil, fmt.Errorf("the plugin did not subscribe: %w", err)
	}
	w := watch([]int{a.Pid(), plugin, b.nats.Pid()})
	var drive sync.WaitGroup
	drive.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start, last := time.Now(), time.Now()
		for now := range tick.C {
			sim.Advance(now.Sub(last))
			last = now
			if now.Sub(start) >= b.duration {
				return
			}
		}
	})
	drive.Wait()
	var generated int64
	for _, s := range syms {
		generated += sim.TradeCount(binance.Spot, s)
	}

	// Until the trades subjects hold every trade, or no more for 10s.
	var stream jetstream.Stream
	var held uint64
	progress := time.Now()
	for time.Since(progress) < 10*time.Second && held < uint64(generated) {
		time.Sleep(50 * time.Millisecond)
		if stream == nil {
			if stream, err = b.js.Stream(ctx, busStream); err != nil {
				stream = nil
				continue
			}
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("sluice.trades.>"))
		if err != nil {
			continue
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		if n > held {
			held, progress = n, time.Now()
		}
	}
	res := &sinkResult{label: " (binance)", rate: rate, points: int(generated), stored: held}
	res.cpu, res.rss = w.end()
	if held == 0 {
		return nil, fmt.Errorf("no trade reached the stream; agent log:\n%s", a.LogTail())
	}
	if err := b.lagSample(ctx, stream, res); err != nil {
		return nil, err
	}
	// The exchange's rate is approximate: what it generated is owed.
	owed := float64(generated) / b.duration.Seconds()
	res.pass = held == uint64(generated) && res.sustained >= 0.95*owed && quantile(res.lag, .99) < time.Second
	if held < uint64(generated) {
		res.note = fmt.Sprintf("%d not stored", uint64(generated)-held)
	}
	return res, nil
}

// lagSample reads lagSamples messages spread over the stream: each one's
// lag (stored time − Sluice-Received), and the sustained rate from the
// first point made to the last message stored.
func (b *bench) lagSample(ctx context.Context, stream jetstream.Stream, res *sinkResult) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	var firstMade, lastStored time.Time
	for i := range lagSamples {
		seq := first + (last-first)*uint64(i)/uint64(lagSamples-1)
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("read message %d: %w", seq, err)
		}
		ns, err := strconv.ParseInt(m.Header.Get("Sluice-Received"), 10, 64)
		if err != nil {
			return fmt.Errorf("message %d: no Sluice-Received header", seq)
		}
		made := time.Unix(0, ns)
		res.lag = append(res.lag, m.Time.Sub(made))
		if seq == first {
			firstMade = made
		}
		if seq == last {
			lastStored = m.Time
		}
	}
	slices.Sort(res.lag)
	res.sustained = float64(res.stored) / lastStored.Sub(firstMade).Seconds()
	return nil
}
