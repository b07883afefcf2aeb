package e2e_test

// End-to-end tests: the real sluice binary runs the real jsonws plugin
// binary on the example feed files in config/examples, against test
// WebSocket servers speaking each example's protocol, and the tests
// assert on the rows in the SQLite file.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m))
}

// wait bounds each wait for the agent; a deadlock guard, not a timing
// assertion.
const wait = time.Minute

// repoRoot is the module root, from this package's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// example returns an example feed file with replacements applied
// (old, new, old, new, ...), failing if any old string is absent.
func example(t testing.TB, name string, replace ...string) string {
	t.Helper()
	s := readFile(t, filepath.Join(repoRoot(t), "config", "examples", name))
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s no longer contains %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// feed returns what the tests look at of one feed's status.
func feed(st agent.Status, name string) (state string, points, restarts uint64, lastErr string) {
	f := testagent.Feed(st, name)
	return string(f.State), f.Points, f.Restarts, f.LastError
}

// written is the points written by every sink.
func written(st agent.Status) uint64 {
	var n uint64
	for _, s := range st.Sinks {
		n += s.Written
	}
	return n
}

// startAgent runs `sluice run` with the feed files given (name → body),
// a sqlite sink named "sqlite", and env added to its environment.
func startAgent(t *testing.T, feeds map[string]string, env ...string) *testagent.Agent {
	t.Helper()
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	os.MkdirAll(feedsDir, 0o755)
	for name, body := range feeds {
		if err := os.WriteFile(filepath.Join(feedsDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := testagent.WriteConfigFeedsDir(t, dir, feedsDir, "sinks:\n  sqlite: {type: sqlite, path: sluice.db}\n")
	return testagent.Launch(t, path, env...)
}

// wsServer runs handle for each WebSocket connection; refuse, if set,
// answers the handshake instead.
type wsServer struct {
	*httptest.Server
	up     websocket.Upgrader
	handle func(c *websocket.Conn)
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newWSServer(t *testing.T, handle func(c *websocket.Conn)) *wsServer {
	return newWSServerWith(t, websocket.Upgrader{}, handle)
}

// newWSServerWith is newWSServer with the upgrader's settings given, e.g.
// permessage-deflate.
func newWSServerWith(t *testing.T, up websocket.Upgrader, handle func(c *websocket.Conn)) *wsServer {
	s := &wsServer{handle: handle, up: up}
	s.Server = httptest.NewServer(s)
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.Close()
		s.wg.Wait()
	})
	return s
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
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	s.handle(c)
}

func (s *wsServer) url(path string) string { return "ws" + strings.TrimPrefix(s.URL, "http") + path }

func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// readUntil reads messages until one contains want; false if the
// connection ends first.
func readUntil(c *websocket.Conn, want string) bool {
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return false
		}
		if strings.Contains(string(b), want) {
			return true
		}
	}
}

func spotTradeFrames(t testing.TB) [][]byte {
	t.Helper()
	var frames [][]byte
	// The binance plugin's copy of the recorded frames in
	// /work/shared/data/binance, kept in the repository.
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(repoRoot(t), "plugins", "binance", "wire", "testdata", "frames", "spot_trade.jsonl"))))
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			frames = append(frames, append([]byte(nil), line...))
		}
	}
	if len(frames) == 0 {
		t.Fatal("no frames in spot_trade.jsonl")
	}
	return frames
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
