package e2e_test

// End-to-end tests: the real sluice binary runs the real jsonws plugin
// binary on the example feed files in config/examples, against test
// WebSocket servers speaking each example's protocol, and the tests
// assert on the rows in the SQLite file.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

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

// lockedWriter lets the test read a log the process is still writing.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// status is the part of the agent's /api/v1/status these tests read.
type status struct {
	Feeds []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Restarts  uint64 `json:"restarts"`
		Points    uint64 `json:"points"`
		LastError string `json:"last_error"`
	} `json:"feeds"`
	Sinks []struct {
		Name    string `json:"name"`
		Written uint64 `json:"written"`
	} `json:"sinks"`
}

func (s status) feed(name string) (state string, points, restarts uint64, lastErr string) {
	for _, f := range s.Feeds {
		if f.Name == name {
			return f.State, f.Points, f.Restarts, f.LastError
		}
	}
	return "", 0, 0, ""
}

func (s status) written() uint64 {
	var n uint64
	for _, k := range s.Sinks {
		n += k.Written
	}
	return n
}

type agentProc struct {
	cmd    *exec.Cmd
	status string
	db     string
	logs   *lockedWriter
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgent runs `sluice run` with the feed files given (name → body),
// a sqlite sink named "sqlite", and env added to its environment.
func startAgent(t *testing.T, feeds map[string]string, env ...string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	os.MkdirAll(feedsDir, 0o755)
	for name, body := range feeds {
		if err := os.WriteFile(filepath.Join(feedsDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: %s
shutdown_timeout: 20s
http: {listen: "%s"}
log: {level: debug}
restart: {initial: 200ms, max: 1s, reset_after: 5s}
sinks:
  sqlite: {type: sqlite, path: sluice.db}
`, dir, testbin.PluginDir(t), feedsDir, addr)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{
		cmd:    exec.Command(testbin.Sluice(t), "run", "-config", path),
		status: "http://" + addr + "/api/v1/status",
		db:     filepath.Join(dir, "sluice.db"),
		logs:   &lockedWriter{},
		done:   make(chan error, 1),
	}
	a.cmd.Env = testbin.Env(env...)
	a.cmd.Stderr = a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs.String())
		}
	})
	return a
}

func (a *agentProc) getStatus() (status, bool) {
	resp, err := http.Get(a.status)
	if err != nil {
		return status{}, false
	}
	defer resp.Body.Close()
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return status{}, false
	}
	return st, true
}

func (a *agentProc) waitFor(t *testing.T, what string, cond func(status) bool) status {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if st, ok := a.getStatus(); ok && cond(st) {
			return st
		}
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("sluice exited (%v) while waiting for %s", err, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	st, _ := a.getStatus()
	t.Fatalf("timed out waiting for %s; status: %+v", what, st)
	return st
}

func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			t.Fatalf("sluice exited with %v after SIGTERM", err)
		}
	case <-time.After(wait):
		t.Fatal("sluice did not exit after SIGTERM")
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
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
	s := &wsServer{handle: handle}
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
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(repoRoot(t), "plugins", "binance", "testdata", "frames", "spot_trade.jsonl"))))
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
