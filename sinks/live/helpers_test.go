package live

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// testSecret is the HMAC secret of the test sinks.
var testSecret = strings.Repeat("k", 40)

// openSink opens a live sink on a free loopback port with cfg's changes
// over the defaults and the test secret.
func openSink(t *testing.T, change func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TokenHMACSecret = testSecret
	if change != nil {
		change(&cfg)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := New(cfg, log)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func wsURL(s *Sink) string { return "ws://" + s.Addr().String() + "/connection/websocket" }

// trade is a trade point of Binance spot.
func trade(symbol string, id int64) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "market", Value: "spot"}, {Key: "side", Value: "buy"}, {Key: "symbol", Value: symbol}},
		Fields:      []sluice.Field{{Key: "price", Value: sluice.Float(100 + float64(id)/100)}, {Key: "quantity", Value: sluice.Float(0.5)}, {Key: "trade_id", Value: sluice.Int(id)}},
		Time:        time.Unix(1_700_000_000, id*1000).UTC(),
	}
}

func trades(symbol string, from, to int64) []sluice.Point {
	var ps []sluice.Point
	for id := from; id <= to; id++ {
		ps = append(ps, trade(symbol, id))
	}
	return ps
}
