package jsonws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// tradeRules maps {"type":"trade","s":..,"p":..} messages.
const tradeRules = `
rules:
  - name: trade
    match: [{path: type, equals: trade}]
    measurement: trades
    tags: {symbol: s}
    fields: {price: {path: p, type: float}}
`

func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	_, b, err := c.ReadMessage()
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("client sent non-JSON %q", b)
	}
	return m
}

func TestLoginThenSubscribe(t *testing.T) {
	t.Setenv("JSONWS_TEST_TOKEN", "header-secret-1234")
	keyFile := writeFile(t, "key", "login-secret-5678\n")
	var (
		mu   sync.Mutex
		seen []string // what the server received, in order
		auth string
	)
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		login := readJSON(t, c)
		mu.Lock()
		seen = append(seen, fmt.Sprint(login))
		mu.Unlock()
		// Unrelated chatter first: it must not satisfy the expect.
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome"}`))
		if login["key"] != "login-secret-5678" {
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","status":"denied"}`))
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","status":"ok"}`))
		sub := readJSON(t, c)
		mu.Lock()
		seen = append(seen, fmt.Sprint(sub))
		mu.Unlock()
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"ABC","p":"1.5"}`))
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/ws")+`
headers: {Authorization: "Bearer ${env:JSONWS_TEST_TOKEN}"}
on_open:
  - send: {type: auth, key: "${file:`+keyFile+`}"}
    expect: {path: type, equals: auth, fail: [{path: status, equals: denied}]}
  - send: {type: subscribe, data: {channel: trades}}
`+tradeRules)
	r.rec.event(t, sdk.EventConnect)
	p := r.rec.data(t, "trades")
	if v, _ := p.Field("price"); v.Float() != 1.5 {
		t.Errorf("price %v", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth != "Bearer header-secret-1234" {
		t.Errorf("Authorization header %q", auth)
	}
	want := []string{"map[key:login-secret-5678 type:auth]", "map[data:map[channel:trades] type:subscribe]"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("server received %v, want %v", seen, want)
	}
	for _, secret := range []string{"header-secret-1234", "login-secret-5678"} {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("a secret reached the log:\n%s", r.logs.String())
		}
	}
}

// A reply that never comes: the subscribe behind the expect is never
// sent, and the connection is replaced.
func TestExpectTimeoutWithholdsNextMessage(t *testing.T) {
	received := make(chan []string, 4)
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		var got []string
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				break
			}
			got = append(got, string(b))
		}
		received <- got
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
reconnect: {budget: 1}
on_open:
  - {send: login, expect: {path: ok, exists: true, timeout: 50ms}}
  - {send: subscribe}
`+tradeRules)
	err := r.result(t)
	if err == nil || !strings.Contains(err.Error(), "on_open[0]: no reply satisfying expect within 50ms") {
		t.Fatalf("Run: %v", err)
	}
	for range 2 {
		if got := <-received; fmt.Sprint(got) != "[login]" {
			t.Errorf("server received %q; the subscribe must wait for the expected reply", got)
		}
	}
}

func TestExpectFailIsPermanent(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.ReadMessage()
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","msg":"invalid api key"}`))
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
on_open:
  - {send: {type: auth}, expect: {path: type, equals: authenticated, fail: [{path: type, equals: error}]}}
`+tradeRules)
	err := r.result(t)
	var perm *sdk.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "invalid api key") {
		t.Fatalf("Run: %v; want a permanent error with the server's message", err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections; a permanent failure must not be retried", n)
	}
	if msg, _ := r.rec.event(t, sdk.EventFailed).Field("message"); !strings.Contains(msg.Str(), "invalid api key") {
		t.Errorf("failed event message %q", msg.Str())
	}
}

func TestServerPingsAnsweredAndHeartbeatsSent(t *testing.T) {
	replies := make(chan string, 16)
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","ts":1}`))
		c.WriteMessage(websocket.TextMessage, []byte(`ping`))
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"ABC","p":2}`))
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
heartbeat: {every: 10ms, send: {op: hb}}
answer:
  - {match: [{path: op, equals: ping}], reply: {op: pong}}
  - {text: ping, reply: pong}
`+tradeRules)
	r.rec.data(t, "trades")
	want := map[string]bool{`{"op":"pong"}`: true, `pong`: true, `{"op":"hb"}`: true}
	for len(want) > 0 {
		select {
		case got := <-replies:
			delete(want, got)
		case <-time.After(wait):
			t.Fatalf("the server never received %v", want)
		}
	}
	st := &r.src.stats
	if st.Answered.Load() != 2 || st.Unmatched.Load() != 0 || st.NotJSON.Load() != 0 {
		t.Errorf("answered %d, unmatched %d, not JSON %d; pings must be answered, not mapped",
			st.Answered.Load(), st.Unmatched.Load(), st.NotJSON.Load())
	}
}

