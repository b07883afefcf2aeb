package jsonws

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// Huobi: gzipped binary pings whose number must come back unchanged.
// The reply takes it from the ping, as a number, digits intact (even past
// what a float holds); a ping without it is not answered and is counted.
func TestAnswerEchoesThePing(t *testing.T) {
	pongs := make(chan string, 4)
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		for _, ping := range []string{`{"ping":1492420473027}`, `{"ping":137005445109359286410323766}`, `{"ping":"x","id":7}`} {
			c.WriteMessage(websocket.BinaryMessage, compress(t, "gzip", []byte(ping)))
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			pongs <- string(b)
		}
		c.WriteMessage(websocket.BinaryMessage, compress(t, "gzip", []byte(`{"ping":null}`)))
		c.WriteMessage(websocket.BinaryMessage, compress(t, "gzip", []byte(`{"type":"trade","s":"ABC","p":1}`)))
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
answer:
  - match: [{path: ping, exists: true}, {path: id, exists: false}]
    reply: {pong: "${msg:ping}"}
  - match: [{path: ping, exists: true}]
    reply: "pong ${msg:ping} for ${msg:id}"
`+tradeRules)
	for _, want := range []string{`{"pong":1492420473027}`, `{"pong":137005445109359286410323766}`, `pong x for 7`} {
		select {
		case got := <-pongs:
			if got != want {
				t.Errorf("reply %s, want %s", got, want)
			}
		case <-time.After(wait):
			t.Fatalf("no reply %s", want)
		}
	}
	r.rec.data(t, "trades")
	st := &r.src.stats
	// {"ping":null}: the value exists, so the first answer takes it and
	// sends null back; nothing is refused. A missing value is refused:
	// see TestAnswerMissingValue.
	if st.Answered.Load() != 4 || st.AnswerErrors.Load() != 0 || st.Unmatched.Load() != 0 || st.NotJSON.Load() != 0 {
		t.Errorf("answered %d, errors %d, unmatched %d, not JSON %d", st.Answered.Load(), st.AnswerErrors.Load(), st.Unmatched.Load(), st.NotJSON.Load())
	}
}

// A reply that takes a value the ping lacks is not sent: it is counted
// and logged, and the connection carries on.
func TestAnswerMissingValue(t *testing.T) {
	replies := make(chan string, 4)
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`))
		c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","ts":5}`))
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"ABC","p":1}`))
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			replies <- string(b)
		}
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
answer: [{match: [{path: op, equals: ping}], reply: {op: pong, ts: "${msg:ts}"}}]
`+tradeRules)
	r.rec.data(t, "trades")
	if got := <-replies; got != `{"op":"pong","ts":5}` {
		t.Errorf("reply %s", got)
	}
	if n := r.src.stats.AnswerErrors.Load(); n != 1 {
		t.Errorf("answer errors %d, want 1", n)
	}
	if d := r.rec.discards()["answer_errors"]; d != 1 {
		t.Errorf("discarded answer_errors %d, want 1", d)
	}
	if !strings.Contains(r.logs.String(), `${msg:ts}: missing in the message answered`) {
		t.Errorf("no log line for the unanswerable ping:\n%s", r.logs.String())
	}
}

// OKX: our heartbeat is the text "ping", the server's reply the text
// "pong". Replies are counted as such, not as not_json; a server that
// stops replying costs the connection after heartbeat.timeout.
func TestHeartbeatReplies(t *testing.T) {
	var conns atomic.Int32
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		conns.Add(1)
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"trade","s":"C%d","p":1}`, n)))
		for replies := 0; ; replies++ {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			// The first connection replies to three pings, then stops.
			if string(b) == "ping" && (n > 1 || replies < 3) {
				c.WriteMessage(websocket.TextMessage, []byte("pong"))
			}
		}
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
heartbeat: {every: 20ms, send: ping, reply: {text: pong}, timeout: 200ms}
`+tradeRules)
	r.rec.data(t, "trades")
	if msg, _ := r.rec.event(t, sdk.EventDisconnect).Field("message"); msg.Str() != "no reply to a heartbeat within 200ms" {
		t.Errorf("disconnect message %q", msg.Str())
	}
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "C2" {
		t.Errorf("point after the reconnect from %s", s)
	}
	st := &r.src.stats
	if st.Replies.Load() < 3 || st.NotJSON.Load() != 0 || st.Unmatched.Load() != 0 {
		t.Errorf("replies %d, not JSON %d, unmatched %d", st.Replies.Load(), st.NotJSON.Load(), st.Unmatched.Load())
	}
	if _, ok := r.rec.discards()["not_json"]; ok {
		t.Errorf("a pong was discarded as not JSON: %v", r.rec.discards())
	}
}

