package binance_test

import (
	"testing"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
)

// The Binance source keeps the plugin contract against the simulated
// exchange: config errors named, declared points with their keys, resume
// from its position without repeating a trade, live reconfiguration of
// its own config, a clean stop. The streams are the ones keyed by trade
// id: candles and tickers update rows under one key by design.
func TestContract(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	d := drive(sim)
	defer d.stop()
	cfg := config(sim, binance.Spot, map[string]any{"symbols": []string{"BTCUSDT", "ETHUSDT"}, "streams": []string{"trade", "aggTrade"}})
	sdktest.Check(t, func() sdk.Source { return binance.New(testLogger(t)) }, sdktest.Contract{
		Config: string(cfg),
		Points: 50,
		Invalid: []sdktest.Invalid{
			{Config: `{"market":"margin","symbols":["btc",7],"streams":["trades"],"book_depth":"deep","queue_wait":"soon","max_backfill":{"ids":1}}`,
				Keys: []string{"market", "symbols[0]", "symbols[1]", "streams[0]", "book_depth", "queue_wait", "max_backfill.ids"}},
		},
	})
}