func TestSilentStreamReconnects(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"trade","s":"C%d","p":1}`, n)))
		// Then silence, though the connection stays up (and control
		// frames are answered).
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
stale_after: 100ms
`+tradeRules)
	r.rec.event(t, sdk.EventConnect)
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "C1" {
		t.Fatalf("first point from %s", s)
	}
	if msg, _ := r.rec.event(t, sdk.EventStale).Field("message"); !strings.Contains(msg.Str(), "no data for 100ms") {
		t.Errorf("stale event message %q", msg.Str())
	}
	ev := r.rec.event(t, sdk.EventReconnect)
	if feed, _ := ev.Tag("feed"); feed != "test" {
		t.Errorf("feed tag %q", feed)
	}
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "C2" {
		t.Fatalf("point after the reconnect from %s", s)
	}
}

func TestMissingPongReconnects(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		if n == 1 {
			// Pings are read but never answered.
			c.SetPingHandler(func(string) error { return nil })
			drain(c)
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"ABC","p":1}`))
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
ping: {interval: 20ms, timeout: 50ms}
`+tradeRules)
	if msg, _ := r.rec.event(t, sdk.EventDisconnect).Field("message"); msg.Str() != "no pong within 50ms of a ping" {
		t.Errorf("disconnect message %q", msg.Str())
	}
	r.rec.event(t, sdk.EventReconnect)
	r.rec.data(t, "trades")
}

func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusServiceUnavailable, false},
		{http.StatusTooManyRequests, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := newWSServer(t, func(int, *websocket.Conn, *http.Request) {})
			srv.refuse = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				http.Error(w, "go away: reason "+fmt.Sprint(tc.status), tc.status)
				return true
			}
			r := start(t, "url: "+srv.wsURL("/")+"\nreconnect: {budget: 2}\n"+tradeRules)
			err := r.result(t)
			var perm *sdk.PermanentError
			if errors.As(err, &perm) != tc.permanent {
				t.Fatalf("Run: %v; permanent %v, want %v", err, errors.As(err, &perm), tc.permanent)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("handshake refused: %d", tc.status)) || !strings.Contains(err.Error(), "go away: reason") {
				t.Errorf("error %q lacks the status and the server's reason", err)
			}
			// Permanent: one attempt. Otherwise the first attempt and
			// two reconnects, then the budget is spent.
			want := int32(3)
			if tc.permanent {
				want = 1
			}
			if n := srv.conns.Load(); n != want {
				t.Errorf("%d handshakes, want %d", n, want)
			}
			if !tc.permanent && !strings.Contains(err.Error(), "reconnect budget exhausted: 2 reconnects within 10m0s") {
				t.Errorf("error %q; want the budget spent", err)
			}
		})
	}
}

func TestCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code      int
		permanent bool
	}{
		{websocket.ClosePolicyViolation, true},
		{websocket.CloseUnsupportedData, true},
		{websocket.CloseGoingAway, false},
		{websocket.CloseInternalServerErr, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(tc.code, "too many subscriptions"))
				drain(c)
			})
			r := start(t, "url: "+srv.wsURL("/")+"\nreconnect: {budget: 1}\n"+tradeRules)
			err := r.result(t)
			var perm *sdk.PermanentError
			if errors.As(err, &perm) != tc.permanent {
				t.Fatalf("Run: %v; permanent %v, want %v", err, errors.As(err, &perm), tc.permanent)
			}
			if want := fmt.Sprintf("server closed the connection: %d too many subscriptions", tc.code); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
			want := int32(2)
			if tc.permanent {
				want = 1
			}
			if n := srv.conns.Load(); n != want {
				t.Errorf("%d connections, want %d", n, want)
			}
		})
	}
}

