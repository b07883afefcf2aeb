package nats

import (
	"math"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func trade(symbol string, id sluice.Value) *sluice.Point {
	p := point("trades", "exchange", "binance", "market", "spot", "symbol", symbol, "side", "buy")
	p.Fields = []sluice.Field{{Key: "price", Value: sluice.Float(1.5)}, {Key: "trade_id", Value: id}}
	p.Time = time.Unix(0, 1700000000123456789)
	return p
}

var tradeKey = []string{"exchange", "market", "symbol", "trade_id"}

func TestMsgID(t *testing.T) {
	tests := []struct {
		name   string
		p      *sluice.Point
		unique []string
		want   string
	}{
		{"trade", trade("BTCUSDT", sluice.Int(123456789)), tradeKey, "trades:binance:spot:BTCUSDT:123456789"},
		{"uint id", trade("BTCUSDT", sluice.Uint(math.MaxUint64)), tradeKey, "trades:binance:spot:BTCUSDT:18446744073709551615"},
		{"string id", trade("BTCUSDT", sluice.String("a:b%c")), tradeKey, "trades:binance:spot:BTCUSDT:a%3Ab%25c"},
		{"float id", trade("BTCUSDT", sluice.Float(0.1)), tradeKey, "trades:binance:spot:BTCUSDT:0.1"},
		{"bool id", trade("BTCUSDT", sluice.Bool(true)), tradeKey, "trades:binance:spot:BTCUSDT:true"},
		{"time", trade("BTCUSDT", sluice.Int(1)), []string{"symbol", "time"}, "trades:BTCUSDT:1700000000123456789"},
		{"newline escaped", trade("A\nB", sluice.Int(1)), []string{"symbol"}, "trades:A%0AB"},
		{"no key", trade("BTCUSDT", sluice.Int(1)), nil, ""},
		{"key name missing", trade("BTCUSDT", sluice.Int(1)), []string{"symbol", "agg_id"}, ""},
	}
	for _, tt := range tests {
		if got := msgID(tt.p, tt.unique); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestMsgIDApart: values holding the separator cannot make two keys meet.
func TestMsgIDApart(t *testing.T) {
	a := point("m", "x", "a:b", "y", "c")
	b := point("m", "x", "a", "y", "b:c")
	key := []string{"x", "y"}
	if msgID(a, key) == msgID(b, key) {
		t.Fatalf("both are %q", msgID(a, key))
	}
}
