package binancesim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// epoch fixes the virtual clock of manual tests.
var epoch = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// manual starts a Sim driven by Advance, with the incoming-message limit
// out of the way of tests that send many requests.
func manual(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Manual = true
	if opts.Epoch.IsZero() {
		opts.Epoch = epoch
	}
	if opts.MaxIncoming == 0 {
		opts.MaxIncoming = 1000
	}
	return Start(t, opts)
}

// client is a test WebSocket client.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

// read returns the next text frame, failing the test after 5 s.
func (c *client) read() []byte {
	c.t.Helper()
	b, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return b
}

func (c *client) next() ([]byte, error) {
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ws.ReadMessage()
	return b, err
}

func (c *client) write(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// request sends a request and returns the next frame that is not market
// data (the answer).
func (c *client) request(method string, params ...any) []byte {
	c.t.Helper()
	c.id++
	p, _ := json.Marshal(params)
	if params == nil {
		p = []byte("[]")
	}
	c.write(fmt.Sprintf(`{"method":%q,"params":%s,"id":%d}`, method, p, c.id))
	for {
		b := c.read()
		if isControl(b) {
			return b
		}
	}
}

func isControl(b []byte) bool {
	return bytes.HasPrefix(b, []byte(`{"result"`)) || bytes.HasPrefix(b, []byte(`{"error"`)) ||
		bytes.HasPrefix(b, []byte(`{"id"`))
}

// drain returns every frame queued so far: it sends LIST_SUBSCRIPTIONS and
// reads up to its answer, which the server queues behind them.
func (c *client) drain() [][]byte {
	c.t.Helper()
	c.id++
	id := c.id
	c.write(fmt.Sprintf(`{"method":"LIST_SUBSCRIPTIONS","id":%d}`, id))
	var out [][]byte
	for {
		b := c.read()
		if isControl(b) {
			var r struct{ ID int }
			if json.Unmarshal(b, &r) == nil && r.ID == id {
				return out
			}
		}
		out = append(out, b)
	}
}

// closeErr reads until the connection ends and returns the error.
func (c *client) closeErr() error {
	c.t.Helper()
	for range 1_000_000 {
		if _, err := c.next(); err != nil {
			return err
		}
	}
	c.t.Fatal("connection did not end")
	return nil
}

// closeCode is the close code a client saw. An abrupt close (no close
// frame) is 1006 whether the client read EOF or, having written after the
// server closed the socket, a connection reset.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return websocket.CloseAbnormalClosure
	}
	return 0
}

// envelope splits a combined-stream frame.
type envelope struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

func unwrap(t *testing.T, b []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil || e.Stream == "" || len(e.Data) == 0 {
		t.Fatalf("not a combined frame: %s", b)
	}
	return e
}

// shape is a JSON value's key layout: keys in order, nested objects in
// braces, an array as its first element's shape.
func shape(t *testing.T, raw []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var sb strings.Builder
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			sb.WriteByte('{')
			for i := 0; dec.More(); i++ {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(k.(string))
				sb.WriteByte(':')
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			sb.WriteByte('}')
			return err
		case json.Delim('['):
			sb.WriteByte('[')
			first := true
			for dec.More() {
				if first {
					var elem json.RawMessage
					if err := dec.Decode(&elem); err != nil {
						return err
					}
					sb.WriteString(typeShape(t, elem))
					first = false
					continue
				}
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			sb.WriteByte(']')
			return err
		}
		switch tok.(type) {
		case string:
			sb.WriteString("s")
		case json.Number:
			sb.WriteString("n")
		case bool:
			sb.WriteString("b")
		default:
			sb.WriteString("null")
		}
		return nil
	}
	if err := walk(); err != nil {
		t.Fatalf("shape of %s: %v", raw, err)
	}
	return sb.String()
}

// typeShape is an array element's shape; price levels count as nothing,
// so that an empty side matches a full one.
func typeShape(t *testing.T, elem json.RawMessage) string {
	if len(elem) > 0 && elem[0] == '{' {
		return shape(t, elem)
	}
	return ""
}

// templates returns the real frames the generated ones must match in
// shape, by "<market>/<event>" (testdata/templates.jsonl, copied from
// shared/data/binance).
func templates(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/templates.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct{ Kind, Frame string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out[l.Kind] = []byte(l.Frame)
	}
	return out
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func marketsAll() []market.Market {
	return []market.Market{market.Spot, market.USDM, market.COINM}
}

// sharedDir is the project's shared Binance data, beside the clone.
const sharedDir = "../../../../shared/data/binance"

func websocketDial(url string) (*websocket.Conn, *http.Response, error) {
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if ws != nil {
		ws.Close()
	}
	return ws, resp, err
}
