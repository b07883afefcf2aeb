package wire

import (
	"testing"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// A frame with several faults reports the first key read that fails, and
// its Event keeps what was read before it, as if the parser had stopped
// there.
func TestFirstFailingKeyIsReported(t *testing.T) {
	for _, tc := range []struct {
		name, frame, err string
		symbol           string
		id               int64
	}{
		{"trade: bad price, then no time",
			`{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"x","q":"2","m":true}`,
			`binance: bad frame: p: "x": not a decimal`, "BTCUSDT", 7},
		{"trade: no symbol, bad id",
			`{"e":"trade","E":1,"t":"7","p":"1","q":"2","T":2,"m":true}`,
			`binance: bad frame: symbol: s: missing`, "", 0},
		{"aggTrade: bad last id, bad side",
			`{"e":"aggTrade","E":1,"s":"X","a":5,"f":1,"l":"2","p":"1","q":"1","T":1,"m":1}`,
			`binance: bad frame: l: value doesn't contain number; it contains string`, "X", 5},
		{"kline: no open time, bad open",
			`{"e":"kline","E":1,"s":"X","k":{"i":"1m","o":"x","c":"1","h":"1","l":"1","v":"1","q":"1","n":1,"x":true}}`,
			`binance: bad frame: k.t: missing`, "X", 0},
		{"kline: bad close, bad count",
			`{"e":"kline","E":1,"s":"X","k":{"t":1,"i":"1m","o":"1","c":"-","h":"1","l":"1","v":"1","q":"1","n":"1","x":true}}`,
			`binance: bad frame: k.c: "-": not a decimal`, "X", 0},
		{"forceOrder: bad side, bad time",
			`{"e":"forceOrder","E":1,"o":{"s":"X","S":"buy","o":"LIMIT","f":"IOC","q":"1","p":"1","ap":"1","X":"FILLED","l":"1","z":"1","T":"1"}}`,
			`binance: bad frame: o.S: side "buy"`, "X", 0},
		{"depthUpdate: U after u, bad levels",
			`{"e":"depthUpdate","E":1,"s":"X","U":3,"u":2,"b":[["1"]],"a":[]}`,
			`binance: bad frame: U 3 after u 2`, "X", 0},
		{"ticker: bad optional, bad count",
			`{"e":"24hrTicker","E":1,"s":"X","c":"1","o":"1","h":"1","l":"1","v":"1","q":"1","P":"NaN","n":"x"}`,
			`binance: bad frame: P: "NaN": not a decimal`, "X", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ev, err := NewParser(market.USDM).Parse([]byte(tc.frame), fixture.Received, nil)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %s", err, tc.err)
			}
			if ev.Symbol != tc.symbol || ev.ID != tc.id {
				t.Errorf("event symbol %q id %d, want %q %d", ev.Symbol, ev.ID, tc.symbol, tc.id)
			}
		})
	}
}
