package faults

// The simulated exchange, in the test process: a manual-clock binancesim
// moved in real time by a driver the test starts once the feed is
// connected and halts before the final count, so that every trade id it
// generated is one the feed had to deliver.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/simclock"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// symbols streamed by every scenario; the simulator splits the trade rate
// between them busiest first.
var symbols = []string{"BTCUSDT", "ETHUSDT", "BNBUSDT"}

// historyCap is far above what any scenario generates, so that the
// simulator's history is the whole ground truth and REST backfill never
// runs out of history.
const historyCap = 2_000_000

type exchange struct {
	*binancesim.Server
	t     *testing.T
	clock simclock.Driver
}

// startExchange starts a simulated spot market with a clock that does not
// move until run.
func startExchange(t *testing.T, rate float64, seed uint64) *exchange {
	t.Helper()
	sim := binancesim.Start(t, binancesim.Options{
		Markets:    []market.Market{market.Spot},
		Symbols:    map[market.Market][]string{market.Spot: symbols},
		Seed:       seed%1_000_000 + 1,
		TradeRate:  rate,
		HistoryCap: historyCap,
		Manual:     true,
	})
	x := &exchange{Server: sim, t: t}
	t.Cleanup(x.halt)
	return x
}

// feedConfig is the feed's plugin config for this exchange, plus extra
// keys as YAML flow pairs ("stale_after: {trade: 2s}").
func (x *exchange) feedConfig(extra ...string) string {
	// The highest REST weight budget the plugin allows, so that long
	// backfills rarely wait for the next minute.
	cfg := fmt.Sprintf("market: spot, symbols: [%s], streams: [trade, aggTrade], ws_url: %q, rest_url: %q, rest_weight_limit: 6000",
		strings.Join(symbols, ", "), x.WSURL(market.Spot), x.RESTURL(market.Spot))
	for _, e := range extra {
		cfg += ", " + e
	}
	return "{" + cfg + "}"
}

// run starts the market's clock once the feed has a connection carrying
// its streams: trades generated before that would be ones the feed never
// had a position for.
func (x *exchange) run() {
	x.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !x.subscribed() {
		if time.Now().After(deadline) {
			x.t.Fatalf("the feed did not connect to the exchange within %s; stats %+v", startTimeout, x.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	x.clock.Start(x.Advance)
}

// subscribed reports whether some connection carries every stream.
func (x *exchange) subscribed() bool {
	want := 2 * len(symbols)
	for _, c := range x.Conns() {
		if len(c.Streams) >= want {
			return true
		}
	}
	return false
}

// halt stops the market: no trade is generated after it returns.
func (x *exchange) halt() { x.clock.Stop() }

// truth is what the exchange generated for one symbol and stream: the
// contiguous ids first..last.
type truth struct{ first, last int64 }

func (tr truth) count() int64 { return tr.last - tr.first + 1 }

// generated returns the ground truth per stream and symbol. Call it after
// halt.
func (x *exchange) generated() map[string]map[string]truth {
	x.t.Helper()
	out := map[string]map[string]truth{streamTrade: {}, streamAgg: {}}
	for _, sym := range symbols {
		trades := x.Trades(market.Spot, sym)
		if n := x.TradeCount(market.Spot, sym); int64(len(trades)) != n {
			x.t.Fatalf("%s: the simulator holds %d of %d trades; raise historyCap", sym, len(trades), n)
		}
		if len(trades) > 0 {
			out[streamTrade][sym] = truth{trades[0].ID, trades[len(trades)-1].ID}
			if got := out[streamTrade][sym].count(); got != int64(len(trades)) {
				x.t.Fatalf("%s: trade ids are not contiguous (%d ids over %d trades)", sym, got, len(trades))
			}
		}
		aggs := x.AggTrades(market.Spot, sym)
		if len(aggs) > 0 {
			out[streamAgg][sym] = truth{aggs[0].ID, aggs[len(aggs)-1].ID}
			if got := out[streamAgg][sym].count(); got != int64(len(aggs)) {
				x.t.Fatalf("%s: aggregate trade ids are not contiguous (%d ids over %d)", sym, got, len(aggs))
			}
		}
	}
	return out
}
