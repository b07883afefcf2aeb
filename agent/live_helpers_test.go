package agent_test

// Helpers of the live sink's end-to-end tests: a simulated Binance spot
// market whose clock the test starts, tokens, and a Go client of the
// live endpoint (centrifuge-go, as a program would connect).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/simclock"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

// liveSecret signs the tokens of the live tests.
var liveSecret = strings.Repeat("0123456789abcdef", 4)

// market is a simulated Binance spot market whose clock stands still
// until run, so that every trade it generates is one the feed had a
// connection for.
type market struct {
	*binancesim.Server
	t       *testing.T
	symbols []string
	clock   simclock.Driver
}

func startMarket(t *testing.T, rate float64, symbols ...string) *market {
	t.Helper()
	sim := binancesim.Start(t, binancesim.Options{
		Markets:    []binance.Market{binance.Spot},
		Symbols:    map[binance.Market][]string{binance.Spot: symbols},
		TradeRate:  rate,
		HistoryCap: 1_000_000,
		Manual:     true,
	})
	m := &market{Server: sim, t: t, symbols: symbols}
	t.Cleanup(m.halt)
	return m
}

// feed is a binance feed of the market's trades into sinks.
func (m *market) feed(name string, sinks ...string) string {
	return fmt.Sprintf(`  %s:
    plugin: binance
    sinks: [%s]
    config: {market: spot, symbols: [%s], streams: [trade], ws_url: %q, rest_url: %q}
`, name, strings.Join(sinks, ", "), strings.Join(m.symbols, ", "), m.WSURL(binance.Spot), m.RESTURL(binance.Spot))
}

// run starts the clock once a connection carries every stream.
func (m *market) run() {
	m.t.Helper()
	deadline := time.Now().Add(testagent.WaitTimeout)
	for !m.subscribed() {
		if time.Now().After(deadline) {
			m.t.Fatalf("the feed did not subscribe within %s", testagent.WaitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.clock.Start(m.Advance)
}

func (m *market) subscribed() bool {
	for _, c := range m.Conns() {
		if len(c.Streams) >= len(m.symbols) {
			return true
		}
	}
	return false
}

// halt stops the clock: no trade is generated after it returns.
func (m *market) halt() { m.clock.Stop() }

// tradeIDs are the ids the market generated for a symbol.
func (m *market) tradeIDs(symbol string) []int64 {
	var ids []int64
	for _, tr := range m.Trades(binance.Spot, symbol) {
		ids = append(ids, tr.ID)
	}
	if int64(len(ids)) != m.TradeCount(binance.Spot, symbol) {
		m.t.Fatalf("the simulator kept %d of %d trades of %s", len(ids), m.TradeCount(binance.Spot, symbol), symbol)
	}
	return ids
}

// liveSinkConfig is a live sink section listening on addr with the test
// secret in dir, and extra flow-style keys.
func liveSinkConfig(t *testing.T, dir, name, addr string, extra ...string) string {
	t.Helper()
	secret := filepath.Join(dir, name+".secret")
	if err := os.WriteFile(secret, []byte(liveSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := append([]string{fmt.Sprintf("type: live, listen: %q, token_hmac_secret_file: %q", addr, secret)}, extra...)
	return fmt.Sprintf("  %s: {%s}\n", name, strings.Join(keys, ", "))
}

// liveTradeIDs decodes the trade ids a client received on a channel.
func liveTradeIDs(t *testing.T, c *livetest.Client, channel string) []int64 {
	t.Helper()
	pubs := c.Pubs(channel)
	ids := make([]int64, 0, len(pubs))
	for _, p := range pubs {
		var v struct {
			Measurement string            `json:"measurement"`
			Tags        map[string]string `json:"tags"`
			Fields      struct {
				TradeID int64 `json:"trade_id"`
			} `json:"fields"`
		}
		if err := json.Unmarshal(p.Data, &v); err != nil {
			t.Fatalf("publication %q: %v", p.Data, err)
		}
		if v.Measurement != "trades" || v.Tags["exchange"] != "binance" {
			t.Fatalf("publication %s", p.Data)
		}
		ids = append(ids, v.Fields.TradeID)
	}
	return ids
}

// sameIDs fails unless got is want: every id, in order, once.
func sameIDs(t *testing.T, who string, got, want []int64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the market generated no trades", who)
	}
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			t.Fatalf("%s: trade %d is id %d, want %d (got %d trades, want %d)", who, i, got[i], want[i], len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %d trades, want %d (ids %d..%d)", who, len(got), len(want), want[0], want[len(want)-1])
	}
}

// liveStat is one of a sink's stats in a status, by name and label value.
func liveStat(st agent.Status, sink, name, label string) float64 {
	for _, s := range testagent.Sink(st, sink).Stats {
		if s.Name == name && s.LabelValue == label {
			return s.Value
		}
	}
	return -1
}
