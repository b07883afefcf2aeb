package binancesim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// TestActivityIsWhatSubscribersGet: the generator's counts are the frames
// a client subscribed to everything receives, kind by kind, and UpdateIDs
// is where each symbol's book stands.
func TestActivityIsWhatSubscribersGet(t *testing.T) {
	syms := []string{"BTCUSDT", "ETHUSDT", "S0003USDT"}
	srv := manual(t, Options{Markets: []market.Market{market.Spot}, Symbols: map[market.Market][]string{market.Spot: syms},
		TradeRate: 50, TakerShare: 0.05})
	var names []string
	for _, s := range syms {
		for _, k := range []string{"trade", "bookTicker", "depth@100ms"} {
			names = append(names, strings.ToLower(s)+"@"+k)
		}
	}
	c := dial(t, srv.WSURL(market.Spot)+"/stream?streams="+strings.Join(names, "/"))
	before := srv.UpdateIDs(market.Spot)
	var frames [][]byte
	for range 5 {
		srv.Advance(time.Second)
		frames = append(frames, c.drain()...)
	}
	var trades, tickers, diffs, levels int64
	lastU := map[string]int64{}
	for _, f := range frames {
		var env struct {
			Stream string
			Data   json.RawMessage
		}
		if err := json.Unmarshal(f, &env); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch {
		case strings.HasSuffix(env.Stream, "@trade"):
			trades++
		case strings.HasSuffix(env.Stream, "@bookTicker"):
			tickers++
		case strings.HasSuffix(env.Stream, "@depth@100ms"):
			// Every key declared: encoding/json matches keys regardless
			// of case, and diffs carry both e and E, u and U, b and B.
			var d struct {
				Ev    string      `json:"e"`
				EvT   int64       `json:"E"`
				S     string      `json:"s"`
				First int64       `json:"U"`
				Last  int64       `json:"u"`
				B     [][2]string `json:"b"`
				A     [][2]string `json:"a"`
			}
			if err := json.Unmarshal(env.Data, &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			diffs++
			levels += int64(len(d.B) + len(d.A))
			lastU[d.S] = d.Last
		}
	}
	a := srv.Activity(market.Spot)
	var count int64
	for _, s := range syms {
		count += srv.TradeCount(market.Spot, s)
	}
	if a.Trades != trades || a.Trades != count || a.BookTickers != tickers || a.DepthEvents != diffs || a.DepthLevels != levels {
		t.Errorf("activity %+v; received %d trades (TradeCount %d), %d bookTickers, %d diffs with %d levels",
			a, trades, count, tickers, diffs, levels)
	}
	if trades == 0 || tickers == 0 || diffs == 0 {
		t.Fatalf("too little generated to check: %+v", a)
	}
	after := srv.UpdateIDs(market.Spot)
	var events int64
	for i, s := range syms {
		events += after[i] - before[i] // spot update ids are per symbol
		if after[i] < lastU[s] || after[i]-lastU[s] > 50 {
			t.Errorf("%s: UpdateIDs %d, last diff u %d", s, after[i], lastU[s])
		}
	}
	if a.Events != events {
		t.Errorf("activity counts %d events, the update ids moved %d", a.Events, events)
	}
}

// TestMix: TakerShare sets how many book events a trade comes with, at
// the same trade rate; Skew how unevenly symbols share the activity;
// SetTradeRate changes the rate of a running market.
func TestMix(t *testing.T) {
	syms := SyntheticSymbols(market.Spot, 100)
	gen := func(o Options) (*Sim, Activity) {
		o.Markets, o.Symbols, o.TradeRate, o.Manual, o.HistoryCap = []market.Market{market.Spot}, map[market.Market][]string{market.Spot: syms}, 200, true, 1
		s := New(o)
		t.Cleanup(func() { s.Close() })
		s.Advance(20 * time.Second)
		return s, s.Activity(market.Spot)
	}
	_, def := gen(Options{})
	_, few := gen(Options{TakerShare: 0.02})
	share := func(a Activity) float64 { return float64(a.Trades) / float64(a.Events) }
	if share(def) < 0.4 || share(few) > 0.1 {
		t.Errorf("trades per event: %.3f by default, %.3f with TakerShare 0.02", share(def), share(few))
	}
	if r := float64(few.Trades) / float64(def.Trades); r < 0.6 || r > 1.6 {
		t.Errorf("TakerShare changed the trade rate: %d trades against %d by default", few.Trades, def.Trades)
	}

	// Busiest against quietest symbol: 100^Skew.
	spread := func(o Options) float64 {
		s, _ := gen(o)
		return float64(s.TradeCount(market.Spot, syms[0])+1) / float64(s.TradeCount(market.Spot, syms[99])+1)
	}
	if flat, steep := spread(Options{Skew: 0.3}), spread(Options{}); flat > 10 || steep < 30 {
		t.Errorf("busiest/quietest trades: %.1f with Skew 0.3 (want about 4), %.1f with 1 (want about 100)", flat, steep)
	}

	s, a := gen(Options{})
	s.SetTradeRate(market.Spot, 800)
	s.Advance(20 * time.Second)
	if r := float64(s.Activity(market.Spot).Trades-a.Trades) / float64(a.Trades); r < 3 || r > 5 {
		t.Errorf("SetTradeRate 200 -> 800: %.1f times the trades", r)
	}
}
