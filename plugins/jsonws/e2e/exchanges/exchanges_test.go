package exchanges

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unit makes each documented second 10ms.
const unit = 10 * time.Millisecond

// wait bounds every read: a deadlock guard, not a timing assertion.
const wait = 10 * time.Second

var t0 = time.Date(2024, 3, 4, 5, 6, 7, 123456000, time.UTC)

// client is a raw WebSocket client of a fake.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

type fake interface {
	http.Handler
	Close()
	Violations() []string
	Count(kind string) int
}

// dial starts srv (a fake) on loopback and connects to it.
func dial(t *testing.T, srv fake) *client {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// next reads the next message, gunzipping binary frames; "" once the
// server closed the connection, and the close reason then.
func (c *client) next() (msg, closed string) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(wait))
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		if ce, ok := err.(*websocket.CloseError); ok {
			return "", ce.Text
		}
		c.t.Fatalf("read: %v", err)
	}
	if typ == websocket.BinaryMessage {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			c.t.Fatalf("binary frame not gzip: %v", err)
		}
		b, _ = io.ReadAll(zr)
	}
	return string(b), ""
}

// until reads until a message containing want; it fails if the
// connection closes first.
func (c *client) until(want string) string {
	c.t.Helper()
	for {
		msg, closed := c.next()
		if closed != "" || msg == "" && closed == "" {
			c.t.Fatalf("closed (%q) before a message with %s", closed, want)
		}
		if strings.Contains(msg, want) {
			return msg
		}
	}
}

// closedFor reads until the server closes, answering nothing, and
// returns the close reason.
func (c *client) closedFor() string {
	c.t.Helper()
	for {
		msg, closed := c.next()
		if msg == "" {
			return closed
		}
	}
}

func trades(symbols ...string) []Trade {
	var out []Trade
	for i, s := range symbols {
		for j := range 3 {
			side := "buy"
			if j == 1 {
				side = "sell"
			}
			out = append(out, Trade{Symbol: s, ID: string(rune('1'+i)) + "00" + string(rune('0'+j)), Price: "42219.9", Qty: "0.12060306", Side: side,
				Time: t0.Add(time.Duration(i*3+j) * time.Millisecond)})
		}
	}
	return out
}
