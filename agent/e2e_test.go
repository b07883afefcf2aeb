package agent_test

// End-to-end tests: the real sluice binary and real plugin binaries,
// writing into a real SQLite file, asserted on the rows that land.

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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
)

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m))
}

// lockedWriter lets the test read a log the process is still writing.
type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
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

// runningAgent is a sluice process under test.
type runningAgent struct {
	cmd    *exec.Cmd
	config string // the main config file
	base   string // http://http.listen
	status string // status URL
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

// startAgent writes a config (sinks and feeds given as YAML) into a new
// directory and starts `sluice run` on it.
func startAgent(t *testing.T, sinksAndFeeds string) *runningAgent {
	t.Helper()
	return launchAgent(t, writeConfig(t, t.TempDir(), sinksAndFeeds))
}

// writeConfig writes sluice.yaml into dir (which is also data_dir) and
// returns its path.
func writeConfig(t *testing.T, dir, sinksAndFeeds string) string {
	t.Helper()
	return writeConfigFeedsDir(t, dir, "", sinksAndFeeds)
}

// writeConfigFeedsDir is writeConfig with a feeds_dir.
func writeConfigFeedsDir(t *testing.T, dir, feedsDir, sinksAndFeeds string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: "%s"
shutdown_timeout: 20s
http: {listen: "%s"}
log: {level: debug}
restart: {initial: 200ms, max: 1s, reset_after: 5s}
pipeline: {batch_size: 500, flush_interval: 100ms}
%s`, dir, testbin.PluginDir(t), feedsDir, freeAddr(t), sinksAndFeeds)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// launchAgent starts `sluice run` on an existing config.
func launchAgent(t *testing.T, path string) *runningAgent {
	t.Helper()
	return launchAgentEnv(t, path, nil)
}

// launchAgentEnv is launchAgent with extra environment variables.
func launchAgentEnv(t *testing.T, path string, env []string) *runningAgent {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, `http: {listen: "`); ok {
			addr = strings.TrimSuffix(rest, `"}`)
		}
	}
	dir := filepath.Dir(path)
	a := &runningAgent{
		cmd:    exec.Command(testbin.Sluice(t), "run", "-config", path),
		config: path,
		base:   "http://" + addr,
		status: "http://" + addr + "/api/v1/status",
		db:     filepath.Join(dir, "sluice.db"),
		logs:   &lockedWriter{b: &strings.Builder{}},
		done:   make(chan error, 1),
	}
	a.cmd.Stderr = a.logs
	a.cmd.Env = append(testbin.Env(), env...)
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

// stop sends SIGTERM and waits for a clean exit.
func (a *runningAgent) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			t.Fatalf("sluice exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sluice did not exit within 30s of SIGTERM")
	}
}

func (a *runningAgent) getStatus(t *testing.T) (agent.Status, bool) {
	resp, err := http.Get(a.status)
	if err != nil {
		return agent.Status{}, false
	}
	defer resp.Body.Close()
	var st agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st, true
}

