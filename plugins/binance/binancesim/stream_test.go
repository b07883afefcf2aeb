package binancesim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// eventName names a data payload the way templates.jsonl does.
func eventName(t *testing.T, stream string, data []byte) string {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(data, &o); err != nil {
		return "array"
	}
	switch {
	case strings.Contains(stream, "@depth") && !strings.HasSuffix(stream, "@depth") && !strings.Contains(stream, "@depth@"):
		return "partialDepth"
	case o["e"] != nil:
		return o["e"].(string)
	case o["lastUpdateId"] != nil:
		return "partialDepth"
	}
	return "bookTicker"
}

// TestFrameShapes subscribes to every stream kind of every market and
// checks each generated frame's keys, their order and their JSON types
// against a real capture, and that the binance parser accepts it.
func TestFrameShapes(t *testing.T) {
	tpl := templates(t)
	for _, m := range marketsAll() {
		t.Run(m.String(), func(t *testing.T) {
			srv := manual(t, Options{Markets: []market.Market{m}, TradeRate: 200})
			sym := strings.ToLower(srv.Symbols(m)[0])
			streams := []string{"trade", "aggTrade", "bookTicker", "ticker", "miniTicker", "depth@100ms", "depth5", "depth20@100ms", "kline_1m"}
			if m != market.Spot {
				streams = append(streams, "markPrice", "markPrice@1s", "forceOrder", "depth@500ms")
			}
			var names []string
			for _, s := range streams {
				names = append(names, sym+"@"+s)
			}
			c := dial(t, srv.WSURL(m)+"/stream?streams="+strings.Join(names, "/"))
			srv.Advance(7 * time.Second)
			seen, shaped := map[string]int{}, map[string]int{}
			for _, f := range c.drain() {
				env := unwrap(t, f)
				if _, _, err := wire.ParseFrame(m, f, time.Now(), nil); err != nil {
					t.Errorf("%s: parser rejects %s: %v", env.Stream, f, err)
				}
				if shaped[env.Stream] > 3 {
					continue // the shape of a stream does not change: spare the race detector
				}
				shaped[env.Stream]++
				kind := eventName(t, env.Stream, env.Data)
				seen[kind]++
				want, ok := tpl[m.String()+"/"+kind]
				if !ok {
					continue // no capture of this event on this market
				}
				if got, exp := shape(t, env.Data), shape(t, want); got != exp {
					t.Errorf("%s %s shape:\n got %s\nwant %s", m, kind, got, exp)
				}
			}
			for _, k := range []string{"trade", "aggTrade", "bookTicker", "depthUpdate", "partialDepth", "kline", "24hrTicker", "24hrMiniTicker"} {
				if seen[k] == 0 {
					t.Errorf("no %s frame in 7 s", k)
				}
			}
			if m != market.Spot && seen["markPriceUpdate"] == 0 {
				t.Error("no markPriceUpdate frame")
			}
		})
	}
}

// TestRawAndCombined checks the two endpoints: /ws/<stream> sends bare
// payloads, /stream?streams= wraps each in {"stream","data"} with the
// stream name as subscribed.
func TestRawAndCombined(t *testing.T) {
	srv := manual(t, Options{Markets: []market.Market{market.Spot}, TradeRate: 200})
	raw := dial(t, srv.WSURL(market.Spot)+"/ws/btcusdt@aggTrade")
	comb := dial(t, srv.WSURL(market.Spot)+"/stream?streams=btcusdt@aggTrade/ethusdt@depth")
	srv.Advance(3 * time.Second)
	rf, cf := raw.drain(), comb.drain()
	if len(rf) == 0 || len(cf) == 0 {
		t.Fatalf("frames: raw %d, combined %d", len(rf), len(cf))
	}
	for _, f := range rf {
		if !strings.HasPrefix(string(f), `{"e":"aggTrade"`) {
			t.Fatalf("raw frame %s", f)
		}
	}
	streams := map[string]int{}
	aggs := 0
	for _, f := range cf {
		env := unwrap(t, f)
		streams[env.Stream]++
		if env.Stream == "btcusdt@aggTrade" {
			if string(env.Data) != string(rf[aggs]) {
				t.Fatalf("combined data %s != raw frame %s", env.Data, rf[aggs])
			}
			aggs++
		}
	}
	if aggs != len(rf) || streams["ethusdt@depth"] == 0 || len(streams) != 2 {
		t.Fatalf("combined streams %v, raw aggTrades %d", streams, len(rf))
	}
	// SET_PROPERTY combined wraps a raw connection's frames from then on.
	if got := raw.request("SET_PROPERTY", "combined", true); string(got) != `{"result":null,"id":2}` {
		t.Fatalf("SET_PROPERTY: %s", got)
	}
	if got := raw.request("GET_PROPERTY", "combined"); string(got) != `{"result":true,"id":3}` {
		t.Fatalf("GET_PROPERTY: %s", got)
	}
	srv.Advance(time.Second)
	for _, f := range raw.drain() {
		unwrap(t, f)
	}
}

