//go:build linux

package systemdtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The container: a Debian 12 tree built once with debootstrap and cached,
// copied for each run so that every run starts clean, booted with
// systemd-nspawn, and driven from the host with nsenter (with
// --register=no there is no machined, so no machinectl or
// `systemctl --machine`).

const (
	suite = "bookworm"
	// packages go into the tree on top of debootstrap's minbase variant
	// (procps: /bin/kill, which any real system has).
	packages = "systemd,systemd-sysv,dbus,procps"
	// cmdTimeout bounds each command run in the container; `systemctl
	// stop` may take the unit's TimeoutStopSec (45 s).
	cmdTimeout = 90 * time.Second
	// bootTimeout bounds the boot up to `systemctl is-system-running`.
	bootTimeout = 2 * time.Minute
	// containerPath is PATH inside the container.
	containerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// baseTree returns the cached Debian tree, building it with debootstrap
// on first use (about a minute). The cache key covers the suite, the
// packages and the mirror; a half-built tree never takes the final name.
func baseTree(t *testing.T, repo string) string {
	t.Helper()
	mirror := debianMirror(aptSources("/etc"), suite)
	if mirror == "" {
		mirror = defaultMirror
	}
	sum := sha256.Sum256([]byte(suite + "\n" + packages + "\n" + mirror))
	cache := filepath.Join(repo, ".cache", "systemd")
	dir := filepath.Join(cache, suite+"-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "usr", "lib", "systemd", "systemd")); err == nil {
		t.Logf("Debian %s tree: %s (cached)", suite, dir)
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, "partial-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// MkdirTemp makes it 0700; as the container's / it must be 0755.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("building the Debian %s tree with debootstrap from %s (once; cached in %s)", suite, mirror, cache)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+packages, suite, tmp, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tail(string(out), 40))
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatal(err)
	}
	t.Logf("debootstrap took %s", time.Since(start).Round(time.Second))
	return dir
}

// container is one booted copy of the tree.
type container struct {
	root    string // the container's root directory on the host
	name    string
	console string // its console output, shown when a test fails
	nspawn  *exec.Cmd
	exited  chan struct{}
	leader  int // host pid of the container's PID 1 (systemd)
}

// newContainer copies base to a fresh directory, which setup (install,
// config) fills before boot.
func newContainer(t *testing.T, base string) *container {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("cp", "-a", base, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the tree: %v\n%s", err, out)
	}
	return &container{root: root, name: fmt.Sprintf("sluicetest-%d", os.Getpid()), console: filepath.Join(dir, "console.log")}
}

// path is p inside the container, as a host path.
func (c *container) path(p string) string { return filepath.Join(c.root, p) }

func (c *container) writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(c.path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(p), []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.path(p), mode); err != nil {
		t.Fatal(err)
	}
}

// boot starts systemd-nspawn and waits until systemd inside reports the
// boot finished. The container is shut down (SIGTERM to nspawn: an
// orderly poweroff) when the test ends.
func (c *container) boot(t *testing.T) {
	t.Helper()
	log, err := os.Create(c.console)
	if err != nil {
		t.Fatal(err)
	}
	c.nspawn = exec.Command("systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
		"--private-network", "--console=read-only", "--machine="+c.name, "--directory="+c.root)
	c.nspawn.Stdout, c.nspawn.Stderr = log, log
	// If the test binary dies (a go test timeout), the container powers
	// off instead of running on.
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := c.nspawn.Start(); err != nil {
		log.Close()
		t.Fatalf("systemd-nspawn: %v", err)
	}
	c.exited = make(chan struct{})
	go func() {
		c.nspawn.Wait()
		log.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.shutdown(t) })

	deadline := time.Now().Add(bootTimeout)
	for c.leader == 0 {
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited during boot:\n%s", c.consoleTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no container init after %s:\n%s", bootTimeout, c.consoleTail())
		}
		c.leader = containerInit(c.nspawn.Process.Pid)
	}
	// systemctl fails until systemd has its private socket; then --wait
	// returns when the boot is done.
	var state string
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		out, err := c.runCtx(ctx, "systemctl", "is-system-running", "--wait")
		cancel()
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not finish booting (%q, %v):\n%s", state, err, c.consoleTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if state == "degraded" {
		failed, _ := c.run("systemctl", "--failed", "--no-legend")
		t.Logf("container booted degraded (units that failed do not concern sluice):\n%s", failed)
	}
}

// containerInit finds the child of nspawn that is PID 1 in its own pid
// namespace, or 0.
func containerInit(nspawn int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nspawn))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for line := range strings.Lines(string(status)) {
				if f := strings.Fields(line); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
					return pid
				}
			}
		}
	}
	return 0
}

func (c *container) shutdown(t *testing.T) {
	if c.nspawn == nil || c.nspawn.Process == nil {
		return
	}
	c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		t.Logf("the container did not power off within a minute: killing it")
		c.nspawn.Process.Kill()
		<-c.exited
	}
}

func (c *container) consoleTail() string {
	b, _ := os.ReadFile(c.console)
	return tail(string(b), 40)
}

// run runs a command in the container (all its namespaces, as root, with
// a clean environment) and returns its standard output; the error
// carries the exit status and standard error.
func (c *container) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return c.runCtx(ctx, args...)
}

func (c *container) runCtx(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-t", strconv.Itoa(c.leader), "-a", "--",
		"/usr/bin/env", "-i", "PATH=" + containerPath, "LANG=C.UTF-8",
		"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	// nsenter forks to enter the pid namespace: killing it on timeout
	// leaves its child holding the output pipes.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = &cmdError{args: args, err: err, stderr: strings.TrimSpace(stderr.String()), stdout: strings.TrimSpace(stdout.String())}
	}
	return stdout.String(), err
}

type cmdError struct {
	args           []string
	err            error
	stderr, stdout string
}

func (e *cmdError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.args, " "), e.err)
	if e.stderr != "" {
		msg += "\n" + e.stderr
	}
	if e.stdout != "" {
		msg += "\n" + e.stdout
	}
	return msg
}

// must runs a command that has to succeed.
func (c *container) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// show returns properties of the sluice unit, as `systemctl show` has them.
func (c *container) show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	args := []string{"systemctl", "show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(c.must(t, args...)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	return got
}

// cursor is the journal's current end: journal(cursor) shows what came
// after it.
func (c *container) cursor(t *testing.T) string {
	t.Helper()
	out := c.must(t, "journalctl", "-n", "1", "-o", "export", "--no-pager")
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "__CURSOR="); ok {
			return v
		}
	}
	t.Fatalf("no journal cursor in:\n%s", out)
	return ""
}

// journal returns the sluice unit's journal after cursor ("" for all of
// it), with extra journalctl arguments.
func (c *container) journal(t *testing.T, cursor string, extra ...string) string {
	t.Helper()
	args := []string{"journalctl", "-u", unit, "--no-pager", "-o", "short-precise"}
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	}
	return c.must(t, append(args, extra...)...)
}

// waitJournal waits until the unit's journal after cursor has a line
// containing each of want, and returns that journal.
func (c *container) waitJournal(t *testing.T, cursor string, want ...string) string {
	t.Helper()
	var j string
	waitFor(t, fmt.Sprintf("the journal to show %q", want), 30*time.Second, func() bool {
		j = c.journal(t, cursor)
		for _, w := range want {
			if !strings.Contains(j, w) {
				return false
			}
		}
		return true
	})
	return j
}

// waitFor polls cond every 200 ms until it holds or timeout passes. The
// container's processes run on their own clock; polling is the only way
// to watch them.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
