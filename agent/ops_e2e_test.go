package agent_test

// End-to-end tests of the operations surface, with the real binaries:
// reload, readiness, metrics, sd_notify and the watchdog, status and tap.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// sluiceCmd runs the sluice command with args and returns its stdout,
// stderr and exit code.
func sluiceCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testbin.Sluice(t), args...)
	cmd.Env = testbin.Env()
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func processGone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// A feed file dropped into feeds_dir starts its feed; changing it restarts
// the feed where it stopped; an invalid file is kept out while everything
// runs on; removing a file stops its feed. Main-file changes apply on
// `sluice reload` and on SIGHUP. Feeds not involved are never disturbed.
func TestReloadAppliesFeedChanges(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	if err := os.Mkdir(feedsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	mainBody := `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  keeper: {plugin: synth, sinks: [db], config: {measurement: keeper, rate: 200}}
`
	path := testagent.WriteConfigFeedsDir(t, dir, feedsDir, mainBody)
	a := testagent.Launch(t, path)
	st := a.WaitFor(t, "keeper running", func(st agent.Status) bool { return testagent.Feed(st, "keeper").State == agent.FeedRunning })
	keeperPid := testagent.Feed(st, "keeper").Pid
	keeperUndisturbed := func(st agent.Status) {
		t.Helper()
		if k := testagent.Feed(st, "keeper"); k.Pid != keeperPid || k.Restarts != 0 || k.State != agent.FeedRunning {
			t.Fatalf("keeper was disturbed: pid %d→%d, restarts %d, state %s", keeperPid, k.Pid, k.Restarts, k.State)
		}
	}

	// Added by dropping a file.
	added := filepath.Join(feedsDir, "added.yaml")
	testagent.WriteFile(t, added, fmt.Sprintf("feeds:\n  added: {plugin: synth, sinks: [db], config: {measurement: added, rate: 2000, count: %d}}\n", n))
	st = a.WaitFor(t, "the dropped-in feed flowing", func(st agent.Status) bool { return testagent.Feed(st, "added").Points >= 3000 })
	addedPid := testagent.Feed(st, "added").Pid
	keeperUndisturbed(st)

	// Changed: restarts and resumes from its buffered position.
	testagent.WriteFile(t, added, fmt.Sprintf("feeds:\n  added: {plugin: synth, sinks: [db], config: {measurement: added, rate: 4000, count: %d}}\n", n))
	st = a.WaitFor(t, "the changed feed restarted", func(st agent.Status) bool {
		f := testagent.Feed(st, "added")
		return f.Pid != addedPid && f.State == agent.FeedRunning
	})
	keeperUndisturbed(st)
	a.WaitForCount(t, distinctSeq("added"), n)
	st = a.WaitFor(t, "the changed feed done", func(st agent.Status) bool { return testagent.Feed(st, "added").Points >= n })
	// Counters carry over the restart. Starting again from seq 0 would have
	// sent the 3000+ points before the change twice.
	if got := testagent.Feed(st, "added").Points; got > n+500 {
		t.Errorf("the changed feed received %d points for %d: it did not resume where it stopped", got, n)
	}

	// An invalid file is rejected whole; the running feeds carry on.
	bad := filepath.Join(feedsDir, "bad.yaml")
	testagent.WriteFile(t, bad, "feeds:\n  bad: {plugin: synth, sinks: [nosuch]}\n  added: {plugin: synth, sinks: [db]}\n")
	st = a.WaitFor(t, "the invalid file rejected", func(st agent.Status) bool { return st.ConfigError != "" })
	if !strings.Contains(st.ConfigError, bad) || testagent.HasFeed(st, "bad") {
		t.Errorf("config_error %q does not name %s, or the bad feed started", st.ConfigError, bad)
	}
	if f := testagent.Feed(st, "added"); f.Pid == 0 || f.State != agent.FeedRunning {
		t.Errorf("the added feed was disturbed by a rejected reload: %+v", f)
	}
	keeperUndisturbed(st)
	out, _, code := sluiceCmd(t, "status", "-config", path)
	if code != 0 || !strings.Contains(out, "last reload rejected") || !strings.Contains(out, bad) {
		t.Errorf("sluice status after a rejected reload: exit %d\n%s", code, out)
	}
	if _, body := get(t, a.Base+"/metrics"); !strings.Contains(body, "sluice_config_last_reload_successful 0") {
		t.Error("metrics do not show the rejected reload")
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	a.WaitFor(t, "the config error cleared", func(st agent.Status) bool { return st.ConfigError == "" })

	// Removed: its plugin stops, its rows stay.
	st, _ = a.Status(t)
	addedPid = testagent.Feed(st, "added").Pid
	if err := os.Remove(added); err != nil {
		t.Fatal(err)
	}
	st = a.WaitFor(t, "the removed feed gone", func(st agent.Status) bool { return !testagent.HasFeed(st, "added") })
	keeperUndisturbed(st)
	if !processGone(addedPid) {
		t.Error("the removed feed's plugin still runs")
	}

	// Main-file changes: `sluice reload` adds a feed and reports a sink
	// change it cannot apply.
	writeConfigKeepAddr(t, path, strings.Replace(mainBody, "path: sluice.db}", "path: sluice.db, batch_size: 100}", 1)+
		"  viamain: {plugin: synth, sinks: [db], config: {measurement: viamain, rate: 100}}\n")
	out, errOut, code := sluiceCmd(t, "reload", "-config", path)
	if want := "reloaded; added: viamain; not applied until a restart: sinks.db\n"; code != 0 || out != want {
		t.Errorf("sluice reload: exit %d, %q (stderr %q); want %q", code, out, errOut, want)
	}
	st = a.WaitFor(t, "viamain running", func(st agent.Status) bool { return testagent.Feed(st, "viamain").State == agent.FeedRunning })
	if strings.Join(st.RestartNeeded, ",") != "sinks.db" {
		t.Errorf("restart_needed = %v", st.RestartNeeded)
	}
	keeperUndisturbed(st)

	// SIGHUP applies the main file too.
	writeConfigKeepAddr(t, path, mainBody)
	a.Cmd.Process.Signal(syscall.SIGHUP)
	st = a.WaitFor(t, "viamain removed on SIGHUP", func(st agent.Status) bool { return !testagent.HasFeed(st, "viamain") && st.RestartNeeded == nil })
	keeperUndisturbed(st)

	// An invalid main file through `sluice reload`: rejected with its errors.
	writeConfigKeepAddr(t, path, mainBody+"  oops: {plugin: synth, sinks: [db], bogus: 1}\n")
	_, errOut, code = sluiceCmd(t, "reload", "-config", path)
	if code != 1 || !strings.Contains(errOut, "reload rejected") || !strings.Contains(errOut, "feeds.oops.bogus") {
		t.Errorf("sluice reload of an invalid config: exit %d, %s", code, errOut)
	}
	a.Stop(t)

	db := testagent.OpenDB(t, a.DB)
	if rows, maxSeq := testagent.QueryInt(t, db, `SELECT count(DISTINCT seq) FROM added`), testagent.QueryInt(t, db, `SELECT max(seq) FROM added`); rows != n || maxSeq != n-1 {
		t.Errorf("added: %d distinct seq, max %d; want %d, %d", rows, maxSeq, n, n-1)
	}
}

// writeConfigKeepAddr rewrites the sinks-and-feeds part of a config that
// writeConfig made, keeping everything above it (the listen address).
func writeConfigKeepAddr(t *testing.T, path, sinksAndFeeds string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(raw), "\nsinks:")
	if !ok {
		t.Fatalf("%s has no sinks section", path)
	}
	testagent.WriteFile(t, path, head+"\n"+sinksAndFeeds)
}

// fakeInflux answers the v2 write API: 401 while deny is set, else 204.
type fakeInflux struct {
	addr   string
	deny   atomic.Bool
	writes atomic.Int64
}

// startFakeInflux serves on addr ("127.0.0.1:0" for any port).
func startFakeInflux(t *testing.T, addr string) *fakeInflux {
	t.Helper()
	f := &fakeInflux{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if f.deny.Load() {
			http.Error(w, `{"code":"unauthorized","message":"unauthorized access"}`, http.StatusUnauthorized)
			return
		}
		f.writes.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// promName finds metric names in a PromQL expression.
var promName = regexp.MustCompile(`\b(?:sluice|go|process)_[a-z0-9_]+\b`)

// dashboardMetrics returns every metric name that a Grafana dashboard's
// Prometheus queries use, read from the dashboards themselves.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found (%v)", err)
	}
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "expr" {
					for _, name := range promName.FindAllString(s, -1) {
						seen[name] = true
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(doc)
	}
	names := slices.Sorted(maps.Keys(seen))
	if len(names) < 10 {
		t.Fatalf("found only %v in the dashboards' queries", names)
	}
	return names
}

// metricValue finds one sample's value in a Prometheus text exposition.
func metricValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in the metrics", series)
	return 0
}

func readiness(t *testing.T, a *testagent.Agent) (int, agent.Readiness) {
	t.Helper()
	code, body := get(t, a.Base+"/readyz")
	var r agent.Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("readyz: %v: %s", err, body)
	}
	return code, r
}

