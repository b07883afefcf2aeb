package exchanges

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kraken is Kraken's spot WebSocket API v2, wss://ws.kraken.com/v2, as
// its docs describe it (https://docs.kraken.com/api/docs/websocket-v2/trade,
// .../heartbeat, .../ping and .../status):
//
//   - On connect the server sends its status:
//     {"channel":"status","data":[{"api_version":"v2","connection_id":12393906104898154338,"system":"online","version":"2.0.0"}],"type":"update"}
//     (the connection id is past what an int64 holds).
//   - {"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD","ETH/USD"],"snapshot":true},"req_id":1}
//     subscribes; each symbol is acknowledged on its own:
//     {"method":"subscribe","req_id":1,"result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"...","time_out":"..."},
//     and a symbol Kraken does not list gets
//     {"error":"Currency pair not supported XYZ/USD","method":"subscribe","req_id":1,"success":false,"symbol":"XYZ/USD",...}.
//     A request without method or params gets an error reply.
//   - Trades come as snapshot, then updates: {"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD",
//     "side":"buy","price":0.5147,"qty":6423.46326,"ord_type":"limit","trade_id":4665846,
//     "timestamp":"2023-09-25T07:48:36.925533Z"}]}, price and qty JSON
//     numbers written digit for digit.
//   - With a subscription open, {"channel":"heartbeat"} comes about every
//     second in the absence of other updates.
//   - {"method":"ping","req_id":101} is answered {"method":"pong","req_id":101,"time_in":"...","time_out":"..."}.
//
// Kraken documents no deadline for the client: its part is to take the
// heartbeats as proof of life and to check every symbol's ack.
type Kraken struct{ *server }

// NewKraken returns the fake.
func NewKraken(opts Options) *Kraken {
	k := &Kraken{}
	k.server = newServer("kraken", opts, k.serve)
	return k
}

func krakenTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func (k *Kraken) serve(c *conn) {
	c.send(`{"channel":"status","data":[{"api_version":"v2","connection_id":12393906104898154338,"system":"online","version":"2.0.0"}],"type":"update"}`)
	hb := time.NewTicker(k.opts.seconds(1))
	defer hb.Stop()
	r := c.replay()
	c.loop(func(m message) bool {
		now := krakenTime(time.Now())
		var req struct {
			Method string `json:"method"`
			Params *struct {
				Channel  string   `json:"channel"`
				Symbol   []string `json:"symbol"`
				Snapshot bool     `json:"snapshot"`
			} `json:"params"`
			ReqID *int64 `json:"req_id"`
		}
		if json.Unmarshal(m.data, &req) != nil || req.Method == "" {
			c.send(fmt.Sprintf(`{"error":"Malformed request","method":"","success":false,"time_in":%s,"time_out":%s}`, str(now), str(now)))
			return true
		}
		reqID := ""
		if req.ReqID != nil {
			reqID = fmt.Sprintf(`"req_id":%d,`, *req.ReqID)
		}
		switch {
		case req.Method == "ping":
			c.record(EvPing, "")
			c.send(fmt.Sprintf(`{"method":"pong",%s"time_in":%s,"time_out":%s}`, reqID, str(now), str(now)))
		case req.Method == "subscribe" && req.Params != nil && req.Params.Channel == "trade" && len(req.Params.Symbol) > 0:
			for _, sym := range req.Params.Symbol {
				if !k.known(sym) {
					c.record(EvRefused, sym)
					c.send(fmt.Sprintf(`{"error":"Currency pair not supported %s","method":"subscribe",%s"success":false,"symbol":%s,"time_in":%s,"time_out":%s}`,
						sym, reqID, str(sym), str(now), str(now)))
					continue
				}
				c.record(EvSubscribe, sym)
				c.send(fmt.Sprintf(`{"method":"subscribe",%s"result":{"channel":"trade","snapshot":%v,"symbol":%s},"success":true,"time_in":%s,"time_out":%s}`,
					reqID, req.Params.Snapshot, str(sym), str(now), str(now)))
				trades := r.take(sym)
				if req.Params.Snapshot {
					c.send(krakenTrades("snapshot", trades[:1]))
					trades = trades[1:]
				}
				for _, batch := range chunks(trades, 2) {
					c.send(krakenTrades("update", batch))
				}
			}
			if r.complete() {
				c.drop()
				return false
			}
		default:
			c.send(fmt.Sprintf(`{"error":"Unsupported request","method":%s,%s"success":false,"time_in":%s,"time_out":%s}`, str(req.Method), reqID, str(now), str(now)))
		}
		return true
	}, ticker(hb, func() bool {
		if len(r.done) > 0 {
			c.record(EvHeartbeat, "")
			c.send(`{"channel":"heartbeat"}`)
		}
		return true
	}))
}

func krakenTrades(typ string, trades []Trade) string {
	var data []string
	for _, t := range trades {
		data = append(data, fmt.Sprintf(`{"symbol":%s,"side":%s,"price":%s,"qty":%s,"ord_type":"limit","trade_id":%s,"timestamp":%s}`,
			str(t.Symbol), str(t.Side), t.Price, t.Qty, t.ID, str(krakenTime(t.Time))))
	}
	return fmt.Sprintf(`{"channel":"trade","type":%s,"data":[%s]}`, str(typ), strings.Join(data, ","))
}