// krakenAcks answers one subscribe for several pairs with one ack per
// pair, as Kraken's v2 API does; bad pairs get an error ack.
func krakenAcks(t *testing.T, bad string) *wsServer {
	return newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		var sub struct {
			Method string
			Params struct{ Symbol []string }
		}
		if err := c.ReadJSON(&sub); err != nil {
			return
		}
		for _, s := range sub.Params.Symbol {
			if s == bad {
				c.WriteJSON(map[string]any{"method": "subscribe", "success": false, "error": "Currency pair not supported " + s, "symbol": s})
				continue
			}
			c.WriteJSON(map[string]any{"method": "subscribe", "success": true, "result": map[string]any{"channel": "trade", "symbol": s}})
		}
		c.WriteJSON(map[string]any{"type": "trade", "s": "ABC", "p": 1})
		drain(c)
	})
}

const krakenOnOpen = `
on_open:
  - send: {method: subscribe, params: {channel: trade, symbol: [BTC/USD, ETH/USD, XYZ/USD]}}
    expect: {path: method, equals: subscribe, count: 3, timeout: 2s, fail: [{path: success, equals: false}]}
`

// An error on the last of several pairs acknowledged one by one is
// caught: expect waits for count acks, and a fail condition on any of
// them stops the feed.
func TestExpectCountCatchesALaterFailure(t *testing.T) {
	t.Run("all acknowledged", func(t *testing.T) {
		srv := krakenAcks(t, "")
		r := start(t, "url: "+srv.wsURL("/")+krakenOnOpen+tradeRules)
		r.rec.event(t, sdk.EventConnect)
		r.rec.data(t, "trades")
		if n, u := r.src.stats.Acks.Load(), r.src.stats.Unmatched.Load(); n != 3 || u != 0 {
			t.Errorf("acks %d, unmatched %d; want 3 and 0", n, u)
		}
	})
	t.Run("the third pair refused", func(t *testing.T) {
		srv := krakenAcks(t, "XYZ/USD")
		r := start(t, "url: "+srv.wsURL("/")+krakenOnOpen+tradeRules)
		err := r.result(t)
		var perm *sdk.PermanentError
		if !errors.As(err, &perm) || !strings.Contains(err.Error(), "Currency pair not supported XYZ/USD") {
			t.Fatalf("Run: %v; want a permanent error naming the pair", err)
		}
	})
	t.Run("an ack missing", func(t *testing.T) {
		srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
			c.ReadMessage()
			c.WriteJSON(map[string]any{"method": "subscribe", "success": true})
			drain(c)
		})
		r := start(t, "url: "+srv.wsURL("/")+"\nreconnect: {budget: 1}\n"+strings.Replace(krakenOnOpen, "timeout: 2s", "timeout: 100ms", 1)+tradeRules)
		if err := r.result(t); err == nil || !strings.Contains(err.Error(), "on_open[0]: 1 of 3 replies satisfying expect within 100ms") {
			t.Fatalf("Run: %v", err)
		}
	})
}

// Bitfinex: the subscribe ack on_open waits for is also what a rule
// remembers the channel id from; data names only the id. Ids hold for
// one connection: the next connection starts with an empty table, and an
// id it has not announced maps to nothing.
func TestAckRememberedPerConnection(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.ReadMessage()
		chanID := 100 + n
		if n == 2 {
			// Data on the old connection's id before the ack.
			c.WriteMessage(websocket.TextMessage, []byte(`[101,"te",[9,1574694478808,1,1]]`))
		}
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"event":"subscribed","channel":"trades","chanId":%d,"symbol":"tSYM%d"}`, chanID, n)))
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`[%d,"te",[%d,1574694478808,0.5,7245.3]]`, chanID, n)))
		if n == 1 {
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "restart"))
		}
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
on_open:
  - send: {event: subscribe, channel: trades, symbol: tBTCUSD}
    expect: {path: event, equals: subscribed}
rules:
  - name: subscribed
    match: [{path: event, equals: subscribed}]
    remember: [{table: channels, key: chanId, value: symbol}]
  - name: trade
    match: [{path: "1", equals: te}]
    measurement: trades
    tags: {symbol: {path: "0", lookup: channels}}
    fields: {id: {path: "2.0", type: int}}
`)
	for _, want := range []string{"tSYM1", "tSYM2"} {
		if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != want {
			t.Errorf("point for %s, want %s", s, want)
		}
	}
	// The early frame on connection 2 named id 101, connection 1's.
	if n := r.src.stats.MapErrors.Load(); n != 1 {
		t.Errorf("map errors %d, want 1 (the old id on the new connection)", n)
	}
	if n := r.src.stats.Acks.Load() + r.src.stats.Remembered.Load(); n != 2 {
		t.Errorf("acks+remembered %d, want 2", n)
	}
	if !strings.Contains(r.logs.String(), "lookup channels: number 101 is not remembered on this connection") {
		t.Errorf("log lacks the lookup error:\n%s", r.logs.String())
	}
}

