//go:build linux

package systemdtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
)

const (
	unit = "sluice.service"
	// probe is where the test installs its helper (probe/) in the tree:
	// under /usr/lib, which the unit leaves executable.
	probe = "/usr/lib/sluice-systemdtest/probe"
	db    = "/var/lib/sluice/sluice.db"
	// testWatchdog replaces the unit's WatchdogSec=30s in a drop-in, so
	// that the watchdog check waits seconds rather than half a minute;
	// the agent pings at half of it either way.
	testWatchdog = 10 * time.Second
	// maxExposure is the `systemd-analyze security` level the unit must
	// not exceed.
	maxExposure = 1.1
)

// writablePlaces are the only places the service may write: its state
// and runtime directories and its private /tmp and /var/tmp.
var writablePlaces = []string{"/var/lib/sluice", "/run/sluice", "/tmp", "/var/tmp"}

// TestUnitUnderSystemd installs Sluice with `make install` into a Debian 12
// tree, boots it with systemd-nspawn and drives the sluice unit with
// systemctl, as an operator would. Each subtest says what it checks; they
// run in order on the same running unit.
func TestUnitUnderSystemd(t *testing.T) {
	if os.Getenv("SLUICE_SYSTEMD") != "1" {
		t.Skip("the unit under systemd in a container: run `make test-systemd` (root; sets SLUICE_SYSTEMD=1)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("SLUICE_SYSTEMD=1 needs root (systemd-nspawn, debootstrap)")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: `make test-systemd` installs systemd-container and debootstrap", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	trackInputs(t, repo)
	start := time.Now()
	c := newContainer(t, baseTree(t, repo))
	install(t, c, repo)
	c.boot(t)
	t.Logf("booted systemd in the container (%s since the test started)", time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			j, _ := c.run("journalctl", "-u", unit, "--no-pager", "-n", "80")
			t.Logf("the unit's journal, last lines:\n%s", j)
		}
	})
	s := &session{c: c}
	s.setup(t)

	steps := []struct {
		name string
		run  func(*testing.T)
		must bool // later steps make no sense if this one fails
	}{
		{"start waits for READY", s.start, true},
		{"reload applies a new feed", s.reload, true},
		{"rejected reload fails and keeps the running config", s.rejectedReload, false},
		{"journal priorities", s.priorities, false},
		{"credentials", s.credentials, false},
		{"sandbox: writable places", s.sandboxWrite, false},
		{"sandbox: nothing writable is executable", s.sandboxExec, false},
		{"memory limits", s.memory, false},
		{"systemd-analyze security", s.security, false},
		{"watchdog kills a stopped agent and systemd restarts it", s.watchdog, true},
		{"stop drains and start resumes", s.stopStart, true},
		{"no gap and no duplicate in SQLite", s.noGaps, false},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) && st.must {
			t.Fatalf("%q failed: skipping the rest", st.name)
		}
	}
	t.Logf("done in %s", time.Since(start).Round(time.Second))
}

// trackInputs reads the files `make install` builds and copies into the
// container that this test binary is not built from: the unit files, the
// install script, the sluice command and the plugins. go test caches a
// passing result keyed on the files the test process opens; make reads
// these in a child process, which the cache does not see.
func trackInputs(t *testing.T, repo string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repo, "systemd", "*"))
	files = append(files, filepath.Join(repo, "scripts", "install.sh"), filepath.Join(repo, "Makefile"))
	for _, dir := range []string{"agent/cmd", "plugins"} {
		filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
	}
	for _, f := range files {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
}