func compress(t *testing.T, kind string, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch kind {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zlib":
		w = zlib.NewWriter(&buf)
	case "deflate":
		w, _ = flate.NewWriter(&buf, flate.BestSpeed)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestBinaryFramesDecompressed(t *testing.T) {
	for _, mode := range []string{"auto", "gzip", "deflate"} {
		t.Run(mode, func(t *testing.T) {
			kinds := map[string][]string{"auto": {"gzip", "zlib", "deflate", "plain"}, "gzip": {"gzip"}, "deflate": {"zlib", "deflate"}}[mode]
			srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
				for _, k := range kinds {
					msg := []byte(`{"type":"trade","s":"` + k + `","p":1}`)
					if k != "plain" {
						msg = compress(t, k, msg)
					}
					c.WriteMessage(websocket.BinaryMessage, msg)
				}
				drain(c)
			})
			r := start(t, "url: "+srv.wsURL("/")+"\ndecompress: "+mode+"\n"+tradeRules)
			for _, k := range kinds {
				if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != k {
					t.Errorf("got a point for %s, want %s", s, k)
				}
			}
		})
	}
}

func TestOversizeFrameDroppedConnectionKept(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		big := `{"type":"trade","s":"BIG","p":1,"pad":"` + strings.Repeat("x", 4096) + `"}`
		c.WriteMessage(websocket.TextMessage, []byte(big))
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"SMALL","p":1}`))
		drain(c)
	})
	r := start(t, "url: "+srv.wsURL("/")+"\nmax_message_bytes: 1024\n"+tradeRules)
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "SMALL" {
		t.Fatalf("first point from %s; the oversize frame must be dropped", s)
	}
	if n := r.src.stats.Oversize.Load(); n != 1 {
		t.Errorf("oversize count %d, want 1", n)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections; an oversize frame must not cost the connection", n)
	}
}

func TestCompressionBombRefused(t *testing.T) {
	// 8 MiB of JSON that gzips to a few KiB, against a 64 KiB cap.
	bomb := compress(t, "gzip", []byte(`{"type":"trade","s":"BOMB","p":1,"pad":"`+strings.Repeat("0", 8<<20)+`"}`))
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.BinaryMessage, bomb)
		c.WriteMessage(websocket.BinaryMessage, compress(t, "gzip", []byte(`{"type":"trade","s":"OK","p":1}`)))
		drain(c)
	})
	r := start(t, "url: "+srv.wsURL("/")+"\nmax_decompressed_bytes: 65536\n"+tradeRules)
	if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != "OK" {
		t.Fatalf("first point from %s; the bomb must be refused", s)
	}
	if n := r.src.stats.DecompressRefused.Load(); n != 1 {
		t.Errorf("refused count %d, want 1", n)
	}
	if len(bomb) > 65536 {
		t.Fatalf("the bomb is %d bytes compressed; it must pass max_message_bytes to test the decompressed cap", len(bomb))
	}
}

// zeros is an endless stream.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

func TestCapsStopReading(t *testing.T) {
	z := &zeros{}
	if _, err := readCapped(z, 1000); !errors.Is(err, errTooLarge) {
		t.Fatalf("endless reader: %v", err)
	}
	if z.n > 1000+64<<10 {
		t.Errorf("read %d bytes of an endless stream for a 1000-byte cap", z.n)
	}
	// A gzip member of 64 MiB: decompress stops at the cap rather than
	// inflating it all.
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	io.CopyN(w, &zeros{}, 64<<20)
	w.Close()
	out, err := decompress(buf.Bytes(), DecompressAuto, 1<<20)
	if !errors.Is(err, errTooLarge) || out != nil {
		t.Fatalf("bomb: %d bytes, %v", len(out), err)
	}
	if out, err := decompress(compress(t, "gzip", []byte("{}")), DecompressGzip, 2); err != nil || string(out) != "{}" {
		t.Errorf("content exactly at the cap: %q, %v", out, err)
	}
	if _, err := decompress([]byte("{}"), DecompressGzip, 100); err == nil || errors.Is(err, errTooLarge) {
		t.Errorf("plain JSON under gzip: %v, want a gzip error", err)
	}
}

func TestArrayFannedOut(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(`{"channel":"trades","data":[{"s":"A","p":1},{"s":"B","p":2},{"s":"C","p":3}]}`))
		drain(c)
	})
	r := start(t, `
url: `+srv.wsURL("/")+`
rules:
  - match: [{path: channel, equals: trades}]
    each: data
    measurement: trades
    tags: {symbol: s, channel: $.channel}
    fields: {price: p}