// waitFor polls the agent's status until cond holds or a minute passes.
func (a *runningAgent) waitFor(t *testing.T, what string, cond func(agent.Status) bool) agent.Status {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if st, ok := a.getStatus(t); ok && cond(st) {
			return st
		}
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("sluice exited (%v) while waiting for %s", err, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	st, _ := a.getStatus(t)
	t.Fatalf("timed out waiting for %s; status: %+v", what, st)
	return st
}

// waitForRows polls the SQLite file until table holds n distinct seq.
func (a *runningAgent) waitForRows(t *testing.T, table string, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var got int64
	for time.Now().Before(deadline) {
		db, err := sql.Open(testbin.SQLiteDriver, "file:"+a.db+"?mode=ro")
		if err == nil {
			err = db.QueryRow(`SELECT count(DISTINCT seq) FROM "` + table + `"`).Scan(&got)
			db.Close()
		}
		if err == nil && got >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %d distinct seq after a minute, want %d", table, got, n)
}

func feedStatus(st agent.Status, name string) agent.FeedStatus {
	for _, f := range st.Feeds {
		if f.Name == name {
			return f
		}
	}
	return agent.FeedStatus{}
}

func sinkWritten(st agent.Status, name string) uint64 {
	for _, s := range st.Sinks {
		if s.Name == name {
			return s.Written
		}
	}
	return 0
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?mode=ro")
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

func columns(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY name`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	return cols
}

func TestSQLiteEndToEnd(t *testing.T) {
	const n = 3000
	a := startAgent(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  synth:
    plugin: synth
    sinks: [db]
    config: {symbols: [AAA, BBB, CCC], count: %d, extra_field_after: 2000, repeat: 2}
`, n))
	// Every point is sent twice (repeat: 2); the uniqueness key keeps one row.
	a.waitFor(t, "all points written", func(st agent.Status) bool { return sinkWritten(st, "db") >= 2*n })
	a.stop(t)

	db := openDB(t, a.db)
	if got := queryInt(t, db, `SELECT count(*) FROM synth`); got != n {
		t.Errorf("rows = %d, want %d (one per point, duplicates folded)", got, n)
	}
	if got := queryInt(t, db, `SELECT count(DISTINCT seq) FROM synth`); got != n {
		t.Errorf("distinct seq = %d, want %d", got, n)
	}
	for _, sym := range []string{"AAA", "BBB", "CCC"} {
		if got := queryInt(t, db, `SELECT count(*) FROM synth WHERE symbol = ?`, sym); got != n/3 {
			t.Errorf("rows for %s = %d, want %d", sym, got, n/3)
		}
	}
	// Values and storage types of one known point (seq 1001, see synth.Point).
	var (
		price            float64
		seq, size        int64
		even             bool
		label, symbol    string
		tPrice, tSeq     string
		tLabel, tSymbol  string
		extraNull, extra int64
	)
	err := db.QueryRow(`SELECT price, seq, size, even, label, symbol,
		typeof(price), typeof(seq), typeof(label), typeof(symbol)
		FROM synth WHERE seq = 1001`).Scan(&price, &seq, &size, &even, &label, &symbol, &tPrice, &tSeq, &tLabel, &tSymbol)
	if err != nil {
		t.Fatal(err)
	}
	if price != 100+1.0/8 || seq != 1001 || size != 1001%7 || even || label != "p1001" || symbol != "CCC" {
		t.Errorf("point 1001 = price %v seq %d size %d even %v label %q symbol %q", price, seq, size, even, label, symbol)
	}
	if tPrice != "real" || tSeq != "integer" || tLabel != "text" || tSymbol != "text" {
		t.Errorf("storage types price=%s seq=%s label=%s symbol=%s", tPrice, tSeq, tLabel, tSymbol)
	}
	// The field that appeared at seq 2000 became a column; older rows hold NULL.
	cols := strings.Join(columns(t, db, "synth"), ",")
	if !strings.Contains(cols, "extra") {
		t.Fatalf("columns %s lack the field that appeared mid-stream", cols)
	}
	extraNull = queryInt(t, db, `SELECT count(*) FROM synth WHERE extra IS NULL`)
	extra = queryInt(t, db, `SELECT count(*) FROM synth WHERE extra = seq / 2.0`)
	if extraNull != 2000 || extra != n-2000 {
		t.Errorf("extra: %d NULL and %d set; want 2000 and %d", extraNull, extra, n-2000)
	}
}

// kill -9 of the agent, several times mid-stream, restarted each time on
// the same data directory: the disk buffer keeps what was received, the
// feed resumes from its last durable position, and every point lands
// exactly once.
func TestAgentKilledRepeatedlyLosesNothing(t *testing.T) {
	const n = 12000
	dir := t.TempDir()
	path := writeConfig(t, dir, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  synth:
    plugin: synth
    sinks: [db]
    config: {symbols: [AAA, BBB, CCC], rate: 3000, count: %d}
`, n))
	var plugins []int
	rng := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		a := launchAgent(t, path)
		// Kill it mid-stream at a different point each run: after it has
		// written something and received 500-2000 more points.
		target := uint64(500 + rng.IntN(1500))
		st := a.waitFor(t, "progress before the kill", func(st agent.Status) bool {
			return sinkWritten(st, "db") > 0 && feedStatus(st, "synth").Points >= target
		})
		plugins = append(plugins, feedStatus(st, "synth").Pid)
		a.cmd.Process.Signal(syscall.SIGKILL)
		<-a.done
		a.done <- nil
	}
	a := launchAgent(t, path)
	a.waitForRows(t, "synth", n)
	a.stop(t)

	db := openDB(t, a.db)
	rows := queryInt(t, db, `SELECT count(*) FROM synth`)
	distinct := queryInt(t, db, `SELECT count(DISTINCT seq) FROM synth`)
	maxSeq := queryInt(t, db, `SELECT max(seq) FROM synth`)
	if rows != n || distinct != n || maxSeq != n-1 {
		t.Fatalf("after 4 kills: %d rows, %d distinct seq, max %d; want %d, %d, %d", rows, distinct, maxSeq, n, n, n-1)
	}
	if !strings.Contains(a.logs.String(), "resume=true") {
		t.Error("the last start did not resume from a stored position")
	}
	// The plugins of the killed agents noticed and exited by themselves.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range plugins {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("plugin %d outlived its killed agent", pid)
		}
	}
}

func TestPluginCrashIsRestartedAndOtherFeedsKeepFlowing(t *testing.T) {
	const n = 20000
	a := startAgent(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  victim:
    plugin: synth
    sinks: [db]
    config: {measurement: victim, rate: 4000, count: %[1]d}
  bystander:
    plugin: synth
    sinks: [db]
    config: {measurement: bystander, rate: 4000, count: %[1]d}
`, n))
	st := a.waitFor(t, "both feeds flowing", func(st agent.Status) bool {
		return feedStatus(st, "victim").Points > 2000 && feedStatus(st, "bystander").Points > 2000
	})
	victimPid, bystanderPid := feedStatus(st, "victim").Pid, feedStatus(st, "bystander").Pid
	if victimPid == 0 || bystanderPid == 0 {
		t.Fatalf("status shows no plugin pids: %+v", st.Feeds)
	}
	if err := syscall.Kill(victimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	before := feedStatus(st, "bystander").Points
	st = a.waitFor(t, "the victim restarted", func(st agent.Status) bool {
		v := feedStatus(st, "victim")
		return v.Restarts >= 1 && v.State == agent.FeedRunning && v.Pid != victimPid
	})
	b := feedStatus(st, "bystander")
	if b.Pid != bystanderPid || b.Restarts != 0 {
		t.Errorf("bystander was disturbed: pid %d→%d, restarts %d", bystanderPid, b.Pid, b.Restarts)
	}
	if b.Points <= before {
		t.Errorf("bystander stopped flowing while the victim was down (%d → %d points)", before, b.Points)
	}
	// Feed counters include points sent again after the restart, so wait
	// on what landed.
	a.waitForRows(t, "victim", n)
	a.waitForRows(t, "bystander", n)
	a.stop(t)

	// The restarted plugin resumed from the last position the agent had:
	// every sequence number landed exactly once, none lost in the crash.
	db := openDB(t, a.db)
	for _, m := range []string{"victim", "bystander"} {
		rows, distinct := queryInt(t, db, `SELECT count(*) FROM `+m), queryInt(t, db, `SELECT count(DISTINCT seq) FROM `+m)
		maxSeq := queryInt(t, db, `SELECT max(seq) FROM `+m)
		if rows != n || distinct != n || maxSeq != n-1 {
			t.Errorf("%s: %d rows, %d distinct seq, max seq %d; want %d, %d, %d", m, rows, distinct, maxSeq, n, n, n-1)
		}
	}
}

func TestSecondSignalExitsWithoutDraining(t *testing.T) {
	// The influx sink points at a port where nothing listens, so the drain
	// on the first SIGTERM cannot finish before shutdown_timeout (20s).
	a := startAgent(t, fmt.Sprintf(`sinks:
  down: {type: influxdb, url: "http://%s", bucket: b, retry_initial: 50ms, retry_max: 100ms}
feeds:
  synth: {plugin: synth, sinks: [down], config: {count: 50}}
`, freeAddr(t)))
	a.waitFor(t, "points buffered for the dead sink", func(st agent.Status) bool {
		return len(st.Sinks) == 1 && st.Sinks[0].BufferedPoints >= 50 && st.Sinks[0].Retries > 0
	})
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		t.Fatalf("exited (%v) on the first signal although its sink could not drain", err)
	case <-time.After(500 * time.Millisecond): // still draining, as it should be
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("second signal: exit %v, want status 130", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not exit at once")
	}
}

func TestBadFeedConfigFailsThatFeedOnly(t *testing.T) {
	a := startAgent(t, `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  broken:
    plugin: synth
    sinks: [db]
    config: {rate: -5}
  fine:
    plugin: synth
    sinks: [db]
    config: {count: 100}
  missing:
    plugin: nosuchplugin
    sinks: [db]
`)
	st := a.waitFor(t, "fine done, broken and missing failed", func(st agent.Status) bool {
		return feedStatus(st, "fine").Points >= 100 &&
			feedStatus(st, "broken").State == agent.FeedFailedConfig &&
			feedStatus(st, "missing").State == agent.FeedFailed
	})
	if got := feedStatus(st, "broken"); got.LastError != "rate: must not be negative" || got.Restarts != 0 {
		t.Errorf("broken feed: error %q, restarts %d", got.LastError, got.Restarts)
	}
	if got := feedStatus(st, "missing").LastError; !strings.Contains(got, `plugin "nosuchplugin" not found`) {
		t.Errorf("missing plugin error: %q", got)
	}
}

func TestSourceFailuresRestartOrStop(t *testing.T) {
	a := startAgent(t, `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  flaky:
    plugin: synth
    sinks: [db]
    config: {measurement: flaky, count: 300, fail_after: 100}
  doomed:
    plugin: synth
    sinks: [db]
    config: {measurement: doomed, fail_after: 10, fail_permanent: true}
`)
	st := a.waitFor(t, "flaky done after restarts, doomed failed", func(st agent.Status) bool {
		return feedStatus(st, "flaky").Points >= 300 && feedStatus(st, "doomed").State == agent.FeedFailed
	})
	// 300 points, 100 per run: two failures, each resumed where it stopped.
	if f := feedStatus(st, "flaky"); f.Restarts != 2 {
		t.Errorf("flaky restarted %d times, want 2", f.Restarts)
	}
	if d := feedStatus(st, "doomed"); d.Restarts != 0 || d.LastError != "synth: failing as configured after 10 points" {
		t.Errorf("doomed: %d restarts, error %q; a permanent failure must not restart", d.Restarts, d.LastError)
	}
}

func TestPinnedPluginMismatchRefusesFeed(t *testing.T) {
	a := startAgent(t, `plugins:
  synth: {sha256: "`+strings.Repeat("ab", 32)+`"}
sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  pinned: {plugin: synth, sinks: [db], config: {count: 10}}
`)
	st := a.waitFor(t, "the pinned feed refused", func(st agent.Status) bool {
		return feedStatus(st, "pinned").State == agent.FeedFailed
	})
	if got := feedStatus(st, "pinned").LastError; !strings.Contains(got, "does not match its pin") || feedStatus(st, "pinned").Points != 0 {
		t.Errorf("pinned feed: %q, %d points", got, feedStatus(st, "pinned").Points)
	}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	os.MkdirAll(filepath.Join(dir, "feeds.d"), 0o755)
	feedFile := write("feeds.d/bad.yaml", "feeds:\n  bad: {plugin: synth, sinks: [db], config: {rate: -1, symbols: [], bogus: 1}}\n")
	mainFile := write("sluice.yaml", fmt.Sprintf("data_dir: %s\nplugin_dir: %s\nfeeds_dir: feeds.d\nsinks:\n  db: {type: sqlite}\n", dir, testbin.PluginDir(t)))

	run := func(args ...string) (string, int) {
		cmd := exec.Command(testbin.Sluice(t), args...)
		cmd.Env = testbin.Env()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := run("validate", "-config", mainFile)
	// The plugin reports its first decoding problem (an unknown key stops
	// JSON decoding), each line naming the feed file and the key.
	if want := feedFile + ": feeds.bad.config.bogus: unknown key\n"; code != 1 || out != want {
		t.Errorf("validate: exit %d, output:\n%s\nwant exit 1 and:\n%s", code, out, want)
	}
	write("feeds.d/bad.yaml", "feeds:\n  bad: {plugin: synth, sinks: [db], config: {rate: -1, symbols: []}}\n")
	out, code = run("validate", "-config", mainFile)
	want := feedFile + ": feeds.bad.config.symbols: must list at least one symbol\n" +
		feedFile + ": feeds.bad.config.rate: must not be negative\n"
	if code != 1 || out != want {
		t.Errorf("validate: exit %d, output:\n%s\nwant exit 1 and:\n%s", code, out, want)
	}
	write("feeds.d/bad.yaml", "feeds:\n  good: {plugin: synth, sinks: [db], config: {rate: 1}}\n")
	if out, code = run("validate", "-config", mainFile); code != 0 || !strings.Contains(out, "ok (1 sinks, 1 feeds)") {
		t.Errorf("validate of a good config: exit %d, %s", code, out)
	}

	out, code = run("plugins", "-config", mainFile)
	if code != 0 || !strings.Contains(out, "synth") || !strings.Contains(out, "source.v1") {
		t.Errorf("plugins: exit %d\n%s", code, out)
	}
	if out, code = run("version"); code != 0 || !strings.HasPrefix(out, "sluice ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if _, code = run("frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
