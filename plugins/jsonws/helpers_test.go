package jsonws

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for behaviour in these tests. It is a deadlock
// guard, not a timing assertion: nothing is expected to take long.
const wait = 20 * time.Second

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer collects a source's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recorder is the emitter of the tests: it hands points over a channel
// and drops (reporting false) when the channel is full, as the SDK does.
// Events it hands over as the feed_events points the agent writes, never
// dropping one (it waits for room), and it sums discard counts.
type recorder struct {
	ch chan sluice.Point

	mu        sync.Mutex
	discarded map[string]uint64
	events    []sdk.Event
}

func (r *recorder) Event(ev sdk.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.ch <- sdk.EventPoint("test", ev)
}

// eventsOf returns the events of a kind reported so far.
func (r *recorder) eventsOf(kind sdk.EventKind) []sdk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sdk.Event
	for _, ev := range r.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) Discarded(reason string, n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.discarded == nil {
		r.discarded = make(map[string]uint64)
	}
	r.discarded[reason] += n
}

// discards is what Discarded summed so far.
func (r *recorder) discards() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.discarded)
}

func newRecorder() *recorder { return &recorder{ch: make(chan sluice.Point, 10000)} }

func (r *recorder) Emit(p sluice.Point) bool {
	select {
	case r.ch <- p:
		return true
	default:
		return false
	}
}

// EmitWithin waits up to wait for room, as the SDK does (without its
// stop-waiting-after-a-timeout, which the SDK's tests cover).
func (r *recorder) EmitWithin(ctx context.Context, p sluice.Point, wait time.Duration) bool {
	if r.Emit(p) {
		return true
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r.ch <- p:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// next returns the next point that satisfies keep, skipping others.
func (r *recorder) next(t *testing.T, what string, keep func(sluice.Point) bool) sluice.Point {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case p := <-r.ch:
			if keep(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no %s within %s", what, wait)
		}
	}
}

func (r *recorder) event(t *testing.T, kind sdk.EventKind) *sluice.Point {
	t.Helper()
	p := r.next(t, "feed_events "+string(kind), func(p sluice.Point) bool {
		k, _ := p.Tag("kind")
		return p.Measurement == sdk.MeasFeedEvents && k == string(kind)
	})
	return &p
}

func (r *recorder) data(t *testing.T, measurement string) *sluice.Point {
	t.Helper()
	p := r.next(t, measurement+" point", func(p sluice.Point) bool { return p.Measurement == measurement })
	return &p
}

// wsServer is a test WebSocket server. Each connection runs handle with
// its 1-based number; refuse, if set, answers the handshake request
// instead (a status code) before any upgrade.
type wsServer struct {
	*httptest.Server
	conns    atomic.Int32
	upgrader websocket.Upgrader
	handle   func(n int, c *websocket.Conn, r *http.Request)
	refuse   func(n int, w http.ResponseWriter, r *http.Request) bool

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // running handlers, which hijacked connections outlive Close
}

func newWSServer(t *testing.T, handle func(n int, c *websocket.Conn, r *http.Request)) *wsServer {
	s := &wsServer{handle: handle}
	s.Server = httptest.NewUnstartedServer(s)
	s.Start()
	t.Cleanup(s.stop)
	return s
}

func newTLSWSServer(t *testing.T, handle func(n int, c *websocket.Conn, r *http.Request)) *wsServer {
	s := &wsServer{handle: handle}
	s.Server = httptest.NewUnstartedServer(s)
	s.StartTLS()
	t.Cleanup(s.stop)
	return s
}

func (s *wsServer) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Close()
	s.wg.Wait()
}

func (s *wsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	n := int(s.conns.Add(1))
	if s.refuse != nil && s.refuse(n, w, r) {
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	s.handle(n, c, r)
}

// wsURL is the server's ws:// or wss:// URL with path.
func (s *wsServer) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// drain reads (answering pings) until the client goes away.
func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// running is a source under test.
type running struct {
	src  *Source
	rec  *recorder
	logs *logBuffer
	done chan error
}

// start configures a source from YAML and runs it until the test ends.
// Reconnect waits are skipped: the backoff is computed but not slept.
func start(t *testing.T, doc string) *running {
	t.Helper()
	logs := &logBuffer{}
	src := newSource(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	src.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "test", Config: yamlJSON(t, doc)}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, rec: newRecorder(), logs: logs, done: make(chan error, 1)}
	go func() { r.done <- src.run(ctx, r.rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of cancel", wait)
		}
		if t.Failed() {
			t.Logf("source log:\n%s", logs.String())
		}
	})
	return r
}

// result waits for Run to return on its own.
func (r *running) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatalf("Run did not return within %s", wait)
		return nil
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// EmitWait, Checkpoint, Recovered, Stale and Live complete sdk.Emitter;
// the source uses only Emit, EmitWithin, Event and Discarded.
func (r *recorder) EmitWait(ctx context.Context, p sluice.Point) error {
	select {
	case r.ch <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) Checkpoint(sluice.Position) {}
func (r *recorder) Recovered()                 {}

func (r *recorder) Stale(stream string, since time.Time) {
	r.Event(sdk.Event{Kind: sdk.EventStale, Stream: stream, Since: since})
}

func (r *recorder) Live(stream string) { r.Event(sdk.Event{Kind: sdk.EventLive, Stream: stream}) }
