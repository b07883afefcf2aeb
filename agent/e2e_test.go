package agent_test

// End-to-end tests: the real sluice binary and real plugin binaries,
// writing into a real SQLite file, asserted on the rows that land.

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// TestMain builds the sluice and plugin binaries the end-to-end tests
// run, runs the tests, and fails if any left a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withBinaries{m}) }

// withBinaries runs the tests inside testbin.Main.
type withBinaries struct{ m *testing.M }

func (w withBinaries) Run() int { return testbin.Main(w.m) }

// distinctSeq counts the distinct synth sequence numbers in a table.
func distinctSeq(table string) string { return `SELECT count(DISTINCT seq) FROM "` + table + `"` }

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
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  synth:
    plugin: synth
    sinks: [db]
    config: {symbols: [AAA, BBB, CCC], count: %d, extra_field_after: 2000, repeat: 2}
`, n))
	// Every point is sent twice (repeat: 2); the uniqueness key keeps one row.
	a.WaitFor(t, "all points written", func(st agent.Status) bool { return testagent.Written(st, "db") >= 2*n })
	a.Stop(t)

	db := testagent.OpenDB(t, a.DB)
	if got := testagent.QueryInt(t, db, `SELECT count(*) FROM synth`); got != n {
		t.Errorf("rows = %d, want %d (one per point, duplicates folded)", got, n)
	}
	if got := testagent.QueryInt(t, db, `SELECT count(DISTINCT seq) FROM synth`); got != n {
		t.Errorf("distinct seq = %d, want %d", got, n)
	}
	for _, sym := range []string{"AAA", "BBB", "CCC"} {
		if got := testagent.QueryInt(t, db, `SELECT count(*) FROM synth WHERE symbol = ?`, sym); got != n/3 {
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
	extraNull = testagent.QueryInt(t, db, `SELECT count(*) FROM synth WHERE extra IS NULL`)
	extra = testagent.QueryInt(t, db, `SELECT count(*) FROM synth WHERE extra = seq / 2.0`)
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
	path := testagent.WriteConfig(t, dir, fmt.Sprintf(`sinks:
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
		a := testagent.Launch(t, path)
		// Kill it mid-stream at a different point each run: after it has
		// written something and received 500-2000 more points.
		target := uint64(500 + rng.IntN(1500))
		st := a.WaitFor(t, "progress before the kill", func(st agent.Status) bool {
			return testagent.Written(st, "db") > 0 && testagent.Feed(st, "synth").Points >= target
		})
		plugins = append(plugins, testagent.Feed(st, "synth").Pid)
		a.Kill()
	}
	a := testagent.Launch(t, path)
	a.WaitForCount(t, distinctSeq("synth"), n)
	a.Stop(t)

	db := testagent.OpenDB(t, a.DB)
	rows := testagent.QueryInt(t, db, `SELECT count(*) FROM synth`)
	distinct := testagent.QueryInt(t, db, `SELECT count(DISTINCT seq) FROM synth`)
	maxSeq := testagent.QueryInt(t, db, `SELECT max(seq) FROM synth`)
	if rows != n || distinct != n || maxSeq != n-1 {
		t.Fatalf("after 4 kills: %d rows, %d distinct seq, max %d; want %d, %d, %d", rows, distinct, maxSeq, n, n, n-1)
	}
	if !strings.Contains(a.Log(), "resume=true") {
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
	a := testagent.Start(t, fmt.Sprintf(`sinks:
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
	st := a.WaitFor(t, "both feeds flowing", func(st agent.Status) bool {
		return testagent.Feed(st, "victim").Points > 2000 && testagent.Feed(st, "bystander").Points > 2000
	})
	victimPid, bystanderPid := testagent.Feed(st, "victim").Pid, testagent.Feed(st, "bystander").Pid
	if victimPid == 0 || bystanderPid == 0 {
		t.Fatalf("status shows no plugin pids: %+v", st.Feeds)
	}
	if err := syscall.Kill(victimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	before := testagent.Feed(st, "bystander").Points
	st = a.WaitFor(t, "the victim restarted", func(st agent.Status) bool {
		v := testagent.Feed(st, "victim")
		return v.Restarts >= 1 && v.State == agent.FeedRunning && v.Pid != victimPid
	})
	b := testagent.Feed(st, "bystander")
	if b.Pid != bystanderPid || b.Restarts != 0 {
		t.Errorf("bystander was disturbed: pid %d→%d, restarts %d", bystanderPid, b.Pid, b.Restarts)
	}
	if b.Points <= before {
		t.Errorf("bystander stopped flowing while the victim was down (%d → %d points)", before, b.Points)
	}
	// Feed counters include points sent again after the restart, so wait
	// on what landed.
	a.WaitForCount(t, distinctSeq("victim"), n)
	a.WaitForCount(t, distinctSeq("bystander"), n)
	a.Stop(t)

	// The restarted plugin resumed from the last position the agent had:
	// every sequence number landed exactly once, none lost in the crash.
	db := testagent.OpenDB(t, a.DB)
	for _, m := range []string{"victim", "bystander"} {
		rows, distinct := testagent.QueryInt(t, db, `SELECT count(*) FROM `+m), testagent.QueryInt(t, db, `SELECT count(DISTINCT seq) FROM `+m)
		maxSeq := testagent.QueryInt(t, db, `SELECT max(seq) FROM `+m)
		if rows != n || distinct != n || maxSeq != n-1 {
			t.Errorf("%s: %d rows, %d distinct seq, max seq %d; want %d, %d, %d", m, rows, distinct, maxSeq, n, n, n-1)
		}
	}
}

func TestSecondSignalExitsWithoutDraining(t *testing.T) {
	// The influx sink points at a port where nothing listens, so the drain
	// on the first SIGTERM cannot finish before shutdown_timeout (20s).
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  down: {type: influxdb, url: "http://%s", bucket: b, retry_initial: 50ms, retry_max: 100ms}
feeds:
  synth: {plugin: synth, sinks: [down], config: {count: 50}}
`, testagent.FreeAddr(t)))
	a.WaitFor(t, "points buffered for the dead sink", func(st agent.Status) bool {
		return len(st.Sinks) == 1 && st.Sinks[0].BufferedPoints >= 50 && st.Sinks[0].Retries > 0
	})
	a.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.Exited():
		t.Fatalf("exited (%v) on the first signal although its sink could not drain", a.ExitErr())
	case <-time.After(500 * time.Millisecond): // still draining, as it should be
	}
	a.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.Exited():
		var ee *exec.ExitError
		if !errors.As(a.ExitErr(), &ee) || ee.ExitCode() != 130 {
			t.Fatalf("second signal: exit %v, want status 130", a.ExitErr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not exit at once")
	}
}

