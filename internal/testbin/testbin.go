// Package testbin builds the real sluice and plugin binaries once per test
// process, for tests that run them as a user would.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// SQLiteDriver is the database/sql driver name tests open SQLite files with.
const SQLiteDriver = "sqlite"

var dir string // where the binaries were built; empty if the build failed

// Main builds the binaries into a temporary directory, runs the tests and
// removes the directory. Use it from TestMain: os.Exit(testbin.Main(m)).
func Main(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "testbin: building the binaries failed:", err)
		return 1
	}
	dir = tmp
	return m.Run()
}

func build(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmds, err := filepath.Glob(filepath.Join(root, "plugins", "*", "cmd", "sluice-source-*"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "plugins"), 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", filepath.Join(out, "sluice"), "./agent/cmd/sluice"}
	if err := goCmd(root, args...); err != nil {
		return err
	}
	for _, c := range cmds {
		rel, _ := filepath.Rel(root, c)
		if err := goCmd(root, "build", "-o", filepath.Join(out, "plugins", filepath.Base(c)), "./"+rel); err != nil {
			return err
		}
	}
	tests, err := filepath.Glob(filepath.Join(root, "internal", "testbin", "plugins", "sluice-source-*"))
	if err != nil {
		return err
	}
	for _, c := range tests {
		rel, _ := filepath.Rel(root, c)
		if err := goCmd(root, "build", "-o", filepath.Join(out, "testplugins", filepath.Base(c)), "./"+rel); err != nil {
			return err
		}
	}
	// The agent refuses plugins that others may write (agent/host): a
	// umask of 002 must not make the tests fail for that.
	return filepath.Walk(out, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()&^0o022)
	})
}

func goCmd(dir string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the sluice module")
	}
	return filepath.Dir(mod), nil
}

func must(t testing.TB) {
	t.Helper()
	if dir == "" {
		t.Fatal("testbin: binaries not built; call testbin.Main from TestMain")
	}
}

// Sluice is the path of the built sluice binary.
func Sluice(t testing.TB) string {
	must(t)
	return filepath.Join(dir, "sluice")
}

// PluginDir is the directory holding every built sluice-source-* plugin.
func PluginDir(t testing.TB) string {
	must(t)
	return filepath.Join(dir, "plugins")
}

// TestPlugin is the path of a test-only plugin built from
// internal/testbin/plugins (name is the part after sluice-source-).
func TestPlugin(t testing.TB, name string) string {
	must(t)
	return filepath.Join(dir, "testplugins", "sluice-source-"+name)
}

// PluginDirWith returns a new plugin directory holding every built plugin
// and the named test-only plugins (hard links where the file system
// allows, copies elsewhere).
func PluginDirWith(t testing.TB, testPlugins ...string) string {
	t.Helper()
	must(t)
	out := t.TempDir()
	srcs, _ := filepath.Glob(filepath.Join(dir, "plugins", "sluice-source-*"))
	for _, n := range testPlugins {
		srcs = append(srcs, TestPlugin(t, n))
	}
	for _, src := range srcs {
		dst := filepath.Join(out, filepath.Base(src))
		if err := os.Link(src, dst); err == nil {
			continue
		}
		if err := copyFile(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// Env is the test process's environment without its SLUICE_* variables
// (SLUICE_INFLUXD and the like, which the agent would rightly reject as
// unknown config keys), plus extra. Use it for every sluice or plugin
// process a test starts.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// PluginMain is TestMain for a plugin's own tests: it builds the plugin
// whose main package is ./cmd/sluice-source-<name> below the test's
// directory into a temporary directory (with the race detector when race
// is set, so that a race in the plugin process shows in its stderr), sets
// *path to it, runs the tests, and checks that the in-process ones left no
// goroutine behind. Use it as os.Exit(testbin.PluginMain(m, ...)).
func PluginMain(m *testing.M, name string, race bool, path *string) int {
	tmp, err := os.MkdirTemp("", "sluice-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	*path = filepath.Join(tmp, "sluice-source-"+name)
	args := []string{"build", "-o", *path}
	if race {
		args = append(args, "-race")
	}
	if err := goCmd(".", append(args, "./cmd/sluice-source-"+name)...); err != nil {
		fmt.Fprintln(os.Stderr, "testbin: building the plugin failed:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
