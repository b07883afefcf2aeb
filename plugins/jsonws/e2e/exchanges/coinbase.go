package exchanges

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Coinbase is Coinbase's Advanced Trade market data WebSocket,
// wss://advanced-trade-ws.coinbase.com, as its docs describe it
// (https://docs.cdp.coinbase.com/advanced-trade/docs/ws-overview and
// .../ws-channels: "Subscribe", "Heartbeats Channel", "Market Trades
// Channel"):
//
//   - A subscribe message names one channel:
//     {"type":"subscribe","product_ids":["ETH-USD"],"channel":"market_trades"}
//     (public channels need no jwt). "You are disconnected if no subscribe
//     has been received within 5 seconds."
//   - Each subscribe is answered with the connection's subscriptions:
//     {"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:29:49.753424311Z",
//     "sequence_num":1,"events":[{"subscriptions":{"market_trades":["ETH-USD"]}}]};
//     an unknown product or channel with {"type":"error","message":"..."}.
//   - Trades: {"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z",
//     "sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000",
//     "product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY","time":"2019-08-14T20:42:27.265Z"}]}]},
//     first a snapshot event, then update events.
//   - "Most channels close within 60-90 seconds if no updates are sent.
//     Subscribe to heartbeats to keep all subscriptions open": the
//     heartbeats channel sends, every second,
//     {"channel":"heartbeats","client_id":"","timestamp":"...","sequence_num":5,
//     "events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105","heartbeat_counter":"3049"}]}.
//     Here a connection without heartbeats that sent nothing for 60
//     seconds is closed.
type Coinbase struct{ *server }

// NewCoinbase returns the fake.
func NewCoinbase(opts Options) *Coinbase {
	cb := &Coinbase{}
	cb.server = newServer("coinbase", opts, cb.serve)
	return cb
}

func coinbaseTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (cb *Coinbase) serve(c *conn) {
	firstSub := time.NewTimer(cb.opts.seconds(5))
	defer firstSub.Stop()
	quiet := time.NewTimer(cb.opts.seconds(60))
	defer quiet.Stop()
	var beats *time.Ticker // from the heartbeats subscription on
	defer func() {
		if beats != nil {
			beats.Stop()
		}
	}()
	seq := 0
	send := func(channel, events string) {
		c.send(fmt.Sprintf(`{"channel":%s,"client_id":"","timestamp":%s,"sequence_num":%d,"events":%s}`,
			str(channel), str(coinbaseTime(time.Now())), seq, events))
		seq++
		quiet.Reset(cb.opts.seconds(60))
	}
	r := c.replay()
	subs := map[string][]string{} // channel → product ids
	counter := 3049
	c.loop(func(m message) bool {
		var req struct {
			Type       string   `json:"type"`
			ProductIDs []string `json:"product_ids"`
			Channel    string   `json:"channel"`
		}
		if json.Unmarshal(m.data, &req) != nil || req.Type != "subscribe" {
			c.send(`{"type":"error","message":"Failed to parse message"}`)
			return true
		}
		switch req.Channel {
		case "market_trades":
			var unknown []string
			for _, p := range req.ProductIDs {
				if !cb.known(p) {
					unknown = append(unknown, p)
				}
			}
			if len(unknown) > 0 || len(req.ProductIDs) == 0 {
				c.record(EvRefused, strings.Join(unknown, ","))
				c.send(fmt.Sprintf(`{"type":"error","message":"Failed to subscribe: unknown product_ids %s"}`, strings.Join(unknown, ",")))
				return true
			}
		case "heartbeats":
		default:
			c.record(EvRefused, req.Channel)
			c.send(fmt.Sprintf(`{"type":"error","message":"Failed to subscribe: unknown channel %s"}`, req.Channel))
			return true
		}
		firstSub.Stop()
		for _, p := range req.ProductIDs {
			if !slices.Contains(subs[req.Channel], p) {
				subs[req.Channel] = append(subs[req.Channel], p)
			}
		}
		if _, ok := subs[req.Channel]; !ok {
			subs[req.Channel] = []string{}
		}
		c.record(EvSubscribe, req.Channel)
		b, _ := json.Marshal(subs)
		send("subscriptions", fmt.Sprintf(`[{"subscriptions":%s}]`, b))
		if req.Channel == "heartbeats" && beats == nil {
			beats = time.NewTicker(cb.opts.seconds(1))
		}
		if req.Channel != "market_trades" {
			return true
		}
		for _, p := range req.ProductIDs {
			if r.done[p] {
				continue
			}
			for i, batch := range chunks(r.take(p), 2) {
				typ := "update"
				if i == 0 {
					typ = "snapshot"
				}
				var trades []string
				for _, t := range batch {
					trades = append(trades, fmt.Sprintf(`{"trade_id":%s,"product_id":%s,"price":%s,"size":%s,"side":%s,"time":%s}`,
						str(t.ID), str(t.Symbol), str(t.Price), str(t.Qty), str(strings.ToUpper(t.Side)), str(coinbaseTime(t.Time))))
				}
				send("market_trades", fmt.Sprintf(`[{"type":%s,"trades":[%s]}]`, str(typ), strings.Join(trades, ",")))
			}
		}
		if r.complete() {
			c.drop()
			return false
		}
		return true
	}, clock{C: func() <-chan time.Time {
		if beats == nil {
			return nil
		}
		return beats.C
	}, Fire: func() bool {
		counter++
		now := time.Now().UTC()
		c.record(EvHeartbeat, "")
		send("heartbeats", fmt.Sprintf(`[{"current_time":%s,"heartbeat_counter":"%d"}]`,
			str(now.Format("2006-01-02 15:04:05.000000000 -0700 MST")+" m=+91717.525857105"), counter))
		return true
	}}, timer(firstSub, func() bool {
		c.violation("no subscribe within 5s")
		return false
	}), timer(quiet, func() bool {
		if _, ok := subs["heartbeats"]; !ok {
			c.violation("no updates for 60s and no heartbeats subscription")
			return false
		}
		return true
	}))
}