func TestBadFeedConfigFailsThatFeedOnly(t *testing.T) {
	a := testagent.Start(t, `sinks:
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
	st := a.WaitFor(t, "fine done, broken and missing failed", func(st agent.Status) bool {
		return testagent.Feed(st, "fine").Points >= 100 &&
			testagent.Feed(st, "broken").State == agent.FeedFailedConfig &&
			testagent.Feed(st, "missing").State == agent.FeedFailed
	})
	if got := testagent.Feed(st, "broken"); got.LastError != "rate: must not be negative" || got.Restarts != 0 {
		t.Errorf("broken feed: error %q, restarts %d", got.LastError, got.Restarts)
	}
	if got := testagent.Feed(st, "missing").LastError; !strings.Contains(got, `plugin "nosuchplugin" not found`) {
		t.Errorf("missing plugin error: %q", got)
	}
}

func TestSourceFailuresRestartOrStop(t *testing.T) {
	a := testagent.Start(t, `sinks:
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
	st := a.WaitFor(t, "flaky done after restarts, doomed failed", func(st agent.Status) bool {
		return testagent.Feed(st, "flaky").Points >= 300 && testagent.Feed(st, "doomed").State == agent.FeedFailed
	})
	// 300 points, 100 per run: two failures, each resumed where it stopped.
	if f := testagent.Feed(st, "flaky"); f.Restarts != 2 {
		t.Errorf("flaky restarted %d times, want 2", f.Restarts)
	}
	if d := testagent.Feed(st, "doomed"); d.Restarts != 0 || d.LastError != "synth: failing as configured after 10 points" {
		t.Errorf("doomed: %d restarts, error %q; a permanent failure must not restart", d.Restarts, d.LastError)
	}
}

func TestPinnedPluginMismatchRefusesFeed(t *testing.T) {
	a := testagent.Start(t, `plugins:
  synth: {sha256: "`+strings.Repeat("ab", 32)+`"}
sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  pinned: {plugin: synth, sinks: [db], config: {count: 10}}
`)
	st := a.WaitFor(t, "the pinned feed refused", func(st agent.Status) bool {
		return testagent.Feed(st, "pinned").State == agent.FeedFailed
	})
	if got := testagent.Feed(st, "pinned").LastError; !strings.Contains(got, "does not match its pin") || testagent.Feed(st, "pinned").Points != 0 {
		t.Errorf("pinned feed: %q, %d points", got, testagent.Feed(st, "pinned").Points)
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
	// The plugin reports every problem at once, those of decoding (an
	// unknown key) and of checking, each line naming the feed file and
	// the key.
	if want := feedFile + ": feeds.bad.config.bogus: unknown key\n" +
		feedFile + ": feeds.bad.config.symbols: must list at least one symbol\n" +
		feedFile + ": feeds.bad.config.rate: must not be negative\n"; code != 1 || out != want {
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