// install puts Sluice into the tree with `make install DESTDIR=`, then the
// test's config, a credential and the probe. The binaries are built by
// make (into bin/, as a user's `make install` does).
func install(t *testing.T, c *container, repo string) {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "-C", repo, "install", "DESTDIR="+c.root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install DESTDIR=%s: %v\n%s", c.root, err, tail(string(out), 30))
	}
	t.Logf("make install DESTDIR=%s: done", c.root)

	build := exec.Command("go", "build", "-o", c.path(probe), "./internal/systemdtest/probe")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // no libc to match the tree's
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}

	c.writeFile(t, "/etc/sluice/sluice.yaml", config(false, false), 0o644)
	// The unit fails to start without the credentials directory.
	if fi, err := os.Stat(c.path("/etc/sluice/credentials")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("make install did not create /etc/sluice/credentials with mode 0700: %v", err)
	}
	// The secret is root-only on disk; systemd hands the service a copy.
	c.writeFile(t, "/etc/sluice/credentials/influx.token", "test-token\n", 0o600)
	// The unit as shipped, but for a shorter watchdog (see testWatchdog)
	// and restart delay.
	c.writeFile(t, "/etc/systemd/system/sluice.service.d/test.conf", fmt.Sprintf(
		"# systemdtest: the watchdog check waits %s instead of 30s\n[Service]\nWatchdogSec=%d\nRestartSec=1\n",
		testWatchdog, int(testWatchdog.Seconds())), 0o644)
	// A file in the container's /tmp, which the service's private /tmp
	// must not show.
	c.writeFile(t, "/tmp/outside-private-tmp", "x\n", 0o644)
}

// config is the test's sluice.yaml: the synth feed into SQLite (one
// symbol, so its seq column counts every point), an InfluxDB sink that no
// feed uses (its token comes from the unit's credentials; InfluxDB is not
// running, which the agent logs as a warning), and optionally a second
// feed and one naming a sink that does not exist.
func config(extra, bad bool) string {
	var b strings.Builder
	b.WriteString(`# written by internal/systemdtest
data_dir: /var/lib/sluice
plugin_dir: /usr/lib/sluice/plugins
feeds_dir: /etc/sluice/feeds.d
shutdown_timeout: 30s
http:
  listen: 127.0.0.1:9273
sinks:
  sqlite:
    type: sqlite
    path: sluice.db
    flush_interval: 200ms
  influx:
    type: influxdb
    url: http://127.0.0.1:8086
    bucket: sluice
    token_file: /run/credentials/sluice.service/sluice_influx.token
feeds:
`)
	feed := func(name, sink string) {
		fmt.Fprintf(&b, `  %s:
    plugin: synth
    sinks: [%s]
    flush_interval: 100ms
    config:
      measurement: %s
      rate: 20
      symbols: [AAA]
`, name, sink, name)
	}
	feed("synth", "sqlite")
	if extra {
		feed("extra", "sqlite")
	}
	if bad {
		feed("bad", "nosuch")
	}
	return b.String()
}

// session is the state the steps share.
type session struct {
	c        *container
	uid, gid string // the sluice user's, in the container
}

// setup does what systemd/README.md tells an operator to do after
// installing: create the user and directories, then enable and start.
func (s *session) setup(t *testing.T) {
	c := s.c
	c.must(t, "systemd-sysusers", "sluice.conf")
	c.must(t, "systemd-tmpfiles", "--create", "sluice.conf")
	c.must(t, "systemctl", "daemon-reload")
	s.uid = strings.TrimSpace(c.must(t, "id", "-u", "sluice"))
	s.gid = strings.TrimSpace(c.must(t, "id", "-g", "sluice"))
}

func (s *session) start(t *testing.T) {
	c := s.c
	t.Log("check: `systemctl enable --now sluice` returns once the agent sent READY=1; the unit is active and shows the agent's status text")
	c.must(t, "systemctl", "enable", "--now", unit)
	p := c.show(t, "Type", "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")
	if p["Type"] != "notify" || p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("after start: Type=%s ActiveState=%s SubState=%s, want notify active running", p["Type"], p["ActiveState"], p["SubState"])
	}
	// Only the agent's sd_notify sets STATUS=.
	if !strings.HasPrefix(p["StatusText"], "feeds ") {
		t.Errorf("StatusText %q: want the agent's status line (\"feeds ...\")", p["StatusText"])
	}
	if got := strings.TrimSpace(c.must(t, "systemctl", "is-active", unit)); got != "active" {
		t.Errorf("is-active: %s", got)
	}
	st := s.status(t)
	if len(st.Feeds) != 1 || st.Feeds[0].Name != "synth" {
		t.Errorf("feeds right after start: %+v, want synth", st.Feeds)
	}
	r := s.waitRows(t, "synth", 20)
	t.Logf("active (MainPID %s, %q); %d synth points in SQLite", p["MainPID"], p["StatusText"], r.Count)
}

