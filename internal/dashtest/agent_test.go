package dashtest

// The stores the dashboards are queried against, filled by the real agent:
// `sluice run` (the binaries testbin built) with a sqlite and an influxdb
// sink and one Binance feed per market, streaming from the simulated
// exchange running in this process. Faults injected into the exchange
// make the feed_events the annotations and the events panel show: a
// stalled stream (gap, backfill), a lost depth event on every symbol
// (resync), every connection dropped (disconnect, reconnect).

import (
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testinflux"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
	_ "modernc.org/sqlite" // the driver behind testbin.SQLiteDriver
)

// Bounds on every wait. None is a timing assertion: each only keeps a
// broken run from hanging.
const (
	pollEvery   = 100 * time.Millisecond
	waitTimeout = time.Minute
)

// simSymbols are the symbols of every simulated market, busiest first (the
// simulator splits a market's trade rate between them that way).
var simSymbols = []string{"BTCUSDT", "ETHUSDT"}

// simTradeRate is the trades per second of each simulated market.
const simTradeRate = 40

// stallFor is how long the stalled aggTrade stream loses its frames: long
// enough that trades happen meanwhile, so the feed sees a hole in the ids.
const stallFor = 1500 * time.Millisecond

// feedSpec is one Binance feed of the agent: a market and the stream kinds
// it subscribes for every symbol.
type feedSpec struct {
	market  market.Market
	streams []string
}

// simFeeds are the agent's feeds: every stream kind of each market that
// the simulator serves and the source writes, with the kline intervals
// the candle_interval variable then offers.
var simFeeds = []feedSpec{
	{market.Spot, []string{"trade", "aggTrade", "kline_1s", "kline_1m", "bookTicker", "depth@100ms", "ticker"}},
	{market.USDM, []string{"trade", "aggTrade", "kline_1m", "bookTicker", "depth@100ms", "ticker", "markPrice@1s", "forceOrder"}},
}

func (f feedSpec) name() string { return "binance-" + f.market.String() }

// intervals are the feed's kline intervals.
func (f feedSpec) intervals() []string {
	var out []string
	for _, s := range f.streams {
		if iv, ok := strings.CutPrefix(s, "kline_"); ok {
			out = append(out, iv)
		}
	}
	return out
}

// wantData lists what must have landed in SQLite for every panel to have
// data: per market and symbol, a row of every measurement a stream kind
// writes (candles per interval). Liquidations are left out: the
// simulator makes them rarely, and no dashboard reads them.
func (f feedSpec) wantData() []string {
	measurement := map[string]string{
		"trade": market.MeasTrades, "aggTrade": market.MeasAggTrades, "bookTicker": market.MeasBookTicker,
		"depth": market.MeasBook, "ticker": market.MeasTicker, "markPrice": market.MeasMarkPrice,
	}
	var out []string
	for _, sym := range simSymbols {
		for _, s := range f.streams {
			kind, _, _ := strings.Cut(s, "@")
			if iv, ok := strings.CutPrefix(kind, "kline_"); ok {
				out = append(out, fmt.Sprintf("%s %s %s %s", market.MeasCandles, f.market, sym, iv))
			} else if m := measurement[kind]; m != "" {
				out = append(out, fmt.Sprintf("%s %s %s", m, f.market, sym))
			}
		}
	}
	return out
}

// event names a feed_events row as landed does.
func (f feedSpec) event(kind, symbol string) string {
	return fmt.Sprintf("%s %s %s %s", binance.MeasFeedEvents, f.name(), kind, symbol)
}

// wantSymbolEvents lists the feed_events a stalled aggTrade stream and a
// lost depth event on every symbol must produce: gap and backfill on the
// stalled symbol, and a resync on every symbol, so that the gap
// annotation, which filters on the picked symbol, has one for each.
func (f feedSpec) wantSymbolEvents() []string {
	out := []string{f.event(binance.FeedGap, simSymbols[0]), f.event(binance.FeedBackfill, simSymbols[0])}
	for _, sym := range simSymbols {
		out = append(out, f.event(binance.FeedResync, sym))
	}
	return out
}