// ${msg:..} belongs to answers: anywhere else it is refused at configure
// time with the reason.
func TestMsgRefsOnlyInAnswers(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"on_open: [{send: {pong: '${msg:ping}'}}]", "on_open[0].send: reference at byte 0: ${msg:PATH} takes a value from the message answered; only answer[].reply may use it"},
		{"heartbeat: {every: 1s, send: '${msg:x}'}", "heartbeat.send: reference at byte 0: ${msg:PATH}"},
		{"answer: [{text: ping, reply: 'pong ${msg:x}'}]", "answer[0].reply: a text ping is not JSON: only an answer with match can use ${msg:PATH}"},
		{"answer: [{match: [{path: p, exists: true}], reply: {a: '${msg:a..b}'}}]", "answer[0].reply: reference at byte 0: empty path component"},
		{"answer: [{match: [{path: p, exists: true}], reply: {a: '${msg:a'}}]", "answer[0].reply: reference at byte 0: ${msg: without a closing }"},
		{"heartbeat: {every: 1s, send: ping, timeout: 1s}", "heartbeat.timeout: needs heartbeat.reply"},
		{"heartbeat: {every: 1s, send: ping, reply: {}}", "heartbeat.reply: set exactly one of text"},
		{"on_open: [{send: x, expect: {path: a, exists: true, count: -1}}]", "on_open[0].expect.count: must be between 1 and 10000, got -1"},
		{"on_open: [{send: x, expect: {path: a, in: nowhere}}]", `on_open[0].expect.in: no rule remembers into table "nowhere"`},
	} {
		_, err := configure(t, "url: ws://x\n"+tc.doc+"\n"+minimalRules, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
	}
	// $$ keeps a literal ${msg:..} anywhere.
	if _, err := configure(t, "url: ws://x\non_open: [{send: 'literally $${msg:x}'}]\n"+minimalRules, true); err != nil {
		t.Errorf("escaped reference: %v", err)
	}
}

// A server that sends its last messages and closes at once: every
// message sent before the close is mapped, whichever the session loop
// sees first.
func TestFramesBeforeCloseAreKept(t *testing.T) {
	const n = 200
	srv := newWSServer(t, func(conn int, c *websocket.Conn, r *http.Request) {
		if conn > 1 {
			drain(c)
			return
		}
		for i := range n {
			c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"trade","s":"S%d","p":1}`, i))
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"))
	})
	r := start(t, "url: "+srv.wsURL("/")+"\n"+tradeRules)
	r.rec.event(t, sdk.EventReconnect)
	if got := r.src.stats.Points.Load(); got != n {
		t.Errorf("%d points before the reconnect, want %d", got, n)
	}
}

// Bitstamp asks clients to reconnect before maintenance: a message
// matching reconnect.when ends the connection at once (the server would
// close it seconds later), and the source reconnects.
func TestServerAskedToReconnect(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"trade","s":"C%d","p":1}`, n)))
		if n == 1 {
			c.WriteMessage(websocket.TextMessage, []byte(`{"event":"bts:request_reconnect","channel":"","data":""}`))
		}
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
reconnect: {when: [{path: event, equals: "bts:request_reconnect"}]}
`+tradeRules)
	r.rec.data(t, "trades")
	if msg, _ := r.rec.event(t, sdk.EventDisconnect).Field("message"); !strings.HasPrefix(msg.Str(), "the server asked to reconnect: {\"event\":\"bts:request_reconnect\"") {
		t.Errorf("disconnect message %q", msg.Str())
	}
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "C2" {
		t.Errorf("point after the reconnect from %s", s)
	}
	if u := r.src.stats.Unmatched.Load(); u != 0 {
		t.Errorf("unmatched %d", u)
	}
}

// A server that acknowledges, publishes and closes at once (as Kraken
// acknowledges one symbol, publishes it, then the next): the acks complete
// on_open (the connection counts as opened) and every message is mapped,
// whichever the session sees first, the frames or the close.
func TestAcksBeforeCloseOpenTheConnection(t *testing.T) {
	const n = 10
	for round := range 10 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			srv := newWSServer(t, func(conn int, c *websocket.Conn, r *http.Request) {
				c.ReadMessage()
				for sym := range 2 {
					c.WriteMessage(websocket.TextMessage, []byte(`{"method":"subscribe","success":true}`))
					if conn > 1 {
						continue
					}
					for i := range n / 2 {
						c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"trade","s":"S%d-%d","p":1}`, sym, i))
					}
				}
				if conn > 1 {
					drain(c)
					return
				}
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"))
			})
			r := start(t, `
url: `+srv.wsURL("/")+`
on_open:
  - send: subscribe
    expect: {path: method, equals: subscribe, count: 2}
`+tradeRules)
			r.rec.event(t, sdk.EventConnect)
			r.rec.event(t, sdk.EventReconnect)
			if got := r.src.stats.Points.Load(); got != n {
				t.Errorf("%d points before the reconnect, want %d", got, n)
			}
		})
	}
}