func (s *session) reload(t *testing.T) {
	c := s.c
	t.Log("check: with a feed added to sluice.yaml, `systemctl reload sluice` succeeds and the new feed runs and writes")
	pid := c.show(t, "MainPID")["MainPID"]
	cur := c.cursor(t)
	c.writeFile(t, "/etc/sluice/sluice.yaml", config(true, false), 0o644)
	c.must(t, "systemctl", "reload", unit)
	c.waitJournal(t, cur, "Reloaded sluice.service")
	waitFor(t, "feed extra to run", 30*time.Second, func() bool {
		f, ok := feedStatus(s.status(t), "extra")
		return ok && f.State == agent.FeedRunning && f.Points > 0
	})
	s.waitRows(t, "extra", 10)
	if now := c.show(t, "MainPID")["MainPID"]; now != pid {
		t.Errorf("MainPID changed from %s to %s: a reload must not restart the agent", pid, now)
	}
}

func (s *session) rejectedReload(t *testing.T) {
	c := s.c
	t.Log("check: with a broken sluice.yaml, `systemctl reload sluice` fails, the journal says why, and the old config keeps running")
	pid := c.show(t, "MainPID")["MainPID"]
	before, _ := feedStatus(s.status(t), "synth")
	cur := c.cursor(t)
	c.writeFile(t, "/etc/sluice/sluice.yaml", config(true, true), 0o644)
	// Back to the good config however this ends: restarts read it.
	defer c.writeFile(t, "/etc/sluice/sluice.yaml", config(true, false), 0o644)
	_, err := c.run("systemctl", "reload", unit)
	var ee *cmdError
	if err == nil {
		t.Error("systemctl reload exited 0 for a config naming an unknown sink")
	} else if !errors.As(err, &ee) {
		t.Error(err)
	} else {
		t.Logf("systemctl reload failed as it should: %v", ee.err)
	}
	// The agent logs the problems; `sluice reload` (ExecReload) prints them.
	j := c.waitJournal(t, cur, "config reload rejected", `unknown sink "nosuch"`, "Reload failed for sluice.service")
	for line := range strings.Lines(j) {
		if strings.Contains(line, "nosuch") {
			t.Logf("journal: %s", strings.TrimSpace(line))
		}
	}
	if got := strings.TrimSpace(c.must(t, "systemctl", "is-active", unit)); got != "active" {
		t.Errorf("after the rejected reload the unit is %s, want active", got)
	}
	if now := c.show(t, "MainPID")["MainPID"]; now != pid {
		t.Errorf("MainPID changed from %s to %s", pid, now)
	}
	st := s.status(t)
	var names []string
	for _, f := range st.Feeds {
		names = append(names, f.Name+"="+string(f.State))
	}
	if !slices.Equal(names, []string{"extra=running", "synth=running"}) {
		t.Errorf("feeds after the rejected reload: %v, want extra and synth running", names)
	}
	waitFor(t, "synth to keep writing", 30*time.Second, func() bool {
		f, _ := feedStatus(s.status(t), "synth")
		return f.Points > before.Points+10
	})
	c.writeFile(t, "/etc/sluice/sluice.yaml", config(true, false), 0o644)
	c.must(t, "systemctl", "reload", unit)
}

func (s *session) priorities(t *testing.T) {
	c := s.c
	t.Log("check: the agent's levels reach journald as priorities: -p warning shows warnings but no info, -p err shows the rejected reload")
	warn := c.journal(t, "", "-p", "warning")
	if !strings.Contains(warn, "influxdb not reachable yet") {
		t.Errorf("journalctl -p warning lacks the InfluxDB warning:\n%s", tail(warn, 20))
	}
	if strings.Contains(warn, "sluice running") {
		t.Errorf("journalctl -p warning shows an info line:\n%s", tail(warn, 20))
	}
	errs := c.journal(t, "", "-p", "err")
	if !strings.Contains(errs, "config reload rejected") {
		t.Errorf("journalctl -p err lacks the rejected reload:\n%s", tail(errs, 20))
	}
	if strings.Contains(errs, "influxdb not reachable yet") {
		t.Errorf("journalctl -p err shows a warning:\n%s", tail(errs, 20))
	}
}