// TestSubscribeAcksAndErrors checks the request answers byte for byte
// against control_responses.jsonl.
func TestSubscribeAcksAndErrors(t *testing.T) {
	srv := manual(t, Options{})
	c := dial(t, srv.WSURL(market.Spot)+"/ws")
	for _, tc := range []struct{ send, want string }{
		{`{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}`, `{"result":null,"id":1}`},
		{`{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":2}`, `{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}`},
		{`{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":3}`, `{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":3}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":3}`, `{"result":["btcusdt@aggTrade","btcusdt@depth"],"id":3}`},
		{`{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312}`, `{"result":null,"id":312}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":4}`, `{"result":["btcusdt@aggTrade"],"id":4}`},
		{`{"method":"SET_PROPERTY","params":["combined",true],"id":5}`, `{"result":null,"id":5}`},
		{`{"method":"GET_PROPERTY","params":["combined"],"id":2}`, `{"result":true,"id":2}`},
		{`hello`, `{"error":{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}}`},
	} {
		c.write(tc.send)
		var got []byte
		for got = c.read(); !isControl(got); got = c.read() {
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.send, got, tc.want)
		}
	}
	// COIN-M answers with the id first.
	d := dial(t, srv.WSURL(market.COINM)+"/ws")
	if got := d.request("SUBSCRIBE", "btcusd_perp@aggTrade"); string(got) != `{"id":1,"result":null}` {
		t.Errorf("coinm ack %s", got)
	}
	// Futures close the connection after invalid JSON.
	u := dial(t, srv.WSURL(market.USDM)+"/ws")
	u.write("{")
	if got := u.read(); !strings.HasPrefix(string(got), `{"error":{"code":3,"msg":"Invalid JSON:`) {
		t.Errorf("usdm invalid JSON answer %s", got)
	}
	if err := u.closeErr(); closeCode(err) != 1008 {
		t.Errorf("usdm after invalid JSON: %v, want close 1008", err)
	}
	if st := srv.Stats(); st.Requests < 10 {
		t.Errorf("Stats.Requests = %d", st.Requests)
	}
}

// TestIncomingLimit sends more than 5 messages in a second on spot: the
// server closes the connection.
func TestIncomingLimit(t *testing.T) {
	srv := Start(t, Options{Manual: true, Epoch: epoch}) // Binance's limits
	c := dial(t, srv.WSURL(market.Spot)+"/ws")
	for i := range 7 {
		if err := c.ws.WriteMessage(1, fmt.Appendf(nil, `{"method":"LIST_SUBSCRIPTIONS","id":%d}`, i)); err != nil {
			break // already closed
		}
	}
	if err := c.closeErr(); closeCode(err) != 1008 {
		t.Fatalf("got %v, want close 1008", err)
	}
	if st := srv.Stats(); st.RateLimited != 1 {
		t.Fatalf("Stats.RateLimited = %d", st.RateLimited)
	}
}

// TestStreamLimit fills a connection to 1024 streams: one more is refused
// with code 4; a URL naming 1025 is refused at the handshake.
func TestStreamLimit(t *testing.T) {
	srv := manual(t, Options{})
	var names []string
	for i := range 1025 {
		names = append(names, fmt.Sprintf("sym%04dusdt@trade", i))
	}
	c := dial(t, srv.WSURL(market.Spot)+"/ws")
	params := make([]any, 1024)
	for i := range params {
		params[i] = names[i]
	}
	if got := c.request("SUBSCRIBE", params...); string(got) != `{"result":null,"id":1}` {
		t.Fatalf("1024 streams: %s", got)
	}
	if got := c.request("SUBSCRIBE", names[1024]); string(got) != `{"error":{"code":4,"msg":"Too many subscriptions"},"id":2}` {
		t.Fatalf("1025th stream: %s", got)
	}
	if got := c.request("SUBSCRIBE", names[0]); string(got) != `{"result":null,"id":3}` {
		t.Fatalf("re-subscribing a held stream: %s", got)
	}
	_, resp, err := websocketDial(srv.WSURL(market.Spot) + "/stream?streams=" + strings.Join(names, "/"))
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("1025 streams in the URL: err %v", err)
	}
	// USD-M closes the connection after refusing.
	u := dial(t, srv.WSURL(market.USDM)+"/ws")
	u.request("SUBSCRIBE", params...)
	if got := u.request("SUBSCRIBE", "x@trade"); !strings.Contains(string(got), `"code":4`) {
		t.Fatalf("usdm 1025th stream: %s", got)
	}
	if err := u.closeErr(); closeCode(err) != 1008 {
		t.Fatalf("usdm after too many: %v", err)
	}
}