// Readiness follows the feeds and sinks, and /metrics exports what the
// dashboards query.
func TestReadinessAndMetrics(t *testing.T) {
	influx := startFakeInflux(t, "127.0.0.1:0")
	influx.deny.Store(true)
	body := `sinks:
  db: {type: sqlite, path: sluice.db}
  influx: {type: influxdb, url: "http://%s", bucket: b, token: t, retry_initial: 50ms, retry_max: 200ms}
  live: {type: live, listen: %q, anonymous_channels: ["*"]}
feeds:
  good: {plugin: synth, sinks: [db, influx, live], config: {measurement: good, rate: 500}}
  broken: {plugin: synth, sinks: [db], config: {rate: %d}}
`
	liveAddr := testagent.FreeAddr(t)
	path := testagent.WriteConfig(t, t.TempDir(), fmt.Sprintf(body, influx.addr, liveAddr, -5))
	a := testagent.Launch(t, path)
	a.WaitFor(t, "broken refused, influx failed, db writing", func(st agent.Status) bool {
		return testagent.Feed(st, "broken").State == agent.FeedFailedConfig &&
			testagent.Sink(st, "influx").State == "failed" && testagent.Written(st, "db") > 0
	})
	code, r := readiness(t, a)
	reasons := strings.Join(r.Reasons, "\n")
	if code != http.StatusServiceUnavailable || r.Ready ||
		!strings.Contains(reasons, "feed broken is failed_config: rate: must not be negative") ||
		!strings.Contains(reasons, "sink influx is failed") || strings.Contains(reasons, "good") {
		t.Errorf("readyz: %d %+v", code, r)
	}

	_, metrics := get(t, a.Base+"/metrics")
	for _, name := range dashboardMetrics(t) {
		if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(metrics) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if v := metricValue(t, metrics, `sluice_feed_up{feed="good"}`); v != 1 {
		t.Errorf("good up = %v", v)
	}
	if v := metricValue(t, metrics, `sluice_feed_up{feed="broken"}`); v != 0 {
		t.Errorf("broken up = %v", v)
	}
	if v := metricValue(t, metrics, `sluice_sink_failed{sink="influx"}`); v != 1 {
		t.Errorf("influx failed = %v", v)
	}
	if v := metricValue(t, metrics, `sluice_lag_seconds_count{sink="db"}`); v <= 0 {
		t.Errorf("no lag observed for db: %v", v)
	}
	if v := metricValue(t, metrics, `sluice_sink_points_written_total{sink="db"}`); v <= 0 {
		t.Errorf("db written = %v", v)
	}

	// The token is fixed and the broken feed's config too: ready.
	influx.deny.Store(false)
	writeConfigKeepAddr(t, path, fmt.Sprintf(body, influx.addr, liveAddr, 5))
	if out, errOut, code := sluiceCmd(t, "reload", "-config", path); code != 0 || out != "reloaded; restarted: broken\n" {
		t.Fatalf("sluice reload: exit %d, %q %q", code, out, errOut)
	}
	a.WaitFor(t, "all feeds running and influx writing", func(st agent.Status) bool {
		return testagent.Feed(st, "broken").State == agent.FeedRunning && testagent.Sink(st, "influx").State == "ok" && testagent.Written(st, "influx") > 0
	})
	if code, r := readiness(t, a); code != http.StatusOK || !r.Ready {
		t.Errorf("readyz once healthy: %d %+v", code, r)
	}
	if influx.writes.Load() == 0 {
		t.Error("the fake InfluxDB saw no write")
	}
	if code, _ := get(t, a.Base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	a.Stop(t)
}

// notifySocket is a fake systemd notification socket.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
		}
	}()
	return ns
}