func (s *session) credentials(t *testing.T) {
	t.Log("check: the service reads its InfluxDB token from $CREDENTIALS_DIRECTORY; the root-only source file stays out of its reach")
	// The agent started, so its config loaded, token_file included.
	got := s.inService(t, false, "read",
		"/run/credentials/sluice.service/sluice_influx.token", "/etc/sluice/credentials/influx.token")
	if !got[0].OK || got[0].Size == 0 {
		t.Errorf("the service cannot read its credential: %+v", got[0])
	}
	if got[1].OK {
		t.Errorf("the service can read the credential's source file %s", got[1].Path)
	}
	env := s.c.must(t, "sh", "-c", "tr '\\0' '\\n' </proc/$(systemctl show -p MainPID --value sluice)/environ")
	if !strings.Contains(env, "CREDENTIALS_DIRECTORY=/run/credentials/sluice.service\n") {
		t.Errorf("the agent's environment has no CREDENTIALS_DIRECTORY=/run/credentials/sluice.service:\n%s", env)
	}
}

func (s *session) sandboxWrite(t *testing.T) {
	t.Logf("check: in the service's mount namespace, only %v can be written, as the sluice user and even as root (the mounts are read-only)", writablePlaces)
	tries := []string{"/", "/etc", "/etc/sluice", "/usr", "/usr/lib/sluice/plugins", "/var", "/var/log",
		"/run", "/run/lock", "/run/systemd", "/dev", "/dev/shm", "/dev/mqueue",
		"/var/lib/sluice", "/run/sluice", "/tmp", "/var/tmp"}
	asUser := s.inService(t, false, append([]string{"write"}, tries...)...)
	asRoot := s.inService(t, true, append([]string{"write"}, tries...)...)
	verdict := func(r result) string {
		if r.OK {
			return "written"
		}
		return "refused (" + r.Err + ")"
	}
	for i, p := range tries {
		u, r := asUser[i], asRoot[i]
		t.Logf("write into %-24s as sluice: %-34s as root: %s", p, verdict(u), verdict(r))
		if want := allowed(p); u.OK != want || r.OK != want {
			t.Errorf("write into %s: as sluice %s, as root %s; want both %s", p, verdict(u), verdict(r), map[bool]string{true: "written", false: "refused"}[want])
		}
	}
	// Then every directory and file, not just the ones named above:
	// access(2) finds the candidates, a real write attempt decides (it
	// says yes for devpts, where nothing can be created).
	for _, root := range []bool{false, true} {
		who := map[bool]string{false: "sluice", true: "root"}[root]
		var outside []string
		for _, r := range s.inService(t, root, "writable", "/") {
			if !allowed(r.Path) {
				outside = append(outside, r.Path)
			}
		}
		if len(outside) == 0 {
			continue
		}
		var written []string
		for _, r := range s.inService(t, root, append([]string{"write"}, outside...)...) {
			if r.OK {
				written = append(written, r.Path)
			} else {
				t.Logf("as %s, access(2) allows writing %s, but writing fails: %s", who, r.Path, r.Err)
			}
		}
		if n := len(written); n > 0 {
			if n > 12 {
				written = append(written[:12], fmt.Sprintf("... (%d in all)", n))
			}
			t.Errorf("as %s, writable outside %v:\n\t%s", who, writablePlaces, strings.Join(written, "\n\t"))
		}
	}
	if r := s.inService(t, false, "read", "/tmp/outside-private-tmp"); r[0].OK {
		t.Error("the service's /tmp shows the container's /tmp: not private")
	}
}

func (s *session) sandboxExec(t *testing.T) {
	c := s.c
	t.Log("check: a program copied into each writable place cannot be executed by the service; plugins in /usr/lib/sluice/plugins run")
	// The same probe can exec from the container's own /tmp: a refusal
	// below is the sandbox's, not the probe's.
	out := c.must(t, probe, "exec", "/tmp")
	if r := parseResults(t, out); !r[0].OK {
		t.Fatalf("control: exec from the container's /tmp failed (%s): the probe cannot tell", r[0].Err)
	}
	for _, r := range s.inService(t, false, append([]string{"exec"}, writablePlaces...)...) {
		t.Logf("exec from %-16s %s", r.Path, map[bool]string{true: "ran", false: "refused (" + r.Err + ")"}[r.OK])
		if r.OK {
			t.Errorf("exec from %s succeeded: it should be mounted noexec", r.Path)
		} else if strings.HasPrefix(r.Err, "copy:") {
			t.Errorf("%s is not writable, so exec was not tried: %s", r.Path, r.Err)
		}
	}
	if f, ok := feedStatus(s.status(t), "synth"); !ok || f.Pid == 0 {
		t.Errorf("the synth plugin is not running: %+v", f)
	}
}

