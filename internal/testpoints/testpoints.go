// Package testpoints makes the points benchmarks measure: Binance trades
// as the plugin emits them, so figures from different stages are about
// the same input.
package testpoints

import (
	"time"

	"github.com/sluicehq/sluice"
)

// Trade is a Binance spot trade with id id at time t, received 3 ms
// later.
func Trade(id int64, t time.Time) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags: []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "market", Value: "spot"},
			{Key: "side", Value: "buy"}, {Key: "symbol", Value: "S0042USDT"}},
		Fields: []sluice.Field{{Key: "price", Value: sluice.Float(64123.45 + float64(id%100))},
			{Key: "quantity", Value: sluice.Float(0.0123)}, {Key: "trade_id", Value: sluice.Int(id)}},
		Time:     t,
		Received: t.Add(3 * time.Millisecond),
	}
}

// Trades is n trades with ids 0… one microsecond apart.
func Trades(n int) []sluice.Point {
	ps := make([]sluice.Point, n)
	t := time.Unix(1700000000, 0)
	for i := range ps {
		ps[i] = Trade(int64(i), t.Add(time.Duration(i)*time.Microsecond))
	}
	return ps
}

// BatchSizes are the plugin batch sizes benchmarks measure: the SDK's
// default is 500.
var BatchSizes = []int{1, 100, 500, 1000}