// wantDropEvents lists the feed_events of every connection dropped.
func (f feedSpec) wantDropEvents() []string {
	return []string{f.event(binance.FeedDisconnect, ""), f.event(binance.FeedReconnect, "")}
}

// stores are the filled stores and the span of the agent's run.
type stores struct {
	sqlite   string             // the SQLite file
	influx   *testinflux.Server // nil where no influxd is installed
	from, to time.Time          // from before the exchange's first event to after the agent's exit
	feeds    []feedSpec
}

// fillStores runs the agent against the simulated exchange until every
// panel has data and every fault has left its feed_events, then stops it
// with SIGTERM, which drains what it holds into both sinks.
func fillStores(t *testing.T) *stores {
	t.Helper()
	st := &stores{feeds: simFeeds}
	if influxAvailable() {
		st.influx = testinflux.Start(t)
	}
	st.from = time.Now()
	var markets []market.Market
	symbols := map[market.Market][]string{}
	for _, f := range st.feeds {
		markets = append(markets, f.market)
		symbols[f.market] = simSymbols
	}
	sim := binancesim.Start(t, binancesim.Options{Markets: markets, Symbols: symbols, TradeRate: simTradeRate})

	a := testagent.Start(t, agentConfig(t, sim, st))
	st.sqlite = a.DB
	waitFor(t, a, "every feed running and every sink written to", func() (bool, string) {
		s, ok := a.Status(t)
		if !ok {
			return false, "no status yet"
		}
		for _, f := range s.Feeds {
			if f.State != agent.FeedRunning {
				return false, fmt.Sprintf("feed %s %s %s", f.Name, f.State, f.LastError)
			}
		}
		for _, o := range s.Sinks {
			if o.Written == 0 {
				return false, fmt.Sprintf("sink %s wrote nothing yet %s", o.Name, o.LastError)
			}
		}
		return len(s.Feeds) == len(st.feeds), fmt.Sprintf("%d feeds", len(s.Feeds))
	})
	var want []string
	for _, f := range st.feeds {
		want = append(want, f.wantData()...)
	}
	waitRows(t, a, "every measurement of every symbol", want)

	// Books are synced now (book rows landed), so a lost depth event is a
	// sequence break.
	want = nil
	for _, f := range st.feeds {
		sim.Stall(f.market, strings.ToLower(simSymbols[0])+"@aggTrade", stallFor)
		for _, sym := range simSymbols {
			if !sim.InjectDepthGap(f.market, sym) {
				t.Fatalf("the simulator has no %s %s", f.market, sym)
			}
		}
		want = append(want, f.wantSymbolEvents()...)
	}
	waitRows(t, a, "gap, backfill and resync events", want)

	if sim.DropAll(binancesim.Abrupt) == 0 {
		t.Fatal("the simulator had no connection to drop")
	}
	want = nil
	for _, f := range st.feeds {
		want = append(want, f.wantDropEvents()...)
	}
	waitRows(t, a, "disconnect and reconnect events", want)

	a.Stop(t)
	st.to = time.Now()
	t.Logf("the agent ran %s: %s", st.to.Sub(st.from).Round(time.Millisecond), summary(t, st.sqlite))
	return st
}

