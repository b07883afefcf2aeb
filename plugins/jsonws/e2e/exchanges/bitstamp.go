package exchanges

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Bitstamp is Bitstamp's WebSocket API v2, wss://ws.bitstamp.net, as its
// docs describe it (https://www.bitstamp.net/websocket/v2/: "Subscriptions",
// "Channels: Live ticker", "Heartbeat", "Forced reconnection"):
//
//   - {"event":"bts:subscribe","data":{"channel":"live_trades_btcusd"}}
//     subscribes; the answer is {"event":"bts:subscription_succeeded","channel":"live_trades_btcusd","data":{}}.
//     Anything else gets {"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}.
//   - Trades: {"data":{"id":202515893,"timestamp":"1637846090","amount":0.0134,"amount_str":"0.01340000",
//     "price":57245.83,"price_str":"57245.83","type":0,"microtimestamp":"1637846090466000",
//     "buy_order_id":1436049393856512,"sell_order_id":1436049381761024},"channel":"live_trades_btcusd","event":"trade"};
//     type 0 is a buy, 1 a sell; the _str fields keep every digit.
//   - {"event":"bts:heartbeat"} is answered
//     {"event":"bts:heartbeat","channel":"","data":{"status":"success"}}.
//   - Before maintenance the server sends
//     {"event":"bts:request_reconnect","channel":"","data":""}: the client
//     should reconnect; the server closes the connection a few seconds
//     later. That is how this fake ends the connections of Options.Drop.
//
// Trade.Symbol is the market (btcusd).
type Bitstamp struct{ *server }

// NewBitstamp returns the fake.
func NewBitstamp(opts Options) *Bitstamp {
	b := &Bitstamp{}
	b.server = newServer("bitstamp", opts, b.serve)
	return b
}

func (b *Bitstamp) serve(c *conn) {
	r := c.replay()
	var closing <-chan time.Time
	c.loop(func(m message) bool {
		var req struct {
			Event string `json:"event"`
			Data  struct {
				Channel string `json:"channel"`
			} `json:"data"`
		}
		if json.Unmarshal(m.data, &req) != nil {
			c.send(`{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}`)
			return true
		}
		switch req.Event {
		case "bts:heartbeat":
			c.record(EvPing, "")
			c.send(`{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}`)
		case "bts:subscribe":
			market, ok := strings.CutPrefix(req.Data.Channel, "live_trades_")
			if !ok || !b.known(market) {
				c.record(EvRefused, req.Data.Channel)
				c.send(`{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}`)
				return true
			}
			c.record(EvSubscribe, req.Data.Channel)
			c.send(fmt.Sprintf(`{"event":"bts:subscription_succeeded","channel":%s,"data":{}}`, str(req.Data.Channel)))
			for _, t := range r.take(market) {
				typ := 0
				if t.Side == "sell" {
					typ = 1
				}
				c.send(fmt.Sprintf(`{"data":{"id":%s,"timestamp":"%d","amount":%s,"amount_str":%s,"price":%s,"price_str":%s,"type":%d,"microtimestamp":"%d","buy_order_id":1436049393856512,"sell_order_id":1436049381761024},"channel":%s,"event":"trade"}`,
					t.ID, t.Time.Unix(), t.Qty, str(t.Qty), t.Price, str(t.Price), typ, t.Time.UnixMicro(), str(req.Data.Channel)))
			}
			if r.complete() {
				c.send(`{"event":"bts:request_reconnect","channel":"","data":""}`)
				closing = time.After(b.opts.seconds(3))
			}
		default:
			c.send(`{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}`)
		}
		return true
	}, clock{C: func() <-chan time.Time { return closing }, Fire: func() bool {
		c.drop()
		return false
	}})
}
