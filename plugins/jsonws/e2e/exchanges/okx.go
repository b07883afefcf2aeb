package exchanges

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// OKX is OKX's public WebSocket API v5, wss://ws.okx.com:8443/ws/v5/public,
// as its docs describe it (https://www.okx.com/docs-v5/en/: "WebSocket /
// Overview / Connect" and "Public Data / WebSocket / Trades channel"):
//
//   - {"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}
//     subscribes; each arg is acknowledged on its own,
//     {"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"accb8e21"};
//     an unknown instrument gets {"event":"error","code":"60018","msg":"Wrong URL or channel:trades,instId:XYZ-USDT doesn't exist...","connId":"accb8e21"}.
//   - Trades: {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",
//     "tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3"}]},
//     every number a string.
//   - "The connection will break automatically if the subscription is not
//     established or data has not been pushed for more than 30 seconds."
//     A client keeps it up by sending the text "ping", which the server
//     answers with the text "pong": a push like any other.
type OKX struct{ *server }

// NewOKX returns the fake.
func NewOKX(opts Options) *OKX {
	o := &OKX{}
	o.server = newServer("okx", opts, o.serve)
	return o
}

func (o *OKX) serve(c *conn) {
	const connID = "accb8e21"
	idle := time.NewTimer(o.opts.seconds(30))
	defer idle.Stop()
	pushed := func() { idle.Reset(o.opts.seconds(30)) }
	r := c.replay()
	c.loop(func(m message) bool {
		if m.text && string(m.data) == "ping" {
			c.record(EvPing, "")
			c.send("pong")
			pushed()
			return true
		}
		var req struct {
			Op   string `json:"op"`
			Args []struct {
				Channel string `json:"channel"`
				InstID  string `json:"instId"`
			} `json:"args"`
		}
		if json.Unmarshal(m.data, &req) != nil || req.Op != "subscribe" || len(req.Args) == 0 {
			c.send(fmt.Sprintf(`{"event":"error","code":"60012","msg":"Invalid request: %s","connId":"%s"}`, strings.ReplaceAll(string(m.data), `"`, `\"`), connID))
			pushed()
			return true
		}
		for _, a := range req.Args {
			arg := fmt.Sprintf(`{"channel":%s,"instId":%s}`, str(a.Channel), str(a.InstID))
			if a.Channel != "trades" || !o.known(a.InstID) {
				c.record(EvRefused, a.InstID)
				c.send(fmt.Sprintf(`{"event":"error","code":"60018","msg":"Wrong URL or channel:%s,instId:%s doesn't exist. Please use the correct URL, channel and parameters referring to API document.","connId":"%s"}`,
					a.Channel, a.InstID, connID))
				continue
			}
			c.record(EvSubscribe, a.InstID)
			c.send(fmt.Sprintf(`{"event":"subscribe","arg":%s,"connId":"%s"}`, arg, connID))
			for _, batch := range chunks(r.take(a.InstID), 2) {
				var data []string
				for _, t := range batch {
					data = append(data, fmt.Sprintf(`{"instId":%s,"tradeId":%s,"px":%s,"sz":%s,"side":%s,"ts":"%d","count":"1"}`,
						str(t.Symbol), str(t.ID), str(t.Price), str(t.Qty), str(t.Side), t.Time.UnixMilli()))
				}
				c.send(fmt.Sprintf(`{"arg":%s,"data":[%s]}`, arg, strings.Join(data, ",")))
			}
		}
		pushed()
		if r.complete() {
			c.drop()
			return false
		}
		return true
	}, timer(idle, func() bool {
		if len(r.done) == 0 {
			c.violation("no subscription within 30s")
		} else {
			c.violation("no data pushed for 30s (send \"ping\" to keep the connection)")
		}
		return false
	}))
}