// summary counts the rows of every table in the SQLite file, and the
// feed_events by kind.
func summary(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []string
	count := func(q string) {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, tbl := range tables {
		count(`SELECT '` + tbl + `', count(*) FROM "` + tbl + `"`)
	}
	count(`SELECT 'feed_events ' || kind, count(*) FROM feed_events GROUP BY kind ORDER BY kind`)
	return strings.Join(parts, ", ")
}

// agentConfig is the agent's sluice.yaml: both sinks (sqlite alone
// without influxd) and a feed per market, pointed at the simulator.
func agentConfig(t *testing.T, sim *binancesim.Server, st *stores) string {
	t.Helper()
	var b strings.Builder
	sinks := []string{"sqlite"}
	b.WriteString("sinks:\n  sqlite: {type: sqlite, path: sluice.db}\n")
	if st.influx != nil {
		fmt.Fprintf(&b, "  influxdb: {type: influxdb, url: %q, bucket: %q, token: %q}\n",
			st.influx.URL(), testinflux.Bucket, st.influx.Token())
		sinks = append(sinks, "influxdb")
	}
	b.WriteString("feeds:\n")
	for _, f := range st.feeds {
		fmt.Fprintf(&b, "  %s:\n    plugin: binance\n    sinks: [%s]\n", f.name(), strings.Join(sinks, ", "))
		fmt.Fprintf(&b, "    config: {market: %s, symbols: [%s], streams: [%s], ws_url: %q, rest_url: %q}\n",
			f.market, strings.Join(simSymbols, ", "), strings.Join(f.streams, ", "), sim.WSURL(f.market), sim.RESTURL(f.market))
	}
	return b.String()
}

// influxAvailable reports whether testinflux.Start will find influxd, or
// must (SLUICE_REQUIRE_INFLUXD=1). Without it the SQLite queries still run.
func influxAvailable() bool {
	if os.Getenv(testinflux.EnvRequire) == "1" {
		return true
	}
	p := os.Getenv(testinflux.EnvBinary)
	if p == "" {
		p = filepath.Join("..", "..", ".cache", "bin", "influxd") // the test runs in internal/dashtest
	}
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// waitFor polls cond until it holds, failing the test if the agent exits
// or waitTimeout passes; cond's string says what it last saw.
func waitFor(t *testing.T, a *testagent.Agent, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, saw := cond()
		exited := false
		select {
		case <-a.Exited():
			exited = true
		default:
		}
		switch {
		case ok:
			return
		case exited:
			t.Fatalf("sluice exited (%v) while waiting for %s", a.ExitErr(), what)
		case time.Now().After(deadline):
			t.Fatalf("no %s within %s: %s", what, waitTimeout, saw)
		}
		time.Sleep(pollEvery)
	}
}

// waitRows waits until the agent's SQLite file holds a row for each of
// want (see landed for how a row is named).
func waitRows(t *testing.T, a *testagent.Agent, what string, want []string) {
	t.Helper()
	waitFor(t, a, what, func() (bool, string) {
		got, errs := landed(a.DB)
		var missing []string
		for _, w := range want {
			if !got[w] {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %q (errors: %v)", missing, errs)
	})
}

// landed names what the SQLite file holds: "measurement market symbol"
// for market data, "candles market symbol interval", and "feed_events
// feed kind symbol" (symbol empty for a connection's event). A table or
// column not created yet is an error, returned with the others.
func landed(path string) (map[string]bool, []error) {
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?mode=ro")
	if err != nil {
		return nil, []error{err}
	}
	defer db.Close()
	queries := map[string]string{
		market.MeasCandles:     `SELECT DISTINCT market || ' ' || symbol || ' ' || "interval" FROM candles`,
		binance.MeasFeedEvents: `SELECT DISTINCT feed || ' ' || kind || ' ' || coalesce(symbol, '') FROM feed_events`,
	}
	for _, m := range []string{market.MeasTrades, market.MeasAggTrades, market.MeasBookTicker,
		market.MeasBook, market.MeasTicker, market.MeasMarkPrice} {
		queries[m] = `SELECT DISTINCT market || ' ' || symbol FROM "` + m + `"`
	}
	got := map[string]bool{}
	var errs []error
	for _, m := range slices.Sorted(maps.Keys(queries)) {
		rows, err := db.Query(queries[m])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
			continue
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				errs = append(errs, err)
				break
			}
			got[m+" "+v] = true
		}
		if err := rows.Err(); err != nil {
			errs = append(errs, err)
		}
		rows.Close()
	}
	return got, errs
}
