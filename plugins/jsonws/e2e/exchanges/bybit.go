package exchanges

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Bybit is Bybit's public spot WebSocket API v5,
// wss://stream.bybit.com/v5/public/spot, as its docs describe it
// (https://bybit-exchange.github.io/docs/v5/ws/connect and
// https://bybit-exchange.github.io/docs/v5/websocket/public/trade):
//
//   - {"req_id":"test","op":"subscribe","args":["publicTrade.BTCUSDT"]}
//     subscribes; the spot answer is one ack for the request,
//     {"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"test","op":"subscribe"},
//     or, when a topic is unknown, success false with the reason in ret_msg.
//   - Trades: {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,
//     "data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
//     "L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}: side
//     "Buy"/"Sell", size and price strings, the trade id a UUID.
//   - {"req_id":"100001","op":"ping"} is answered, on spot,
//     {"success":true,"ret_msg":"pong","conn_id":"...","req_id":"100001","op":"ping"}.
//     Bybit recommends a ping every 20 seconds; "if there is no ping-pong
//     and no stream data sent from server end, the connection will be
//     cut off after 10 minutes."
//
// Trade.ID is the UUID.
type Bybit struct{ *server }

// NewBybit returns the fake.
func NewBybit(opts Options) *Bybit {
	b := &Bybit{}
	b.server = newServer("bybit", opts, b.serve)
	return b
}

func (b *Bybit) serve(c *conn) {
	const connID = "2324d924-aa4d-45b0-a858-7b8be29ab52b"
	idle := time.NewTimer(b.opts.seconds(600))
	defer idle.Stop()
	alive := func() { idle.Reset(b.opts.seconds(600)) }
	r := c.replay()
	c.loop(func(m message) bool {
		var req struct {
			ReqID string   `json:"req_id"`
			Op    string   `json:"op"`
			Args  []string `json:"args"`
		}
		if json.Unmarshal(m.data, &req) != nil {
			c.send(fmt.Sprintf(`{"success":false,"ret_msg":"error:request not json","conn_id":%s,"op":""}`, str(connID)))
			return true
		}
		switch req.Op {
		case "ping":
			c.record(EvPing, "")
			c.send(fmt.Sprintf(`{"success":true,"ret_msg":"pong","conn_id":%s,"req_id":%s,"op":"ping"}`, str(connID), str(req.ReqID)))
			alive()
		case "subscribe":
			var bad []string
			for _, topic := range req.Args {
				sym, ok := strings.CutPrefix(topic, "publicTrade.")
				if !ok || !b.known(sym) {
					bad = append(bad, topic)
				}
			}
			if len(bad) > 0 || len(req.Args) == 0 {
				c.record(EvRefused, strings.Join(bad, ","))
				c.send(fmt.Sprintf(`{"success":false,"ret_msg":"Invalid symbol :[%s]","conn_id":%s,"req_id":%s,"op":"subscribe"}`,
					strings.Join(bad, ","), str(connID), str(req.ReqID)))
				return true
			}
			c.send(fmt.Sprintf(`{"success":true,"ret_msg":"subscribe","conn_id":%s,"req_id":%s,"op":"subscribe"}`, str(connID), str(req.ReqID)))
			for _, topic := range req.Args {
				c.record(EvSubscribe, topic)
				for _, batch := range chunks(r.take(strings.TrimPrefix(topic, "publicTrade.")), 2) {
					var data []string
					for _, t := range batch {
						data = append(data, fmt.Sprintf(`{"T":%d,"s":%s,"S":%s,"v":%s,"p":%s,"L":"PlusTick","i":%s,"BT":false}`,
							t.Time.UnixMilli(), str(t.Symbol), str(strings.ToUpper(t.Side[:1])+t.Side[1:]), str(t.Qty), str(t.Price), str(t.ID)))
					}
					c.send(fmt.Sprintf(`{"topic":%s,"type":"snapshot","ts":%d,"data":[%s]}`, str(topic), batch[len(batch)-1].Time.UnixMilli()+3, strings.Join(data, ",")))
				}
			}
			alive()
			if r.complete() {
				c.drop()
				return false
			}
		default:
			c.send(fmt.Sprintf(`{"success":false,"ret_msg":"error:handler not found","conn_id":%s,"req_id":%s,"op":%s}`, str(connID), str(req.ReqID), str(req.Op)))
		}
		return true
	}, timer(idle, func() bool {
		c.violation("no ping-pong and no data for 10 minutes")
		return false
	}))
}
