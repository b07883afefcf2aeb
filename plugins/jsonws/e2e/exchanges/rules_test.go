package exchanges

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Each fake enforces its exchange's documented rules: a client that
// breaks them is disconnected with the rule as the reason, and one that
// keeps them is not.

func TestHuobiPingDeadline(t *testing.T) {
	t.Run("unanswered pings", func(t *testing.T) {
		h := NewHuobi(Options{Trades: trades("btcusdt"), Unit: unit})
		c := dial(t, h)
		c.send(`{"sub":"market.btcusdt.trade.detail","id":"id1"}`)
		if got := c.until(`"subbed"`); !strings.Contains(got, `"status":"ok"`) {
			t.Errorf("ack %s", got)
		}
		if reason := c.closedFor(); !strings.Contains(reason, "no pong to 2 pings") {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("answered pings", func(t *testing.T) {
		h := NewHuobi(Options{Trades: trades("btcusdt"), Unit: unit})
		c := dial(t, h)
		c.send(`{"sub":"market.btcusdt.trade.detail","id":"id1"}`)
		tick := c.until(`"ch":"market.btcusdt.trade.detail"`)
		if !regexp.MustCompile(`"data":\[\{"id":\d{27},"ts":\d+,"tradeId":1000,"amount":0.12060306,"price":42219.9,"direction":"buy"\}`).MatchString(tick) {
			t.Errorf("tick %s", tick)
		}
		ping := regexp.MustCompile(`^\{"ping":(\d+)\}$`)
		for pongs := 0; pongs < 5; {
			msg, closed := c.next()
			if closed != "" {
				t.Fatalf("closed: %s", closed)
			}
			if m := ping.FindStringSubmatch(msg); m != nil {
				c.send(fmt.Sprintf(`{"pong":%s}`, m[1]))
				pongs++
			}
		}
		if v := h.Violations(); len(v) != 0 {
			t.Errorf("violations %v", v)
		}
	})
	t.Run("unknown topic", func(t *testing.T) {
		c := dial(t, NewHuobi(Options{Trades: trades("btcusdt"), Unit: time.Hour}))
		c.send(`{"sub":"market.xyzusdt.trade.detail","id":"id2"}`)
		if got := c.until(`"id":"id2"`); !strings.Contains(got, `"status":"error","err-code":"bad-request","err-msg":"invalid topic market.xyzusdt.trade.detail"`) {
			t.Errorf("reply %s", got)
		}
	})
}

func TestOKXIdleDeadline(t *testing.T) {
	t.Run("no subscription", func(t *testing.T) {
		c := dial(t, NewOKX(Options{Trades: trades("BTC-USDT"), Unit: unit}))
		if reason := c.closedFor(); reason != "no subscription within 30s" {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("no pings", func(t *testing.T) {
		c := dial(t, NewOKX(Options{Trades: trades("BTC-USDT"), Unit: unit}))
		c.send(`{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}`)
		if got := c.until(`"event"`); got != `{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"accb8e21"}` {
			t.Errorf("ack %s", got)
		}
		if reason := c.closedFor(); !strings.HasPrefix(reason, "no data pushed for 30s") {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("pings", func(t *testing.T) {
		o := NewOKX(Options{Trades: trades("BTC-USDT"), Unit: unit})
		c := dial(t, o)
		c.send(`{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"},{"channel":"trades","instId":"XYZ-USDT"}]}`)
		if got := c.until(`"code"`); !strings.Contains(got, `"code":"60018"`) || !strings.Contains(got, "XYZ-USDT") {
			t.Errorf("error for the unknown instrument: %s", got)
		}
		for range 8 {
			time.Sleep(10 * unit)
			c.send("ping")
			c.until("pong")
		}
		if v := o.Violations(); len(v) != 0 {
			t.Errorf("violations %v", v)
		}
	})
}

func TestBybitIdleDeadline(t *testing.T) {
	t.Run("no pings", func(t *testing.T) {
		c := dial(t, NewBybit(Options{Trades: trades("BTCUSDT"), Unit: time.Millisecond}))
		c.send(`{"req_id":"test","op":"subscribe","args":["publicTrade.BTCUSDT"]}`)
		if got := c.until(`"op":"subscribe"`); got != `{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"test","op":"subscribe"}` {
			t.Errorf("ack %s", got)
		}
		if got := c.until(`"topic"`); !strings.Contains(got, `"S":"Buy","v":"0.12060306","p":"42219.9"`) {
			t.Errorf("trade %s", got)
		}
		if reason := c.closedFor(); reason != "no ping-pong and no data for 10 minutes" {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("pings", func(t *testing.T) {
		b := NewBybit(Options{Trades: trades("BTCUSDT"), Unit: time.Millisecond})
		c := dial(t, b)
		c.send(`{"req_id":"1","op":"subscribe","args":["publicTrade.XYZ"]}`)
		if got := c.until(`"op":"subscribe"`); !strings.Contains(got, `"success":false,"ret_msg":"Invalid symbol :[publicTrade.XYZ]"`) {
			t.Errorf("refusal %s", got)
		}
		for range 5 {
			time.Sleep(300 * time.Millisecond)
			c.send(`{"req_id":"100001","op":"ping"}`)
			if got := c.until(`"op":"ping"`); got != `{"success":true,"ret_msg":"pong","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"100001","op":"ping"}` {
				t.Errorf("pong %s", got)
			}
		}
		if v := b.Violations(); len(v) != 0 {
			t.Errorf("violations %v", v)
		}
	})
}

func TestCoinbaseDeadlines(t *testing.T) {
	t.Run("no subscribe", func(t *testing.T) {
		c := dial(t, NewCoinbase(Options{Trades: trades("BTC-USD"), Unit: unit}))
		if reason := c.closedFor(); reason != "no subscribe within 5s" {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("no heartbeats", func(t *testing.T) {
		c := dial(t, NewCoinbase(Options{Trades: trades("BTC-USD"), Unit: unit}))
		c.send(`{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}`)
		if got := c.until(`"subscriptions"`); !strings.Contains(got, `"events":[{"subscriptions":{"market_trades":["BTC-USD"]}}]`) {
			t.Errorf("ack %s", got)
		}
		if got := c.until(`"market_trades"`); !strings.Contains(got, `"type":"snapshot","trades":[{"trade_id":"1000","product_id":"BTC-USD","price":"42219.9","size":"0.12060306","side":"BUY","time":"2024-03-04T05:06:07.123456Z"}`) {
			t.Errorf("trades %s", got)
		}
		if reason := c.closedFor(); reason != "no updates for 60s and no heartbeats subscription" {
			t.Errorf("closed for %q", reason)
		}
	})
	t.Run("heartbeats", func(t *testing.T) {
		cb := NewCoinbase(Options{Trades: trades("BTC-USD"), Unit: unit})
		c := dial(t, cb)
		c.send(`{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}`)
		c.send(`{"type":"subscribe","product_ids":["BTC-USD"],"channel":"heartbeats"}`)
		c.send(`{"type":"subscribe","product_ids":["XYZ-USD"],"channel":"market_trades"}`)
		c.until(`"type":"error","message":"Failed to subscribe: unknown product_ids XYZ-USD"`)
		deadline := time.Now().Add(100 * unit)
		for time.Now().Before(deadline) {
			c.until(`"heartbeat_counter"`)
		}
		if v := cb.Violations(); len(v) != 0 {
			t.Errorf("violations %v", v)
		}
	})
}

func TestKrakenAcksEachSymbol(t *testing.T) {
	k := NewKraken(Options{Trades: trades("BTC/USD", "ETH/USD"), Unit: unit})
	c := dial(t, k)
	if got, _ := c.next(); !strings.Contains(got, `"channel":"status"`) || !strings.Contains(got, `"connection_id":12393906104898154338`) {
		t.Errorf("first message %s", got)
	}
	c.send(`{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD","XYZ/USD","ETH/USD"],"snapshot":true},"req_id":1}`)
	var acks []string
	for len(acks) < 3 {
		if msg := c.until(`"method":"subscribe"`); msg != "" {
			acks = append(acks, regexp.MustCompile(`"time_(in|out)":"[^"]+"`).ReplaceAllString(msg, `"time_$1":"T"`))
		}
	}
	want := []string{
		`{"method":"subscribe","req_id":1,"result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"T","time_out":"T"}`,
		`{"error":"Currency pair not supported XYZ/USD","method":"subscribe","req_id":1,"success":false,"symbol":"XYZ/USD","time_in":"T","time_out":"T"}`,
		`{"method":"subscribe","req_id":1,"result":{"channel":"trade","snapshot":true,"symbol":"ETH/USD"},"success":true,"time_in":"T","time_out":"T"}`,
	}
	if strings.Join(acks, "\n") != strings.Join(want, "\n") {
		t.Errorf("acks:\n%s\nwant:\n%s", strings.Join(acks, "\n"), strings.Join(want, "\n"))
	}
	c.until(`{"channel":"heartbeat"}`)
	c.send(`{"method":"ping","req_id":101}`)
	c.until(`"method":"pong","req_id":101`)
	c.send(`{"params":{}}`)
	c.until(`"error":"Malformed request"`)
}

func TestBitfinexChannels(t *testing.T) {
	b := NewBitfinex(Options{Trades: trades("tBTCUSD"), Unit: unit})
	c := dial(t, b)
	c.until(`"event":"info","version":2`)
	c.send(`{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}`)
	if got := c.until(`"subscribed"`); got != `{"event":"subscribed","channel":"trades","chanId":18470,"symbol":"tBTCUSD","pair":"BTCUSD"}` {
		t.Errorf("ack %s", got)
	}
	if got := c.until(`[18470,[`); got != `[18470,[[1000,1709528767123,0.12060306,42219.9]]]` {
		t.Errorf("snapshot %s", got)
	}
	if got := c.until(`"te"`); got != `[18470,"te",[1001,1709528767124,-0.12060306,42219.9]]` {
		t.Errorf("te %s", got)
	}
	c.until(`"tu"`)
	c.until(`[18470,"hb"]`)
	c.send(`{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}`)
	c.until(`"code":10301`)
	c.send(`{"event":"subscribe","channel":"trades","symbol":"tXYZ"}`)
	c.until(`"code":10300`)
	c.send(`{"event":"ping","cid":1234}`)
	c.until(`"event":"pong"`)
}

func TestBitstampRequestsReconnect(t *testing.T) {
	b := NewBitstamp(Options{Trades: trades("btcusd"), Unit: unit, Drop: 1})
	c := dial(t, b)
	c.send(`{"event":"bts:heartbeat"}`)
	c.until(`{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}`)
	c.send(`{"event":"bts:subscribe","data":{"channel":"live_trades_xyz"}}`)
	c.until(`"message":"Bad subscription string."`)
	c.send(`{"event":"bts:subscribe","data":{"channel":"live_trades_btcusd"}}`)
	c.until(`{"event":"bts:subscription_succeeded","channel":"live_trades_btcusd","data":{}}`)
	if got := c.until(`"event":"trade"`); got != `{"data":{"id":1000,"timestamp":"1709528767","amount":0.12060306,"amount_str":"0.12060306","price":42219.9,"price_str":"42219.9","type":0,"microtimestamp":"1709528767123456","buy_order_id":1436049393856512,"sell_order_id":1436049381761024},"channel":"live_trades_btcusd","event":"trade"}` {
		t.Errorf("trade %s", got)
	}
	c.until(`bts:request_reconnect`)
	if reason := c.closedFor(); reason != "server restart" {
		t.Errorf("closed for %q", reason)
	}
}
