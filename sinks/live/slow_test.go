package live

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/gorilla/websocket"
)

// slowClient connects over a raw WebSocket with a tiny receive buffer,
// subscribes, and then reads nothing: a client that cannot keep up.
func slowClient(t *testing.T, s *Sink, tok, channel string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}).DialContext}
	conn, _, err := d.Dial(wsURL(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for i, cmd := range []string{
		fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok),
		fmt.Sprintf(`{"id":2,"subscribe":{"channel":%q}}`, channel),
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := conn.ReadMessage(); err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		} else if !containsAll(string(msg), fmt.Sprintf(`"id":%d`, i+1)) || containsAll(string(msg), `"error"`) {
			t.Fatalf("reply %d: %s", i+1, msg)
		}
	}
	return conn
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A client that reads nothing is disconnected once its queue is full, and
// counted; Write never waits for it, and a fast client on the same
// channel gets every point in order.
func TestSlowClientDisconnected(t *testing.T) {
	s := openSink(t, func(c *Config) { c.ClientQueueBytes = 64 << 10 })
	const ch = "trades:binance:spot:BTCUSDT"
	tok := token(t, testSecret, "ivan", time.Now().Add(time.Hour), "*")
	slowClient(t, s, tok, ch)

	fast := newClient(t, s, tok)
	fast.subscribe(t, ch, centrifuge.SubscriptionConfig{})
	fast.Connect()
	fast.waitFor(t, "subscribed", func() bool { return fast.hasEvent("subscribed: " + ch) })

	// 20 000 trades at about 20 000/s: far more than the slow client's
	// socket and queue hold, at a pace a client that reads keeps up with.
	const n = 20_000
	for from := int64(1); from <= n; from += 100 {
		if err := s.Write(context.Background(), trades("BTCUSDT", from, from+99)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fast.waitFor(t, "every trade", func() bool { return len(fast.pubs[ch]) >= n })
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := statValues(s.Stats(), "live_disconnects_total")
		if d["slow"]+d["write_error"] >= 1 {
			t.Logf("disconnects: %v", d)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow client was not disconnected: disconnects %v, clients %v", d, s.Stats()[0].Value)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fast.mu.Lock()
	defer fast.mu.Unlock()
	checkSequence(t, tradeIDs(t, fast.pubs[ch]), 1, n)
	if fast.hasEvent("disconnected") || fast.hasEvent("reconnecting") {
		t.Errorf("the fast client was disconnected: %v", fast.events)
	}
}
