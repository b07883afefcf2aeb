package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/plugins/jsonws/e2e/exchanges"
)

// fakeExchange is what the tests need of a fake exchange.
type fakeExchange interface {
	http.Handler
	Close()
	Count(kind string) int
	Events() []exchanges.Event
	Violations() []string
}

// exchangeCase runs one example feed file against the fake of its
// exchange.
type exchangeCase struct {
	file, feed string
	url        string   // the example's URL, replaced by the fake's
	replace    []string // more replacements: timings scaled to the fake's Unit
	unit       time.Duration
	newFake    func(exchanges.Options) fakeExchange
	trades     []exchanges.Trade
	// exercised reports that the connection that stays up has kept the
	// exchange's timing rules for long enough to have broken them.
	exercised func(f fakeExchange) bool
}

// exchangeTrades makes two symbols' trades, three each, with ids made by
// id, at the time precision the exchange publishes, prices and sizes
// with as many digits as exchanges send.
func exchangeTrades(symbols [2]string, id func(i int) string, precision time.Duration) []exchanges.Trade {
	base := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	prices := []string{"42219.9", "42219.91", "0.00001234", "3021.55", "3021.5", "3022"}
	qtys := []string{"0.12060306", "1", "123456.78901234", "0.001", "2.5", "0.00000001"}
	var out []exchanges.Trade
	for i := range 6 {
		side := "buy"
		if i%2 == 1 {
			side = "sell"
		}
		// Distinct, increasing times, with digits down to nanoseconds
		// truncated to the exchange's precision.
		ts := base.Add(time.Duration(i)*time.Second + time.Duration(123456789+i*1111)).Truncate(precision)
		out = append(out, exchanges.Trade{Symbol: symbols[i/3], ID: id(i), Price: prices[i], Qty: qtys[i], Side: side, Time: ts})
	}
	return out
}

func intIDs(start int64) func(int) string {
	return func(i int) string { return strconv.FormatInt(start+int64(i)*7, 10) }
}

// onLastConn counts the events of kind on the last connection.
func onLastConn(f fakeExchange, kind string) int {
	evs := f.Events()
	last := 0
	for _, e := range evs {
		last = max(last, e.Conn)
	}
	n := 0
	for _, e := range evs {
		if e.Conn == last && e.Kind == kind {
			n++
		}
	}
	return n
}

func exchangeCases() []exchangeCase {
	uuid := func(i int) string { return fmt.Sprintf("20f43950-d8dd-5b31-9112-a178eb6023a%d", i) }
	return []exchangeCase{
		{
			file: "jsonws-coinbase.yaml", feed: "coinbase-trades", url: "wss://advanced-trade-ws.coinbase.com",
			// 5s to subscribe become 200ms; heartbeats every 40ms; a
			// channel without updates would close after 2.4s.
			unit:    40 * time.Millisecond,
			newFake: func(o exchanges.Options) fakeExchange { return exchanges.NewCoinbase(o) },
			trades:  exchangeTrades([2]string{"BTC-USD", "ETH-USD"}, intIDs(518066633), time.Nanosecond),
			// Heartbeats for well past the 60-unit quiet limit.
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvHeartbeat) >= 80 },
		},
		{
			file: "jsonws-kraken.yaml", feed: "kraken-trades", url: "wss://ws.kraken.com/v2",
			// Heartbeats every 20ms keep a 500ms stale_after from firing.
			replace: []string{"stale_after: 30s", "stale_after: 500ms"},
			unit:    20 * time.Millisecond,
			newFake: func(o exchanges.Options) fakeExchange { return exchanges.NewKraken(o) },
			trades:  exchangeTrades([2]string{"BTC/USD", "ETH/USD"}, intIDs(4665846), time.Microsecond),
			// Four times stale_after of heartbeats only.
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvHeartbeat) >= 100 },
		},
		{
			file: "jsonws-okx.yaml", feed: "okx-trades", url: "wss://ws.okx.com:8443/ws/v5/public",
			// Nothing pushed for 600ms cuts the connection: ping every
			// 150ms, a pong due within 1s.
			replace: []string{"every: 20s", "every: 150ms", "timeout: 10s}", "timeout: 1s}"},
			unit:    20 * time.Millisecond,
			newFake: func(o exchanges.Options) fakeExchange { return exchanges.NewOKX(o) },
			trades:  exchangeTrades([2]string{"BTC-USDT", "ETH-USDT"}, intIDs(130639474), time.Millisecond),
			// Pings for well past the 30-unit idle limit.
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvPing) >= 10 },
		},
		{
			file: "jsonws-bybit.yaml", feed: "bybit-trades", url: "wss://stream.bybit.com/v5/public/spot",
			// 10 minutes without ping-pong become 600ms: ping every 150ms.
			replace:   []string{"every: 20s", "every: 150ms", "timeout: 10s\n      stale", "timeout: 1s\n      stale"},
			unit:      time.Millisecond,
			newFake:   func(o exchanges.Options) fakeExchange { return exchanges.NewBybit(o) },
			trades:    exchangeTrades([2]string{"BTCUSDT", "ETHUSDT"}, uuid, time.Millisecond),
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvPing) >= 10 },
		},
		{
			file: "jsonws-htx.yaml", feed: "htx-trades", url: "wss://api.huobi.pro/ws",
			// A ping every 250ms; two unanswered cost the connection.
			unit:      50 * time.Millisecond,
			newFake:   func(o exchanges.Options) fakeExchange { return exchanges.NewHuobi(o) },
			trades:    exchangeTrades([2]string{"btcusdt", "ethusdt"}, intIDs(102523573486), time.Millisecond),
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvPong) >= 10 },
		},
		{
			file: "jsonws-bitfinex.yaml", feed: "bitfinex-trades", url: "wss://api-pub.bitfinex.com/ws/2",
			// Heartbeats every 300ms keep a 1s stale_after from firing.
			replace: []string{"stale_after: 1m", "stale_after: 1s"},
			unit:    20 * time.Millisecond,
			newFake: func(o exchanges.Options) fakeExchange { return exchanges.NewBitfinex(o) },
			trades:  exchangeTrades([2]string{"tBTCUSD", "tETHUSD"}, intIDs(401597393), time.Millisecond),
			// Two symbols' heartbeats for 3s.
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvHeartbeat) >= 20 },
		},
		{
			file: "jsonws-bitstamp.yaml", feed: "bitstamp-trades", url: "wss://ws.bitstamp.net",
			replace:   []string{"every: 30s", "every: 150ms", "timeout: 10s\n      reconnect", "timeout: 1s\n      reconnect"},
			unit:      20 * time.Millisecond,
			newFake:   func(o exchanges.Options) fakeExchange { return exchanges.NewBitstamp(o) },
			trades:    exchangeTrades([2]string{"btcusd", "ethusd"}, intIDs(202515893), time.Microsecond),
			exercised: func(f fakeExchange) bool { return onLastConn(f, exchanges.EvPing) >= 5 },
		},
	}
}