func (s *session) memory(t *testing.T) {
	c := s.c
	t.Log("check: MemoryHigh and MemoryMax are set (512M, 1G)")
	p := c.show(t, "MemoryHigh", "MemoryMax")
	if p["MemoryHigh"] != strconv.Itoa(512<<20) || p["MemoryMax"] != strconv.Itoa(1<<30) {
		t.Errorf("MemoryHigh=%s MemoryMax=%s, want %d and %d", p["MemoryHigh"], p["MemoryMax"], 512<<20, 1<<30)
	}
	for _, dir := range []string{"/sys/fs/cgroup/system.slice/sluice.service", "/sys/fs/cgroup/unified/system.slice/sluice.service"} {
		if out, err := c.run("cat", dir+"/memory.max"); err == nil {
			if strings.TrimSpace(out) != strconv.Itoa(1<<30) {
				t.Errorf("%s/memory.max: %s", dir, out)
			}
			return
		}
	}
	t.Log("the container has no cgroup v2 memory controller (hybrid cgroup host): the kernel limit itself is not checked here")
}

var exposure = regexp.MustCompile(`Overall exposure level for sluice\.service: (\d+\.\d+)`)

func (s *session) security(t *testing.T) {
	t.Logf("check: `systemd-analyze security sluice.service` on the loaded unit rates it %.1f or lower", maxExposure)
	out, err := s.c.run("systemd-analyze", "security", unit, "--no-pager")
	m := exposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level (%v):\n%s", err, out)
	}
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "✗") {
			t.Log(strings.Join(strings.Fields(line), " "))
		}
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v > maxExposure {
		t.Errorf("exposure %s, want at most %.1f", m[1], maxExposure)
	}
	t.Logf("exposure %s", m[1])
}

func (s *session) watchdog(t *testing.T) {
	c := s.c
	t.Logf("check: SIGSTOP the agent; after WatchdogSec (%s in the test's drop-in) systemd aborts it with SIGABRT and restarts it; points keep coming", testWatchdog)
	p := c.show(t, "MainPID", "NRestarts")
	before := s.rows(t, "synth")
	cur := c.cursor(t)
	c.must(t, "systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", unit)
	stopped := time.Now()
	restarts, _ := strconv.Atoi(p["NRestarts"])
	waitFor(t, "systemd to restart the stopped agent", testWatchdog+time.Minute, func() bool {
		q := c.show(t, "MainPID", "NRestarts", "ActiveState")
		n, _ := strconv.Atoi(q["NRestarts"])
		return n == restarts+1 && q["MainPID"] != p["MainPID"] && q["MainPID"] != "0" && q["ActiveState"] == "active"
	})
	t.Logf("restarted %s after SIGSTOP", time.Since(stopped).Round(100*time.Millisecond))
	c.waitJournal(t, cur,
		"sluice.service: Watchdog timeout",
		fmt.Sprintf("Killing process %s (sluice) with signal SIGABRT", p["MainPID"]),
		"Failed with result 'watchdog'")
	after := s.waitRows(t, "synth", before.Count+20)
	t.Logf("synth rows: %d before the stop, %d after the restart", before.Count, after.Count)
	checkContiguous(t, "synth", after)
}

var nextSeq = regexp.MustCompile(`msg="synth starting" feed=synth .*next_seq=(\d+)`)

