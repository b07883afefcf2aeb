package exchanges

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Huobi is HTX's (formerly Huobi's) spot market data WebSocket,
// wss://api.huobi.pro/ws, as the HTX spot API docs describe it
// (https://huobiapi.github.io/docs/spot/v1/en/, "Websocket Market Data":
// "Data Compression", "Heartbeat and Connection", "Subscribe to a Topic",
// "Trade Detail"):
//
//   - Every frame the server sends is gzip-compressed, in a binary frame.
//   - The server sends {"ping": 1492420473027} every 5 seconds; the client
//     answers {"pong": 1492420473027} with the same integer. A client that
//     leaves two pings unanswered is disconnected.
//   - {"sub": "market.btcusdt.trade.detail", "id": "id1"} subscribes; the
//     answer is {"id":"id1","status":"ok","subbed":"market.btcusdt.trade.detail","ts":1489474081631},
//     or for an unknown topic {"id":"id1","status":"error","err-code":"bad-request","err-msg":"invalid topic ...","ts":...}.
//   - Trades follow the "Trade Detail" example: {"ch":"market.btcusdt.trade.detail","ts":1630994963175,
//     "tick":{"id":137005445109,"ts":1630994963173,"data":[{"id":137005445109359286410323766,
//     "ts":1630994963173,"tradeId":102523573486,"amount":0.006754,"price":52648.62,"direction":"buy"}]}},
//     amount and price JSON numbers written digit for digit, the 27-digit
//     data[].id and the tradeId (the unique trade id) integers, two trades
//     to a tick here.
//
// Trade.ID is the tradeId; Trade.Symbol the lower-case symbol (btcusdt).
type Huobi struct{ *server }

// NewHuobi returns the fake.
func NewHuobi(opts Options) *Huobi {
	h := &Huobi{}
	h.server = newServer("huobi", opts, h.serve)
	return h
}

var huobiTopic = regexp.MustCompile(`^market\.([a-z0-9]+)\.trade\.detail$`)

func (h *Huobi) serve(c *conn) {
	ping := time.NewTicker(h.opts.seconds(5))
	defer ping.Stop()
	var unanswered []int64 // pings sent and not yet answered
	nextPing := int64(1492420473027)
	r := c.replay()
	c.loop(func(m message) bool {
		req := obj(m.data)
		if req == nil {
			c.sendGzip(fmt.Sprintf(`{"status":"error","err-code":"bad-request","err-msg":"invalid json","ts":%d}`, time.Now().UnixMilli()))
			return true
		}
		switch {
		case req["pong"] != nil:
			n, err := req["pong"].(json.Number).Int64()
			if err != nil {
				c.sendGzip(fmt.Sprintf(`{"ts":%d,"status":"error","err-code":"bad-request","err-msg":"invalid pong"}`, time.Now().UnixMilli()))
				return true
			}
			for i, p := range unanswered {
				if p == n {
					unanswered = unanswered[i+1:]
					c.record(EvPong, fmt.Sprint(n))
					break
				}
			}
		case req["ping"] != nil:
			c.record(EvPing, "")
			c.sendGzip(fmt.Sprintf(`{"pong":%s}`, req["ping"]))
		case req["sub"] != nil:
			topic, id := strOf(req["sub"]), strOf(req["id"])
			sym := huobiTopic.FindStringSubmatch(topic)
			if sym == nil || !h.known(sym[1]) {
				c.record(EvRefused, topic)
				c.sendGzip(fmt.Sprintf(`{"id":%s,"status":"error","err-code":"bad-request","err-msg":"invalid topic %s","ts":%d}`, str(id), topic, time.Now().UnixMilli()))
				return true
			}
			c.record(EvSubscribe, topic)
			c.sendGzip(fmt.Sprintf(`{"id":%s,"status":"ok","subbed":%s,"ts":%d}`, str(id), str(topic), time.Now().UnixMilli()))
			for i, batch := range chunks(r.take(sym[1]), 2) {
				c.sendGzip(huobiTick(topic, i, batch))
			}
			if r.complete() {
				c.drop()
				return false
			}
		}
		return true
	}, ticker(ping, func() bool {
		if len(unanswered) >= 2 {
			c.violation(fmt.Sprintf("no pong to 2 pings (%d, %d)", unanswered[0], unanswered[1]))
			return false
		}
		nextPing++
		unanswered = append(unanswered, nextPing)
		c.sendGzip(fmt.Sprintf(`{"ping":%d}`, nextPing))
		return true
	}))
}

// huobiTick is one "Trade Detail" push of trades.
func huobiTick(topic string, n int, trades []Trade) string {
	tickID := int64(137005445109) + int64(n)
	var data []string
	for i, t := range trades {
		// data[].id: 27 digits, neighbours differing in the last ones.
		id := fmt.Sprintf("%d%015d", tickID, 359286410323766+int64(i))
		data = append(data, fmt.Sprintf(`{"id":%s,"ts":%d,"tradeId":%s,"amount":%s,"price":%s,"direction":%s}`,
			id, t.Time.UnixMilli(), t.ID, t.Qty, t.Price, str(t.Side)))
	}
	last := trades[len(trades)-1].Time.UnixMilli()
	return fmt.Sprintf(`{"ch":%s,"ts":%d,"tick":{"id":%d,"ts":%d,"data":[%s]}}`, str(topic), last+2, tickID, last, strings.Join(data, ","))
}