`)
	for _, want := range []string{"A", "B", "C"} {
		p := r.rec.data(t, "trades")
		if s, _ := p.Tag("symbol"); s != want {
			t.Errorf("point for %s, want %s", s, want)
		}
		if ch, _ := p.Tag("channel"); ch != "trades" {
			t.Errorf("channel tag %q", ch)
		}
	}
}

// Hostile frames between valid ones: depth bombs as text, gzip and
// permessage-deflate, and bombs inflating past the cap. Each is counted
// and dropped; the connection stays, and every valid message maps, in
// order. Without the depth limit the 16 MiB gzip bomb (within the old
// 16 MiB inflate default) overflows the stack and kills the process.
func TestHostileFramesDroppedConnectionKept(t *testing.T) {
	bomb := func(n int) []byte { return bytes.Repeat([]byte("["), n) }
	trade := func(i int) []byte { return []byte(fmt.Sprintf(`{"type":"trade","s":"T%d","p":1}`, i)) }
	// Valid JSON, and a trade as far as the rules go, but 201 deep.
	deepTrade := []byte(`{"type":"trade","s":"DEEP","p":1,"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "}")
	gzBig := compress(t, "gzip", bomb(16<<20))
	gzSmall := compress(t, "gzip", bomb(256<<10))
	type send struct {
		typ  int
		pmd  bool // permessage-deflate on the wire
		data []byte
	}
	hostile := []send{
		{websocket.TextMessage, false, bomb(256 << 10)}, // too_deep
		{websocket.BinaryMessage, false, gzBig},         // decompress_refused
		{websocket.BinaryMessage, false, gzSmall},       // too_deep
		{websocket.TextMessage, true, bomb(256 << 10)},  // too_deep
		{websocket.TextMessage, true, bomb(16 << 20)},   // oversize
		{websocket.TextMessage, false, deepTrade},       // too_deep
	}
	var ext string
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		ext = r.Header.Get("Sec-WebSocket-Extensions")
		for i, h := range hostile {
			c.EnableWriteCompression(false)
			c.WriteMessage(websocket.TextMessage, trade(i))
			c.EnableWriteCompression(h.pmd)
			c.WriteMessage(h.typ, h.data)
		}
		c.EnableWriteCompression(false)
		c.WriteMessage(websocket.TextMessage, trade(len(hostile)))
		drain(c)
	})
	srv.upgrader.EnableCompression = true
	r := start(t, "url: "+srv.wsURL("/")+"\ncompression: true\n"+tradeRules)
	for i := range len(hostile) + 1 {
		if s, _ := r.rec.data(t, "trades").Tag("symbol"); s != fmt.Sprintf("T%d", i) {
			t.Fatalf("point %d is from %s; every hostile frame must be dropped and no valid one lost", i, s)
		}
	}
	st := &r.src.stats
	if got, want := fmt.Sprint(st.TooDeep.Load(), st.DecompressRefused.Load(), st.Oversize.Load(), st.Messages.Load()), "4 1 1 7"; got != want {
		t.Errorf("too_deep, decompress_refused, oversize, messages = %s, want %s", got, want)
	}
	// The counts reach the agent too, by reason.
	if got, want := fmt.Sprint(r.rec.discards()), "map[decompress_refused:1 oversize:1 too_deep:4]"; got != want {
		t.Errorf("discarded = %s, want %s", got, want)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections; a hostile frame must not cost the connection", n)
	}
	if !strings.Contains(ext, "permessage-deflate") {
		t.Errorf("the client did not offer permessage-deflate: %q", ext)
	}
	// Logged once per kind per sampling interval, with a short sample.
	logs := r.logs.String()
	if n := strings.Count(logs, "frame nests deeper than max_json_depth"); n != 1 {
		t.Errorf("%d too-deep warnings for 4 frames in one interval, want 1:\n%.2000s", n, logs)
	}
	if len(logs) > 16<<10 {
		t.Errorf("%d bytes of log for a few frames: a frame reached the log whole", len(logs))
	}
	if len(gzBig) > DefaultMaxMessageBytes {
		t.Fatalf("the gzip bomb is %d bytes compressed; it must pass max_message_bytes to test the inflate cap", len(gzBig))
	}
}

