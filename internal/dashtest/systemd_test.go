//go:build linux

package dashtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The systemd files, checked with systemd's own tools where they are
// installed (the tests skip otherwise).

const systemdDir = "../../systemd"

// maxExposure is the highest `systemd-analyze security` exposure the unit
// may have (the scale is 0.0 to 10.0, lower is better).
const maxExposure = 2.0

// tool returns the path of a systemd tool, skipping the test without it.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUnitVerify runs `systemd-analyze verify` on the unit. verify insists
// that the Exec lines' binaries exist, which /usr/bin/sluice does not on a
// build machine: it checks a copy naming this test binary instead, with
// nothing else changed.
func TestUnitVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	unit := readFile(t, filepath.Join(systemdDir, "sluice.service"))
	const exec0 = "ExecStart=/usr/bin/sluice "
	if strings.Count(unit, exec0) != 1 {
		t.Fatalf("the unit should start /usr/bin/sluice exactly once (%q)", exec0)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sluice.service")
	unit = strings.ReplaceAll(unit, "=/usr/bin/sluice ", "="+self+" ") // ExecStart, ExecReload
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	// verify also reports on other units it loads on the way (a broken
	// unit elsewhere on the host); only ours counts.
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "sluice") {
			t.Errorf("verify: %s", strings.TrimSpace(line))
		} else if strings.TrimSpace(line) != "" {
			t.Logf("verify (another unit): %s", strings.TrimSpace(line))
		}
	}
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for sluice\.service: (\d+\.\d+)`)

// TestUnitSecurity rates the unit's hardening offline, as an operator
// would with `systemd-analyze security --offline=true`, and holds it
// under maxExposure.
func TestUnitSecurity(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	path := filepath.Join(systemdDir, "sluice.service")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil && strings.Contains(string(out), "unrecognized option") {
		t.Skipf("systemd-analyze is too old for --offline (systemd 250+): %s", out)
	}
	m := exposureLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in the output (%v):\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "✗") {
			t.Log(strings.Join(strings.Fields(sc.Text()), " "))
		}
	}
	if score >= maxExposure {
		t.Errorf("exposure %.1f, want under %.1f", score, maxExposure)
	}
	// The unit's comment records the score; systemd versions weigh
	// settings differently, so a difference is only worth a note.
	if !strings.Contains(readFile(t, path), "rates this unit "+m[1]) {
		t.Logf("exposure %s differs from the one the unit's comment records (another systemd version?)", m[1])
	}
	t.Logf("exposure %s", m[1])
}

// TestSysusersTmpfiles applies the sysusers.d and tmpfiles.d files to an
// empty root: the user exists, and the state directory belongs to it.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := tool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(systemdDir, "sluice.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sysusers, "--root="+root, abs).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	var uid string
	for line := range strings.Lines(readFile(t, filepath.Join(root, "etc", "passwd"))) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 7 && f[0] == "sluice" {
			uid = f[2]
			if f[5] != "/var/lib/sluice" || !strings.HasSuffix(f[6], "nologin") {
				t.Errorf("sluice user: home %q shell %q, want /var/lib/sluice and nologin", f[5], f[6])
			}
		}
	}
	if uid == "" {
		t.Fatal("systemd-sysusers created no sluice user")
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "etc", "group")), "sluice:") {
		t.Error("systemd-sysusers created no sluice group")
	}

	tmpfiles := tool(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles needs root to set owners")
	}
	abs, err = filepath.Abs(filepath.Join(systemdDir, "sluice.tmpfiles"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tmpfiles, "--root="+root, "--create", abs).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(root, "var", "lib", "sluice"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Errorf("/var/lib/sluice: mode %v, want a directory with 0750", fi.Mode())
	}
	if got := ownerUID(fi); got != uid {
		t.Errorf("/var/lib/sluice: owner uid %s, want sluice (%s)", got, uid)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc", "sluice", "feeds.d")); err != nil || !fi.IsDir() {
		t.Errorf("/etc/sluice/feeds.d not created: %v", err)
	}
	// The unit's LoadCredential= fails the start without this directory.
	if fi, err := os.Stat(filepath.Join(root, "etc", "sluice", "credentials")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("/etc/sluice/credentials: want a directory with mode 0700 (%v)", err)
	}
}

// ownerUID returns the user id owning a file.
func ownerUID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Uid), 10)
	}
	return "?"
}