func (s *session) stopStart(t *testing.T) {
	c := s.c
	t.Log("check: `systemctl stop` drains: the agent exits 0 and SQLite then holds every point up to the one the feed resumes from at the next start")
	cur := c.cursor(t)
	c.must(t, "systemctl", "stop", unit)
	p := c.show(t, "ActiveState", "Result", "ExecMainStatus")
	if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainStatus"] != "0" {
		t.Errorf("after stop: %v, want inactive, success, exit status 0", p)
	}
	c.waitJournal(t, cur, "shutting down: stopping feeds, then draining sinks", `msg="sluice stopped"`)
	atStop := s.rows(t, "synth")
	checkContiguous(t, "synth", atStop)

	cur = c.cursor(t)
	c.must(t, "systemctl", "start", unit)
	j := c.waitJournal(t, cur, `msg="synth starting" feed=synth`)
	m := nextSeq.FindStringSubmatch(j)
	if m == nil {
		t.Fatalf("no next_seq in the synth start line:\n%s", tail(j, 20))
	}
	next, _ := strconv.ParseInt(m[1], 10, 64)
	if next != atStop.Max+1 {
		t.Errorf("SQLite held seq %d..%d at stop, but the feed resumed at %d: the stop did not drain", atStop.Min, atStop.Max, next)
	}
	t.Logf("stopped with seq %d..%d in SQLite; resumed at %d", atStop.Min, atStop.Max, next)
	s.waitRows(t, "synth", atStop.Count+20)
}

func (s *session) noGaps(t *testing.T) {
	t.Log("check: across the watchdog kill, the restarts and the reloads, each feed's seq runs from 0 without a gap or a duplicate (the table's unique key on symbol and seq would merge a duplicate: count and distinct show it)")
	for _, table := range []string{"synth", "extra"} {
		r := s.rows(t, table)
		checkContiguous(t, table, r)
		t.Logf("%s: %d rows, seq %d..%d", table, r.Count, r.Min, r.Max)
	}
}

func checkContiguous(t *testing.T, table string, r rows) {
	t.Helper()
	if r.Count == 0 || r.Min != 0 || r.Count != r.Distinct || r.Max-r.Min+1 != r.Count || len(r.Missing) > 0 {
		t.Errorf("%s: %d rows, %d distinct seq, %d..%d, missing %v: want seq 0..n once each", table, r.Count, r.Distinct, r.Min, r.Max, r.Missing)
	}
}

// status is `sluice status -json` in the container, the CLI an operator uses.
func (s *session) status(t *testing.T) agent.Status {
	t.Helper()
	var st agent.Status
	out := s.c.must(t, "/usr/bin/sluice", "status", "-json", "-config", "/etc/sluice/sluice.yaml")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("sluice status -json: %v\n%s", err, out)
	}
	slices.SortFunc(st.Feeds, func(a, b agent.FeedStatus) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func feedStatus(st agent.Status, name string) (agent.FeedStatus, bool) {
	for _, f := range st.Feeds {
		if f.Name == name {
			return f, true
		}
	}
	return agent.FeedStatus{}, false
}

// rows describes a table's seq column (probe rows).
type rows struct {
	Count, Distinct, Min, Max int64
	Missing                   [][2]int64
	Err                       string
}

// rows reads table from the SQLite file as the sluice user, read-only.
func (s *session) rows(t *testing.T, table string) rows {
	t.Helper()
	out := s.c.must(t, "setpriv", "--reuid=sluice", "--regid=sluice", "--clear-groups", probe, "rows", db, table)
	var r rows
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe rows: %v\n%s", err, out)
	}
	return r
}

// waitRows waits until table has at least n rows.
func (s *session) waitRows(t *testing.T, table string, n int64) rows {
	t.Helper()
	var r rows
	waitFor(t, fmt.Sprintf("%d rows in %s", n, table), time.Minute, func() bool {
		r = s.rows(t, table)
		return r.Count >= n
	})
	return r
}

// result is one probe outcome (probe write, exec, read).
type result struct {
	Path string
	OK   bool
	Err  string
	Size int
}

// inService runs the probe in the running service's mount namespace
// (nsenter into its main process), as the sluice user or as root. It
// does not take on the service's seccomp filter or capabilities: what
// it checks is the file system the service sees.
func (s *session) inService(t *testing.T, asRoot bool, args ...string) []result {
	t.Helper()
	pid := s.c.show(t, "MainPID")["MainPID"]
	cmd := []string{"nsenter", "-t", pid, "-m"}
	if !asRoot {
		cmd = append(cmd, "-S", s.uid, "-G", s.gid)
	}
	return parseResults(t, s.c.must(t, append(append(cmd, "--", probe), args...)...))
}

func parseResults(t *testing.T, out string) []result {
	t.Helper()
	var rs []result
	for line := range strings.Lines(out) {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("probe output %q: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// allowed reports whether p is one of writablePlaces or under one.
func allowed(p string) bool {
	for _, w := range writablePlaces {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	return false
}
