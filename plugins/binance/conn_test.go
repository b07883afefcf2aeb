package binance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"

	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// pointSink is an Emitter that keeps what it is given.
type pointSink struct {
	mu     sync.Mutex
	points []sluice.Point
}

func (s *pointSink) Emit(p sluice.Point) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points = append(s.points, p)
	return true
}
func (s *pointSink) EmitWithin(_ context.Context, p sluice.Point, _ time.Duration) bool {
	return s.Emit(p)
}
func (s *pointSink) EmitWait(_ context.Context, p sluice.Point) error { s.Emit(p); return nil }
func (s *pointSink) Checkpoint(sluice.Position)                       {}
func (s *pointSink) Recovered()                                       {}
func (s *pointSink) Event(ev sdk.Event)                               { s.Emit(sdk.EventPoint("test", ev)) }

func (s *pointSink) find(meas, kind string) []sluice.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sluice.Point
	for _, p := range s.points {
		if k, _ := p.Tag(TagKind); p.Measurement == meas && (kind == "" || k == kind) {
			out = append(out, p)
		}
	}
	return out
}

// A frame that does not parse is counted and skipped; an error frame that
// answers no request becomes a server_error event; the frames around them
// are emitted.
func TestBadAndErrorFramesAreNotFatal(t *testing.T) {
	frames := []string{
		`not json`,
		`{"error":{"code":1,"msg":"boom"}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":5,"p":"1.5","q":"2","T":1,"m":true,"M":true}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":"six"}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":3,"s":"BTCUSDT","t":6,"p":"1.5","q":"2","T":3,"m":false,"M":true}}`,
	}
	var got sync.WaitGroup
	got.Add(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" || r.URL.Query().Get("streams") != "btcusdt@trade" {
			http.Error(w, "bad path "+r.URL.String(), http.StatusBadRequest)
			return
		}
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for _, f := range frames {
			ws.WriteMessage(websocket.TextMessage, []byte(f))
		}
		got.Done()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	raw, _ := json.Marshal(map[string]any{"symbols": []string{"BTCUSDT"}, "streams": []string{"trade"},
		"ws_url": "ws" + strings.TrimPrefix(srv.URL, "http"), "rest_url": srv.URL})
	cfg, err := resolveJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := &pointSink{}
	r := newRunner(cfg, slog.New(slog.DiscardHandler), out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx, nil) }()
	got.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(out.find(market.MeasTrades, "")) < 2 || len(out.find(MeasFeedEvents, FeedServerError)) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %d trades, %d server errors", len(out.find(market.MeasTrades, "")), len(out.find(MeasFeedEvents, FeedServerError)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := r.badFrames.Load(); n != 2 {
		t.Errorf("%d bad frames counted, want 2", n)
	}
	ev := out.find(MeasFeedEvents, FeedServerError)[0]
	if msg, _ := ev.Field("message"); !strings.Contains(msg.Str(), "boom") {
		t.Errorf("server_error message %q does not carry Binance's", msg.Str())
	}
	if len(out.find(MeasFeedEvents, FeedDisconnect)) != 0 {
		t.Errorf("bad frames ended the connection: %v", out.find(MeasFeedEvents, ""))
	}
}

func resolveJSON(raw []byte) (*settings, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return c.resolve("test", &sdk.ConfigCheck{})
}

// The connection reads every frame into one reused buffer (and the JSON
// parser copies each into a buffer of its own, reused too), so a point
// must keep nothing of the bytes it was parsed from: the points of earlier
// frames stay intact after later, shorter and longer, frames overwrite
// both. It fails if the parser hands out a string that aliases them.
func TestPointsOutliveTheFrameBuffer(t *testing.T) {
	syms := []string{"LONGSYMBOLNAMEUSDT", "AUSDT", "MIDLENGTHUSDT", "BUSDT", "ANOTHERVERYLONGONEUSDT"}
	frameFor := func(i int, sym string) string {
		return fmt.Sprintf(`{"stream":"%s@trade","data":{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%d.25","q":"%d","T":%d,"m":%t,"M":true}}`,
			strings.ToLower(sym), i+1, sym, 100+i, i+1, 10*(i+1), i+1, i%2 == 0)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for i, sym := range syms {
			ws.WriteMessage(websocket.TextMessage, []byte(frameFor(i, sym)))
		}
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan frame, len(syms))
	c, err := dialConn(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), []string{"x@trade"}, out, slog.New(slog.DiscardHandler),
		func(*wsConn, wire.Event) {}, func(err error, _ []byte) { t.Errorf("bad frame: %v", err) }, market.Spot)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(websocket.CloseNormalClosure, "done")
	// Every frame is read (and the buffer overwritten) before any is looked at.
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < len(syms) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames read", len(out), len(syms))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, sym := range syms {
		f := <-out
		if len(f.points) != 1 {
			t.Fatalf("frame %d: %d points, want 1", i, len(f.points))
		}
		p := f.points[0]
		price, _ := p.Field("price")
		id, _ := p.Field("trade_id")
		if s, _ := p.Tag("symbol"); s != sym || price.Float() != float64(i+1)+0.25 || id.Int() != int64(100+i) || f.ev.Symbol != sym {
			t.Errorf("frame %d: symbol %q (event %q), price %v, trade_id %v; want %s, %d.25, %d", i, s, f.ev.Symbol, price, id, sym, i+1, 100+i)
		}
	}
}