func TestPermessageDeflate(t *testing.T) {
	var ext string
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		ext = r.Header.Get("Sec-WebSocket-Extensions")
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"Z","p":1}`))
		drain(c)
	})
	srv.upgrader.EnableCompression = true
	r := start(t, "url: "+srv.wsURL("/")+"\ncompression: true\n"+tradeRules)
	r.rec.data(t, "trades")
	if !strings.Contains(ext, "permessage-deflate") {
		t.Errorf("the client did not offer permessage-deflate: %q", ext)
	}
}

func TestTLS(t *testing.T) {
	srv := newTLSWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"TLS","p":1}`))
		drain(c)
	})
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	url := srv.wsURL("/")

	t.Run("ca_file", func(t *testing.T) {
		r := start(t, "url: "+url+"\ntls: {ca_file: "+caFile+", server_name: example.com}\n"+tradeRules)
		r.rec.data(t, "trades")
	})
	t.Run("insecure_skip_verify", func(t *testing.T) {
		r := start(t, "url: "+url+"\ntls: {insecure_skip_verify: true}\n"+tradeRules)
		r.rec.data(t, "trades")
	})
	t.Run("unknown authority is permanent", func(t *testing.T) {
		r := start(t, "url: "+url+"\n"+tradeRules)
		err := r.result(t)
		var perm *sdk.PermanentError
		if !errors.As(err, &perm) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Run: %v; want a permanent certificate error", err)
		}
	})
	t.Run("wrong server name is permanent", func(t *testing.T) {
		r := start(t, "url: "+url+"\ntls: {ca_file: "+caFile+", server_name: other.test}\n"+tradeRules)
		err := r.result(t)
		var perm *sdk.PermanentError
		if !errors.As(err, &perm) || !strings.Contains(err.Error(), "other.test") {
			t.Fatalf("Run: %v; want a permanent certificate error naming the server name", err)
		}
	})
}

// connectProxy is an HTTP CONNECT proxy that records its targets.
type connectProxy struct {
	mu      sync.Mutex
	targets []string
	wg      sync.WaitGroup
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	up, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
	down, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); io.Copy(up, bufio.NewReader(brw)); up.Close() }()
	go func() { defer p.wg.Done(); io.Copy(down, up); down.Close() }()
}

func TestProxy(t *testing.T) {
	srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"trade","s":"PROXIED","p":1}`))
		drain(c)
	})
	proxy := &connectProxy{}
	ps := httptest.NewServer(proxy)
	t.Cleanup(func() { ps.Close(); proxy.wg.Wait() })
	r := start(t, "url: "+srv.wsURL("/")+"\nproxy: "+ps.URL+"\n"+tradeRules)
	r.rec.data(t, "trades")
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if want := strings.TrimPrefix(srv.URL, "http://"); len(proxy.targets) != 1 || proxy.targets[0] != want {
		t.Errorf("proxy saw %v, want [%s]", proxy.targets, want)
	}
}

// A full host queue: handle waits up to queue_wait for room, then counts
// the point as dropped rather than block.
func TestFullQueueDropsAndCounts(t *testing.T) {
	src := newSource(discardLogger())
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", Config: yamlJSON(t, "url: ws://x\nqueue_wait: 20ms\n"+tradeRules)}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ch: make(chan sluice.Point, 2)}
	ss := &session{src: src, set: src.set, out: rec}
	start := time.Now()
	for i := range 5 {
		if _, err := ss.handle(context.Background(), frame{text: true, data: []byte(fmt.Sprintf(`{"type":"trade","s":"S%d","p":1}`, i))}, false); err != nil {
			t.Fatal(err)
		}
	}
	if p, d := src.stats.Points.Load(), src.stats.Dropped.Load(); p != 2 || d != 3 {
		t.Errorf("points %d, dropped %d; want 2 and 3", p, d)
	}
	if took := time.Since(start); took < 3*20*time.Millisecond {
		t.Errorf("3 drops took %v: they did not wait queue_wait (20ms) each", took)
	}
}

// With the default queue_wait (1s), a host that takes points again after
// a pause of 100ms loses none of them.
func TestQueueWaitRidesOutAPause(t *testing.T) {
	src := newSource(discardLogger())
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", Config: yamlJSON(t, "url: ws://x\n"+tradeRules)}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ch: make(chan sluice.Point, 2)}
	ss := &session{src: src, set: src.set, out: rec}
	taken := make(chan int)
	go func() {
		time.Sleep(100 * time.Millisecond)
		n := 0
		for range 5 {
			<-rec.ch
			n++
		}
		taken <- n
	}()
	for i := range 5 {
		if _, err := ss.handle(context.Background(), frame{text: true, data: []byte(fmt.Sprintf(`{"type":"trade","s":"S%d","p":1}`, i))}, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := <-taken; n != 5 {
		t.Errorf("the host took %d points, want 5", n)
	}
	if p, d := src.stats.Points.Load(), src.stats.Dropped.Load(); p != 5 || d != 0 {
		t.Errorf("points %d, dropped %d; want 5 and 0", p, d)
	}
}
