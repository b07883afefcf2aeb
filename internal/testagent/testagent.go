// Package testagent runs the real sluice binary for end-to-end tests: it
// writes a config, starts `sluice run`, polls its status, waits for what
// lands in SQLite, and stops or kills it. The binaries come from
// internal/testbin, so a test package using this needs
// `func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }`.
package testagent

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testproc"
)

// WaitTimeout bounds every wait in this package.
const WaitTimeout = time.Minute

// Agent is one `sluice run` process under test.
type Agent struct {
	Cmd    *exec.Cmd
	Config string // the main config file
	Base   string // http://<http.listen>
	Socket string // http.socket, if the config sets it
	DB     string // <data_dir>/sluice.db
	log    *SyncWriter

	exited chan struct{}
	err    error // the process's exit, once exited is closed
}

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return testproc.FreeAddr(t)
}

// Start writes a config (sinks and feeds given as YAML) into a new
// directory and starts `sluice run` on it.
func Start(t testing.TB, sinksAndFeeds string) *Agent {
	t.Helper()
	return Launch(t, WriteConfig(t, t.TempDir(), sinksAndFeeds))
}

// WriteConfig writes sluice.yaml into dir (which is also data_dir): test
// defaults (debug log, fast restarts, small batches, a free status port,
// a unix socket)
// followed by sinksAndFeeds. It returns the file's path.
func WriteConfig(t testing.TB, dir, sinksAndFeeds string) string {
	t.Helper()
	return WriteConfigFeedsDir(t, dir, "", sinksAndFeeds)
}

// WriteConfigFeedsDir is WriteConfig with a feeds_dir.
func WriteConfigFeedsDir(t testing.TB, dir, feedsDir, sinksAndFeeds string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: "%s"
shutdown_timeout: 20s
http: {listen: "%s", socket: "%s"}
log: {level: debug}
restart: {initial: 200ms, max: 1s, reset_after: 5s}
pipeline: {batch_size: 500, flush_interval: 100ms}
%s`, dir, testbin.PluginDir(t), feedsDir, FreeAddr(t), SocketPath(t, dir), sinksAndFeeds)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SocketPath returns a path for the agent's unix socket: in dir if that
// is short enough for a socket's path, else in a new short directory.
func SocketPath(t testing.TB, dir string) string {
	t.Helper()
	if p := filepath.Join(dir, "sluice.sock"); len(p) <= 90 {
		return p
	}
	short, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	return filepath.Join(short, "sluice.sock")
}

// WriteFile writes then renames, as a deploy tool would, so a watcher
// never sees half a file.
func WriteFile(t testing.TB, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Launch starts `sluice run` on a config written by WriteConfig, with
// extra environment variables. The process is killed at the end of the
// test, and its log printed if the test failed.
func Launch(t testing.TB, path string, env ...string) *Agent {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var addr, socket string
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, `http: {listen: "`); ok {
			addr, rest, _ = strings.Cut(rest, `"`)
			if rest, ok := strings.CutPrefix(rest, `, socket: "`); ok {
				socket, _, _ = strings.Cut(rest, `"`)
			}
		}
	}
	a := &Agent{
		Cmd:    exec.Command(testbin.Sluice(t), "run", "-config", path),
		Config: path,
		Base:   "http://" + addr,
		Socket: socket,
		DB:     filepath.Join(filepath.Dir(path), "sluice.db"),
		log:    &SyncWriter{},
		exited: make(chan struct{}),
	}
	a.Cmd.Stderr = a.log
	a.Cmd.Env = testbin.Env(env...)
	if err := a.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.err = a.Cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.Cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("agent log (%s):\n%s", path, a.Log())
		}
	})
	return a
}

// Log is what the agent has written to stderr so far.
func (a *Agent) Log() string { return a.log.String() }

// Exited is closed when the process has exited; ExitErr then says how.
func (a *Agent) Exited() <-chan struct{} { return a.exited }

// ExitErr is the process's exit status, valid once Exited is closed.
func (a *Agent) ExitErr() error { return a.err }

// Stop sends SIGTERM and waits for a clean exit.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	a.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		if a.err != nil {
			t.Fatalf("sluice exited with %v after SIGTERM", a.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sluice did not exit within 30s of SIGTERM")
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (a *Agent) Kill() {
	a.Cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// Status fetches /api/v1/status, on the agent's unix socket if it has
// one (TCP may need a token), else over TCP; false if the agent does not
// answer.
func (a *Agent) Status(t testing.TB) (agent.Status, bool) {
	t.Helper()
	var resp *http.Response
	var err error
	if a.Socket != "" {
		var d net.Dialer
		cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", a.Socket)
		}}}
		resp, err = cl.Get("http://localhost/api/v1/status")
		cl.CloseIdleConnections()
	}
	if a.Socket != "" && err != nil {
		if _, serr := os.Stat(a.Socket); serr == nil {
			// The agent serves the socket: a failed request there (an
			// agent still starting, a busy machine) is tried again by
			// the caller, not sent over TCP, which may want a token.
			return agent.Status{}, false
		}
	}
	if a.Socket == "" || err != nil {
		resp, err = http.Get(a.Base + "/api/v1/status")
	}
	if err != nil {
		return agent.Status{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status: %s: %s", resp.Status, body)
	}
	var st agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st, true
}

// WaitFor polls the status until cond holds, failing the test if the
// agent exits or WaitTimeout passes first.
func (a *Agent) WaitFor(t testing.TB, what string, cond func(agent.Status) bool) agent.Status {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for time.Now().Before(deadline) {
		if st, ok := a.Status(t); ok && cond(st) {
			return st
		}
		select {
		case <-a.exited:
			t.Fatalf("sluice exited (%v) while waiting for %s", a.err, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	st, _ := a.Status(t)
	t.Fatalf("timed out waiting for %s; status: %+v", what, st)
	return st
}

// WaitForCount polls the agent's SQLite file until query (one integer)
// reaches n.
func (a *Agent) WaitForCount(t testing.TB, query string, n int64) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	var got int64
	for time.Now().Before(deadline) {
		db, err := sql.Open(testbin.SQLiteDriver, "file:"+a.DB+"?mode=ro")
		if err == nil {
			err = db.QueryRow(query).Scan(&got)
			db.Close()
		}
		if err == nil && got >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %d after %s, want %d", query, got, WaitTimeout, n)
}

// Feed returns a feed's status (zero if absent).
func Feed(st agent.Status, name string) agent.FeedStatus {
	for _, f := range st.Feeds {
		if f.Name == name {
			return f
		}
	}
	return agent.FeedStatus{}
}

// HasFeed reports whether the status lists the feed.
func HasFeed(st agent.Status, name string) bool {
	return Feed(st, name).Name == name
}

// Sink returns a sink's status (zero if absent).
func Sink(st agent.Status, name string) agent.SinkStatus {
	for _, s := range st.Sinks {
		if s.Name == name {
			return s
		}
	}
	return agent.SinkStatus{}
}

// Written is the number of points a sink has written.
func Written(st agent.Status, name string) uint64 { return Sink(st, name).Written }

// OpenDB opens a SQLite file read-only for the rest of the test.
func OpenDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// QueryInt runs a query returning one integer.
func QueryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// QueryPlan returns SQLite's plan for q (EXPLAIN QUERY PLAN), its steps
// joined by "; ".
func QueryPlan(t testing.TB, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return strings.Join(steps, "; ")
}

// SyncWriter lets a test read what a process is still writing to it
// (its log, its stderr).
type SyncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *SyncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *SyncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