// Each example feed file, run by the real agent and plugin against a
// fake of its exchange that speaks the documented protocol, enforces its
// rules, publishes the trades, ends the first connection and publishes
// them all again on the next: every trade lands in SQLite exactly once
// with its exact price, quantity, side, id and time, and the client broke
// no rule of the exchange.
func TestExchangeExamples(t *testing.T) {
	for _, tc := range exchangeCases() {
		t.Run(tc.feed, func(t *testing.T) {
			t.Parallel()
			fake := tc.newFake(exchanges.Options{Trades: tc.trades, Unit: tc.unit, Drop: 1})
			srv := httptest.NewServer(fake)
			t.Cleanup(func() {
				fake.Close()
				srv.Close()
			})
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
			a := startAgent(t, map[string]string{tc.file: example(t, tc.file, append([]string{tc.url, url}, tc.replace...)...)})

			a.WaitFor(t, "the trades published twice and the exchange's rules exercised", func(st agent.Status) bool {
				return fake.Count(exchanges.EvPublished) >= 2 && tc.exercised(fake)
			})
			a.WaitFor(t, "every point written", func(st agent.Status) bool {
				_, points, _, _ := feed(st, tc.feed)
				return points >= uint64(2*len(tc.trades)) && written(st) >= points
			})
			st, _ := a.Status(t)
			a.Stop(t)

			// The reconnect's wait reads as a duration in the agent's log.
			if line := waitLogLine(t, a, "connection ended; reconnecting"); !regexp.MustCompile(`retry_in=[0-9.]+(ms|s)\b`).MatchString(line) {
				t.Errorf("the retry wait is not a duration: %s", line)
			}
			if v := fake.Violations(); len(v) != 0 {
				t.Errorf("the client broke the exchange's rules: %v", v)
			}
			// One connection dropped by the exchange, one kept: no
			// reconnect for staleness, a missed reply or a refusal.
			if n := fake.Count(exchanges.EvConnect); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if n := fake.Count(exchanges.EvRefused); n != 0 {
				t.Errorf("%d subscriptions refused", n)
			}
			f := testagent.Feed(st, tc.feed)
			if f.State != agent.FeedRunning || len(f.Stale) != 0 || f.PluginDiscarded["map_errors"] != 0 {
				t.Errorf("feed: state %s, stale %v, discarded %v", f.State, f.Stale, f.PluginDiscarded)
			}

			db := testagent.OpenDB(t, a.DB)
			rows, err := db.Query(`SELECT exchange, market, symbol, side, price, quantity, CAST(trade_id AS TEXT), time FROM trades ORDER BY time`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var exchange, market, symbol, side, id string
				var price, qty float64
				var ts int64
				if err := rows.Scan(&exchange, &market, &symbol, &side, &price, &qty, &id, &ts); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %s %s %s %v %v %s %d", exchange, market, symbol, side, price, qty, id, ts))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(tc.file, "jsonws-"), ".yaml")
			var want []string
			for _, tr := range tc.trades {
				p, _ := strconv.ParseFloat(tr.Price, 64)
				q, _ := strconv.ParseFloat(tr.Qty, 64)
				want = append(want, fmt.Sprintf("%s spot %s %s %v %v %s %d", name, tr.Symbol, tr.Side, p, q, tr.ID, tr.Time.UnixNano()))
			}
			if !slices.Equal(got, want) {
				t.Errorf("trades rows:\n%s\nwant (each trade once, exactly):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Two connections opened (on_open done): the first may end
			// before its last subscribe, as Coinbase's does here.
			if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE kind IN ('connect', 'reconnect')`); n != 2 && n != 1 {
				t.Errorf("%d connect and reconnect events, want 1 or 2", n)
			}
		})
	}
}
