package exchanges

import (
	"fmt"
	"strings"
	"time"
)

// Bitfinex is Bitfinex's public WebSocket API v2,
// wss://api-pub.bitfinex.com/ws/2, as its docs describe it
// (https://docs.bitfinex.com/docs/ws-general: "How to Connect",
// "Ping/Pong", "Heartbeating", "Error Codes"; and
// https://docs.bitfinex.com/reference/ws-public-trades):
//
//   - On connect the server sends {"event":"info","version":2,"serverId":"...","platform":{"status":1}}.
//   - {"event":"subscribe","channel":"trades","symbol":"tBTCUSD"} subscribes;
//     the answer {"event":"subscribed","channel":"trades","chanId":17470,"symbol":"tBTCUSD","pair":"BTCUSD"}
//     names the channel id, which is all later messages carry. An unknown
//     symbol gets {"event":"error","msg":"symbol: invalid","code":10300},
//     a second subscription to the same symbol code 10301, and a 26th
//     channel on a connection code 10305 (25 at most).
//   - The snapshot follows, [17470,[[401597393,1574694475039,0.005,7244.9],...]]
//     (ID, MTS, AMOUNT, PRICE), then each trade twice, as "te" (executed)
//     and "tu" (updated): [17470,"te",[401597395,1574694478808,0.005,7245.3]].
//     AMOUNT is positive for a buy and negative for a sell.
//   - A channel quiet for 15 seconds gets a heartbeat, [17470,"hb"].
//   - {"event":"ping","cid":1234} is answered {"event":"pong","ts":1511545528111,"cid":1234}.
//
// Bitfinex documents no deadline for the client: its part is to take the
// heartbeats as proof of life. Channel ids start at 17470 and differ on
// every connection, as they do on the real server.
type Bitfinex struct{ *server }

// NewBitfinex returns the fake.
func NewBitfinex(opts Options) *Bitfinex {
	b := &Bitfinex{}
	b.server = newServer("bitfinex", opts, b.serve)
	return b
}

func (b *Bitfinex) serve(c *conn) {
	c.send(`{"event":"info","version":2,"serverId":"9b6c1d3e-3c2f-4c1e-a3f0-46d0b8b5b1a2","platform":{"status":1}}`)
	hb := time.NewTicker(b.opts.seconds(15))
	defer hb.Stop()
	r := c.replay()
	channels := map[string]int{} // symbol → chanId
	var order []int
	nextID := 17470 + 1000*c.n
	c.loop(func(m message) bool {
		req := obj(m.data)
		switch {
		case req == nil:
			c.send(`{"event":"error","msg":"unknown event","code":10000}`)
		case req["event"] == "ping":
			c.record(EvPing, "")
			c.send(fmt.Sprintf(`{"event":"pong","ts":%d,"cid":%s}`, time.Now().UnixMilli(), req["cid"]))
		case req["event"] == "subscribe" && req["channel"] == "trades":
			sym := strOf(req["symbol"])
			switch {
			case !b.known(sym):
				c.record(EvRefused, sym)
				c.send(fmt.Sprintf(`{"event":"error","msg":"symbol: invalid","code":10300,"channel":"trades","symbol":%s}`, str(sym)))
				return true
			case channels[sym] != 0:
				c.record(EvRefused, sym)
				c.send(fmt.Sprintf(`{"event":"error","msg":"subscribe: dup","code":10301,"channel":"trades","symbol":%s}`, str(sym)))
				return true
			case len(channels) == 25:
				c.record(EvRefused, sym)
				c.send(fmt.Sprintf(`{"event":"error","msg":"subscribe: limit","code":10305,"channel":"trades","symbol":%s}`, str(sym)))
				return true
			}
			id := nextID
			nextID++
			channels[sym] = id
			order = append(order, id)
			c.record(EvSubscribe, sym)
			c.send(fmt.Sprintf(`{"event":"subscribed","channel":"trades","chanId":%d,"symbol":%s,"pair":%s}`, id, str(sym), str(strings.TrimPrefix(sym, "t"))))
			trades := r.take(sym)
			// The snapshot holds the first trade, newest first as
			// Bitfinex sends it; each later trade comes as te and tu.
			c.send(fmt.Sprintf(`[%d,[%s]]`, id, bitfinexTrade(trades[0])))
			for _, t := range trades[1:] {
				c.send(fmt.Sprintf(`[%d,"te",%s]`, id, bitfinexTrade(t)))
				c.send(fmt.Sprintf(`[%d,"tu",%s]`, id, bitfinexTrade(t)))
			}
			if r.complete() {
				c.drop()
				return false
			}
		default:
			c.send(`{"event":"error","msg":"unknown event","code":10000}`)
		}
		return true
	}, ticker(hb, func() bool {
		for _, id := range order {
			c.record(EvHeartbeat, "")
			c.send(fmt.Sprintf(`[%d,"hb"]`, id))
		}
		return true
	}))
}

// bitfinexTrade is [ID, MTS, AMOUNT, PRICE], AMOUNT signed by side.
func bitfinexTrade(t Trade) string {
	amount := t.Qty
	if t.Side == "sell" {
		amount = "-" + amount
	}
	return fmt.Sprintf(`[%s,%d,%s,%s]`, t.ID, t.Time.UnixMilli(), amount, t.Price)
}
