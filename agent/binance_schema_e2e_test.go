package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

// The Binance plugin keys trades and aggregate trades by id and time, so
// the SQLite tables it gets are written through one index, time first,
// which also serves the dashboards' queries (some tags and a time range):
// no separate time index, and no index written in a place per symbol.
func TestBinanceTradeTablesHaveOneIndexTimeFirst(t *testing.T) {
	sim := binancesim.Start(t, binancesim.Options{
		Markets:   []binance.Market{binance.Spot},
		Symbols:   map[binance.Market][]string{binance.Spot: {"BTCUSDT", "ETHUSDT"}},
		TradeRate: 300,
	})
	dir := t.TempDir()
	a := testagent.Launch(t, testagent.WriteConfig(t, dir, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  spot:
    plugin: binance
    sinks: [db]
    config: {market: spot, symbols: [BTCUSDT, ETHUSDT], streams: [trade, aggTrade], ws_url: %q, rest_url: %q}
`, sim.WSURL(binance.Spot), sim.RESTURL(binance.Spot))))
	a.WaitForCount(t, `SELECT count(*) FROM trades`, 20)
	a.WaitForCount(t, `SELECT count(*) FROM agg_trades`, 20)
	db := testagent.OpenDB(t, a.DB)
	for table, id := range map[string]string{"trades": "trade_id", "agg_trades": "agg_id"} {
		var got []string
		rows, err := db.Query(`SELECT l.name, group_concat(i.name, ',') FROM pragma_index_list(?) l, pragma_index_info(l.name) i
			GROUP BY l.name ORDER BY l.name`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, cols string
			if err := rows.Scan(&name, &cols); err != nil {
				t.Fatal(err)
			}
			got = append(got, name+"("+cols+")")
		}
		rows.Close()
		want := table + "_key(time,exchange,market,symbol," + id + ")"
		if strings.Join(got, " ") != want {
			t.Errorf("%s: indexes %v, want only %s", table, got, want)
		}
		plan := testagent.QueryPlan(t, db, `SELECT price FROM `+table+` WHERE symbol = 'BTCUSDT' AND time BETWEEN 1 AND 2 ORDER BY time`)
		if !strings.Contains(plan, "SEARCH "+table+" USING INDEX "+table+"_key") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: the dashboards' query plan is %q, want a search of %s_key", table, plan, table)
		}
	}
	a.Stop(t)
}
