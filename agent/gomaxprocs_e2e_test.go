package agent_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// feeds.<name>.gomaxprocs is the GOMAXPROCS the plugin's Go runtime runs
// on: 1 by default, as set, or the runtime's own choice for 0. A reload
// that changes it restarts the feed with the new value.
func TestFeedGoMaxProcs(t *testing.T) {
	dir := t.TempDir()
	feeds := func(one string) string {
		return fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  dflt: {plugin: envdump, sinks: [db]}
  one: {plugin: envdump, sinks: [db], %s}
  any: {plugin: envdump, sinks: [db], gomaxprocs: 0}
`, one)
	}
	path := testagent.WriteConfig(t, dir, feeds("gomaxprocs: 3"))
	cfg, _ := os.ReadFile(path)
	plugins := testbin.PluginDirWith(t, "envdump")
	os.WriteFile(path, []byte(strings.Replace(string(cfg), "plugin_dir: "+testbin.PluginDir(t), "plugin_dir: "+plugins, 1)), 0o644)

	a := testagent.Launch(t, path)
	procs := func(feed string) string {
		t.Helper()
		var v string
		db := testagent.OpenDB(t, a.DB)
		if err := db.QueryRow(`SELECT gomaxprocs FROM runtime WHERE feed = ?`, feed).Scan(&v); err != nil {
			t.Fatalf("feed %s: %v", feed, err)
		}
		return v
	}
	a.WaitForCount(t, `SELECT count(*) FROM runtime`, 3)
	if got := procs("dflt"); got != "1" {
		t.Errorf("default: the plugin runs on GOMAXPROCS %s, want 1", got)
	}
	if got := procs("one"); got != "3" {
		t.Errorf("gomaxprocs: 3: the plugin runs on GOMAXPROCS %s, want 3", got)
	}
	// 0 passes no GOMAXPROCS: the plugin's runtime picks what this test's
	// did (unless the test itself was given one).
	if os.Getenv("GOMAXPROCS") == "" {
		if got, want := procs("any"), fmt.Sprint(runtime.GOMAXPROCS(0)); got != want {
			t.Errorf("gomaxprocs: 0: the plugin runs on GOMAXPROCS %s, want the runtime's %s", got, want)
		}
	}

	// A reload that changes it restarts that feed, on the new value.
	raw, _ := os.ReadFile(path)
	testagent.WriteFile(t, path, strings.Replace(string(raw), "gomaxprocs: 3", "gomaxprocs: 2", 1))
	a.Cmd.Process.Signal(syscall.SIGHUP)
	a.WaitForCount(t, `SELECT count(*) FROM runtime WHERE feed = 'one' AND gomaxprocs = 2`, 1)
}
