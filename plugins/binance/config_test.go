package binance

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

func configure(t *testing.T, cfg string) (*Source, error) {
	t.Helper()
	s := New(nil)
	_, err := s.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", Config: json.RawMessage(cfg)})
	return s, err
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  string
		want []string // every ConfigError as key: message, in order
	}{
		{"empty", `{}`, []string{
			"symbols: must list at least one symbol",
			"streams: must list at least one stream kind",
		}},
		// Problems found while decoding and while checking come in one
		// answer: a value that did not decode is not checked again.
		{"unknown key", `{"symbol":["BTCUSDT"]}`, []string{
			"symbol: unknown key",
			"symbols: must list at least one symbol",
			"streams: must list at least one stream kind",
		}},
		{"wrong type", `{"symbols":"BTCUSDT"}`, []string{
			"symbols: must be a list, got a string",
			"streams: must list at least one stream kind",
		}},
		{"market", `{"market":"margin","symbols":["BTCUSDT"],"streams":["trade"]}`, []string{
			`market: must be spot, usdm or coinm, got "margin"`,
		}},
		{"symbols", `{"symbols":["btcusdt","BTC-USDT","BTCUSD_PERP","ETHUSDT","ETHUSDT","X"],"streams":["trade"]}`, []string{
			`symbols[0]: "btcusdt" must be upper case, as Binance lists it: "BTCUSDT"`,
			`symbols[1]: "BTC-USDT" is not a spot symbol (upper-case letters and digits, like BTCUSDT)`,
			`symbols[2]: "BTCUSD_PERP" is not a spot symbol (upper-case letters and digits, like BTCUSDT)`,
			`symbols[4]: "ETHUSDT" is already listed at symbols[3]`,
			`symbols[5]: "X" is not a spot symbol (upper-case letters and digits, like BTCUSDT)`,
		}},
		{"futures symbols", `{"market":"coinm","symbols":["BTCUSD_PERP","BTCUSD_","_PERP"],"streams":["trade"]}`, []string{
			`symbols[1]: "BTCUSD_" is not a coinm symbol (upper-case letters and digits with an optional _SUFFIX, like BTCUSDT or BTCUSD_PERP)`,
			`symbols[2]: "_PERP" is not a coinm symbol (upper-case letters and digits with an optional _SUFFIX, like BTCUSDT or BTCUSD_PERP)`,
		}},
		{"spot streams", `{"symbols":["BTCUSDT"],"streams":["trades","markPrice","forceOrder","kline_7m","trade","trade","depth@250ms","bookTicker@100ms","depth","depth@100ms","kline_1m@1s"]}`, []string{
			`streams[0]: unknown stream kind "trades" (want ` + kindList + `)`,
			`streams[1]: "markPrice" is a futures stream; spot does not have it`,
			`streams[2]: "forceOrder" is a futures stream; spot does not have it`,
			`streams[3]: kline interval "7m" is not one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M on spot`,
			`streams[5]: "trade" is already listed at streams[4]`,
			`streams[6]: "depth@250ms": update speed of depth on spot is one of 100ms, 1000ms`,
			`streams[7]: "bookTicker@100ms": bookTicker streams take no update speed`,
			`streams[9]: "depth@100ms" and "depth" would both write the book measurement; list one depth stream`,
			`streams[10]: "kline_1m@1s": kline streams take no update speed`,
		}},
		{"futures streams", `{"market":"usdm","symbols":["BTCUSDT"],"streams":["kline_1s","markPrice@3s","markPrice@1s","depth20@500ms","forceOrder","depth","ticker","miniTicker"]}`, []string{
			`streams[0]: kline interval "1s" is not one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M on usdm`,
			`streams[1]: "markPrice@3s": update speed of markPrice on usdm is one of 1s`,
			`streams[5]: "depth" and "depth20@500ms" would both write the book measurement; list one depth stream`,
			`streams[7]: "miniTicker" and "ticker" would both write the ticker measurement; list one of them`,
		}},
		{"urls", `{"symbols":["BTCUSDT"],"streams":["trade"],"ws_url":"http://x","rest_url":"ws://y"}`, []string{
			`ws_url: must be a ws:// or wss:// base URL without a query, got "http://x"`,
			`rest_url: must be an http:// or https:// base URL without a query, got "ws://y"`,
		}},
		{"numbers", `{"symbols":["BTCUSDT"],"streams":["trade"],"book_interval":"10ms","book_depth":0,"rest_weight_limit":7000,"rotate_after":"24h","streams_per_connection":1025,"max_backfill":{"count":-1,"age":"-1s"},"queue_wait":"11s"}`, []string{
			"book_interval: must be at least 100ms, got 10ms",
			"book_depth: must be between 1 and 1000, got 0",
			"max_backfill.count: must not be negative, got -1",
			"max_backfill.age: must not be negative, got -1s",
			"rest_weight_limit: must be between 50 and 6000 (Binance's limit on spot), got 7000",
			"rotate_after: must be at least 1s and under 24h (Binance closes connections at 24h), got 24h0m0s",
			"streams_per_connection: must be between 1 and 1024, got 1025",
			"queue_wait: must be between 0s and 10s, got 11s",
		}},
		{"stale_after", `{"symbols":["BTCUSDT"],"streams":["trade","kline_1m"],"stale_after":{"kline_1m":"-1s","depth":"1m","trade":"0s"}}`, []string{
			`stale_after.depth: "depth" is not one of the configured streams`,
			"stale_after.kline_1m: must not be negative, got -1s",
		}},
		{"bad durations", `{"symbols":["BTCUSDT"],"streams":["trade"],"book_interval":"soon","rotate_after":true,"stale_after":{"trade":"1 minute"},"max_backfill":{"age":"1d"},"queue_wait":"-"}`, []string{
			`book_interval: must be a duration like "500ms" or "5m", got "soon"`,
			`rotate_after: must be a duration like "500ms" or "5m", got a boolean`,
			`stale_after.trade: must be a duration like "500ms" or "5m", got "1 minute"`,
			`max_backfill.age: must be a duration like "500ms" or "5m", got "1d"`,
			`queue_wait: must be a duration like "500ms" or "5m", got "-"`,
		}},
		{"max_backfill keys", `{"symbols":["BTCUSDT"],"streams":["trade"],"max_backfill":{"ids":5}}`, []string{
			"max_backfill.ids: unknown key",
		}},
		{"max_backfill type", `{"symbols":["BTCUSDT"],"streams":["trade"],"max_backfill":{"count":"many"}}`, []string{
			"max_backfill.count: must be an integer, got a string",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configure(t, tc.cfg)
			var ces sdk.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("error %v (%T), want ConfigErrors", err, err)
			}
			var got []string
			for _, e := range ces {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		cfg            string
		ws, rest       string
		routes         bool
		weight         int
		staleTrade     time.Duration
		backfillCount  int64
		backfillAge    time.Duration
		rotate         time.Duration
		perConn, depth int
		queueWait      time.Duration
	}{
		{`{"symbols":["BTCUSDT"],"streams":["trade"]}`,
			"wss://stream.binance.com:9443", "https://api.binance.com", false, 3000, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"spot","testnet":true,"symbols":["BTCUSDT"],"streams":["trade"]}`,
			"wss://stream.testnet.binance.vision", "https://testnet.binance.vision", false, 3000, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"usdm","symbols":["BTCUSDT"],"streams":["trade"]}`,
			"wss://fstream.binance.com", "https://fapi.binance.com", true, 1200, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"usdm","testnet":true,"symbols":["BTCUSDT"],"streams":["trade"]}`,
			"wss://fstream.binancefuture.com", "https://testnet.binancefuture.com", false, 1200, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"coinm","symbols":["BTCUSD_PERP"],"streams":["trade"]}`,
			"wss://dstream.binance.com", "https://dapi.binance.com", false, 1200, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"coinm","testnet":true,"symbols":["BTCUSD_PERP"],"streams":["trade"]}`,
			"wss://dstream.binancefuture.com", "https://testnet.binancefuture.com", false, 1200, 5 * time.Minute,
			100000, 24 * time.Hour, 23*time.Hour + 50*time.Minute, 1024, 20, time.Second},
		{`{"market":"usdm","symbols":["BTCUSDT"],"streams":["trade"],"ws_url":"ws://127.0.0.1:1/usdm/","rest_url":"http://127.0.0.1:1/usdm",
		   "stale_after":{"trade":"0s"},"max_backfill":{"count":0,"age":"0s"},"rotate_after":"2s","streams_per_connection":3,"book_depth":5,"rest_weight_limit":2400,"queue_wait":"0s"}`,
			"ws://127.0.0.1:1/usdm", "http://127.0.0.1:1/usdm", false, 2400, 0,
			0, 0, 2 * time.Second, 3, 5, 0},
	} {
		s, err := configure(t, tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.cfg, err)
		}
		c := s.cfg
		got := []any{c.wsURL, c.restURL, c.wsRoutes, c.weightLimit, c.stale["trade"], c.backfillCount, c.backfillAge, c.rotateAfter, c.perConn, c.bookDepth, c.queueWait}
		want := []any{tc.ws, tc.rest, tc.routes, tc.weight, tc.staleTrade, tc.backfillCount, tc.backfillAge, tc.rotate, tc.perConn, tc.depth, tc.queueWait}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: setting %d is %v, want %v", tc.cfg, i, got[i], want[i])
			}
		}
	}
}

func TestConfigureValidateOnlyKeepsConfig(t *testing.T) {
	s, err := configure(t, `{"symbols":["BTCUSDT"],"streams":["trade"]}`)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", ValidateOnly: true,
		Config: json.RawMessage(`{"symbols":["ETHUSDT"],"streams":["depth","kline_1m"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.symbols[0] != "BTCUSDT" {
		t.Fatalf("a validate-only Configure replaced the config: %v", s.cfg.symbols)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	// feed_events is the agent's to declare: it writes the events.
	if want := []string{market.MeasCandles, market.MeasBook}; !slices.Equal(names, want) {
		t.Fatalf("measurements %v, want %v", names, want)
	}
}

func TestStreamNames(t *testing.T) {
	s, err := configure(t, `{"market":"usdm","symbols":["BTCUSDT","ETHUSDT"],"streams":["aggTrade","depth@100ms","kline_1h","bookTicker"],"streams_per_connection":3}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sh := range planShards(s.cfg) {
		got = append(got, sh.route+" "+strings.Join(sh.streams, ","))
	}
	want := []string{
		"/public btcusdt@depth@100ms,btcusdt@bookTicker,ethusdt@depth@100ms",
		"/public ethusdt@bookTicker",
		"/market btcusdt@aggTrade,btcusdt@kline_1h,ethusdt@aggTrade",
		"/market ethusdt@kline_1h",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("shards\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
