package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

// Editing a Binance feed's file to add a symbol reconfigures the running
// plugin in place: the same process subscribes to the new streams on its
// open connection, and the new symbol's trades land.
func TestReloadReconfiguresBinanceInPlace(t *testing.T) {
	sim := binancesim.Start(t, binancesim.Options{
		Markets:   []binance.Market{binance.Spot},
		Symbols:   map[binance.Market][]string{binance.Spot: {"BTCUSDT", "ETHUSDT", "SOLUSDT"}},
		TradeRate: 300,
	})
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	if err := os.Mkdir(feedsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	feedFile := func(symbols string) string {
		return fmt.Sprintf(`feeds:
  spot:
    plugin: binance
    sinks: [db]
    config: {market: spot, symbols: [%s], streams: [trade], ws_url: %q, rest_url: %q}
`, symbols, sim.WSURL(binance.Spot), sim.RESTURL(binance.Spot))
	}
	testagent.WriteFile(t, filepath.Join(feedsDir, "spot.yaml"), feedFile("BTCUSDT, ETHUSDT"))
	a := testagent.Launch(t, testagent.WriteConfigFeedsDir(t, dir, feedsDir, "sinks:\n  db: {type: sqlite, path: sluice.db}\n"))

	st := a.WaitFor(t, "trades flowing", func(st agent.Status) bool { return testagent.Written(st, "db") > 100 })
	pid := testagent.Feed(st, "spot").Pid
	conns := sim.Stats().Handshakes

	testagent.WriteFile(t, filepath.Join(feedsDir, "spot.yaml"), feedFile("BTCUSDT, ETHUSDT, SOLUSDT"))
	db := testagent.OpenDB(t, a.DB)
	a.WaitFor(t, "SOLUSDT trades landing", func(agent.Status) bool {
		var n int64
		db.QueryRow(`SELECT count(*) FROM trades WHERE symbol = 'SOLUSDT'`).Scan(&n)
		return n > 20
	})
	st, _ = a.Status(t)
	if f := testagent.Feed(st, "spot"); f.Pid != pid || f.Restarts != 0 || f.State != agent.FeedRunning {
		t.Errorf("the feed was restarted (pid %d→%d, restarts %d, state %s); it should have been reconfigured in place", pid, f.Pid, f.Restarts, f.State)
	}
	if got := sim.Stats().Handshakes; got != conns {
		t.Errorf("the exchange saw %d new connections; the new symbol should be subscribed on the open one", got-conns)
	}
	a.Stop(t)
}