// count is how many datagrams so far carry state.
func (ns *notifySocket) count(state string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := 0
	for _, m := range ns.msgs {
		for _, line := range strings.Split(m, "\n") {
			if line == state {
				n++
			}
		}
	}
	return n
}

func (ns *notifySocket) waitFor(t *testing.T, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ns.count(state) == 0 {
		if time.Now().After(deadline) {
			ns.mu.Lock()
			defer ns.mu.Unlock()
			t.Fatalf("no %s on the notify socket; got %q", state, ns.msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingsDuring counts the WATCHDOG=1 pings that arrive within d.
func (ns *notifySocket) pingsDuring(d time.Duration) int {
	before := ns.count("WATCHDOG=1")
	time.Sleep(d)
	return ns.count("WATCHDOG=1") - before
}

// The agent tells systemd it is ready, keeps pinging the watchdog while a
// sink is down and retrying, stops when a sink write hangs, and says it
// is stopping.
func TestSystemdNotifyAndWatchdog(t *testing.T) {
	ns := listenNotify(t)
	influxAddr := testagent.FreeAddr(t) // nothing listens there yet
	path := testagent.WriteConfig(t, t.TempDir(), fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
  influx: {type: influxdb, url: "http://%s", bucket: b, timeout: 1h, retry_initial: 50ms, retry_max: 100ms}
feeds:
  synth: {plugin: synth, sinks: [db, influx], config: {rate: 500}}
`, influxAddr))
	// A 1s watchdog: pings every 500ms; a write is hung after 2s.
	a := testagent.Launch(t, path, "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=1000000")
	ns.waitFor(t, "READY=1")
	if ns.count("STOPPING=1") != 0 {
		t.Fatal("STOPPING=1 before any signal")
	}

	// InfluxDB refuses connections: the sink retries, which is alive.
	a.WaitFor(t, "influx holding points and retrying", func(st agent.Status) bool {
		s := testagent.Sink(st, "influx")
		return s.BufferedPoints > 0 && s.Retries > 3 && testagent.Written(st, "db") > 0
	})
	if n := ns.pingsDuring(2 * time.Second); n < 2 {
		t.Errorf("%d watchdog pings in 2s while a sink was retrying; an outage must not restart the agent", n)
	}

	// InfluxDB accepts the write and never answers: the write hangs.
	release := make(chan struct{})
	hang := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/write" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", influxAddr)
	if err != nil {
		t.Fatal(err)
	}
	go hang.Serve(ln)
	t.Cleanup(func() { hang.Close() })
	a.WaitFor(t, "a write in progress", func(st agent.Status) bool { return !testagent.Sink(st, "influx").WriteStarted.IsZero() })
	time.Sleep(2500 * time.Millisecond) // past the hung bound
	if n := ns.pingsDuring(2 * time.Second); n != 0 {
		t.Errorf("%d watchdog pings while a sink write hung", n)
	}

	// The write returns: the sink catches up and the pings resume.
	close(release)
	a.WaitFor(t, "influx writing", func(st agent.Status) bool { return testagent.Written(st, "influx") > 0 })
	if n := ns.pingsDuring(2 * time.Second); n < 2 {
		t.Errorf("%d watchdog pings in 2s with both sinks writing; want one every 500ms", n)
	}
	ns.mu.Lock()
	var status string
	for _, m := range ns.msgs {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "STATUS=") {
				status = line
			}
		}
	}
	ns.mu.Unlock()
	if !strings.HasPrefix(status, "STATUS=feeds 1/1 running, sinks 2/2 ok") {
		t.Errorf("last STATUS line %q", status)
	}

	a.Stop(t)
	ns.waitFor(t, "STOPPING=1")
}

var tapLine = regexp.MustCompile(`^alpha,source=synth,symbol=(AAA|BBB) price=[0-9.]+,seq=(\d+)i,size=\du,even=(true|false),label="p(\d+)" (\d+)$`)

// `sluice tap` prints one feed's points as they flow; `sluice status`
// prints the tables.
func TestTapAndStatusCommands(t *testing.T) {
	path := testagent.WriteConfig(t, t.TempDir(), `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  alpha: {plugin: synth, sinks: [db], config: {measurement: alpha, symbols: [AAA, BBB], rate: 300}}
  beta: {plugin: synth, sinks: [db], config: {measurement: beta, rate: 300}}
`)
	a := testagent.Launch(t, path)
	a.WaitFor(t, "both feeds flowing", func(st agent.Status) bool {
		return testagent.Feed(st, "alpha").Points > 0 && testagent.Feed(st, "beta").Points > 0 && testagent.Written(st, "db") > 0
	})

	tapCmd := exec.Command(testbin.Sluice(t), "tap", "alpha", "-config", path)
	tapCmd.Env = testbin.Env()
	stdout, err := tapCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var notes strings.Builder
	tapCmd.Stderr = &notes
	if err := tapCmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	const want = 50
	start := time.Unix(1704067200, 0) // synth's default start: seq n is at start + n ms
	for i := 0; i < want; i++ {
		select {
		case line := <-lines:
			m := tapLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("tap line %q is not an alpha point in line protocol", line)
			}
			seq, _ := strconv.ParseInt(m[2], 10, 64)
			ts, _ := strconv.ParseInt(m[5], 10, 64)
			if m[4] != m[2] || ts != start.Add(time.Duration(seq)*time.Millisecond).UnixNano() {
				t.Fatalf("tap line %q: label or time do not match seq", line)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d tap lines after 30s, want %d; stderr: %s", i, want, notes.String())
		}
	}
	tapCmd.Process.Signal(os.Interrupt)
	for range lines { // the rest, until the tap exits: the reader ends
	}
	if err := tapCmd.Wait(); err != nil {
		t.Errorf("tap after Ctrl-C: %v", err)
	}
	if !strings.Contains(notes.String(), "# tapping feed alpha") {
		t.Errorf("tap stderr: %q", notes.String())
	}
	if _, errOut, code := sluiceCmd(t, "tap", "nosuch", "-config", path); code != 1 || !strings.Contains(errOut, `no feed "nosuch" is running`) {
		t.Errorf("tap of an unknown feed: exit %d, %s", code, errOut)
	}

	// Let the rates fill in, then read the table.
	a.WaitFor(t, "rates known", func(st agent.Status) bool {
		return testagent.Feed(st, "alpha").PointsPerSec > 0 && testagent.Sink(st, "db").PointsPerSec > 0
	})
	out, errOut, code := sluiceCmd(t, "status", "-config", path)
	if code != 0 {
		t.Fatalf("sluice status: exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^FEED +STATE +PID +POINTS +PTS/S +RESTARTS +LAST BATCH +LAST ERROR$`,
		`(?m)^alpha +running +\d+ +\d+ +[0-9.]+k? +0 +[0-9.]+s ago +-$`,
		`(?m)^beta +running +\d+ `,
		`(?m)^SINK +STATE +BUFFERED +WRITTEN +DROPPED +RETRIES +PTS/S +LAG +LAST ERROR$`,
		`(?m)^db +ok +\d+ \([0-9.]+ [KMG]?i?B\) +\d+ +0 +0 +[0-9.]+k? +[0-9.]+[smhd] +-$`,
		`(?m)^disk buffer: `,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("sluice status output does not match %s:\n%s", re, out)
		}
	}
	out, _, code = sluiceCmd(t, "status", "-json", "-config", path)
	var st agent.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Feeds) != 2 {
		t.Errorf("sluice status -json: exit %d, %v:\n%s", code, err, out)
	}
	a.Stop(t)
}
