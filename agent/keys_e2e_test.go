package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
)

// conflictingFeed is a jsonws feed declaring trades unique by symbol
// alone. Its URL has no server: the feed must fail before it connects.
const conflictingFeed = `feeds:
  b:
    plugin: jsonws
    sinks: [db]
    config:
      url: ws://127.0.0.1:9/ws
      rules:
        - name: t
          measurement: trades
          tags: {symbol: s}
          fields: {price: p}
          unique: [symbol]
`

// A feed file declaring a measurement that a running feed writes, with
// another uniqueness key. The SQLite sink used to re-key the table to
// it, deleting all but one row per symbol. Now the new feed fails with a
// reason naming both feeds and files, the running feed and its rows are
// untouched, `sluice validate` says the same, a restart keeps the
// running feed as the holder, and once that feed is gone the sink itself
// refuses the key its rows violate.
func TestConflictingUniqueKeyFailsTheNewFeedOnly(t *testing.T) {
	const n = 3000
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	if err := os.Mkdir(feedsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	mainBody := fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  a: {plugin: synth, sinks: [db], config: {measurement: trades, symbols: [AAA, BBB], count: %d}}
`, n)
	path := testagent.WriteConfigFeedsDir(t, dir, feedsDir, mainBody)
	a := testagent.Launch(t, path)
	st := a.WaitFor(t, "feed a written", func(st agent.Status) bool { return testagent.Written(st, "db") >= n })
	aPid := testagent.Feed(st, "a").Pid
	db := testagent.OpenDB(t, a.DB)
	rows := func() int64 { return testagent.QueryInt(t, db, `SELECT count(*) FROM trades`) }
	if got := rows(); got != n {
		t.Fatalf("%d rows before the conflicting feed, want %d", got, n)
	}

	bFile := filepath.Join(feedsDir, "b.yaml")
	testagent.WriteFile(t, bFile, conflictingFeed)
	names := func(msg string) {
		t.Helper()
		for _, want := range []string{"feed a (" + path + ")", "feed b (" + bFile + ")", `measurement "trades"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not say %q", msg, want)
			}
		}
	}
	st = a.WaitFor(t, "feed b failed", func(st agent.Status) bool { return testagent.Feed(st, "b").State == agent.FeedFailedConfig })
	names(testagent.Feed(st, "b").LastError)
	if f := testagent.Feed(st, "a"); f.Pid != aPid || f.State != agent.FeedRunning {
		t.Errorf("feed a was disturbed: %+v", f)
	}
	if got := rows(); got != n {
		t.Fatalf("%d rows after the conflicting feed, want all %d", got, n)
	}

	_, errOut, code := sluiceCmd(t, "validate", "-config", path)
	if code != 1 || !strings.HasPrefix(errOut, bFile+": feeds.b: ") {
		t.Errorf("sluice validate: exit %d, stderr %q; want 1 and the problem in %s", code, errOut, bFile)
	}
	names(errOut)

	// After a restart a still holds trades, whichever plugin answers first.
	a.Stop(t)
	a = testagent.Launch(t, path)
	st = a.WaitFor(t, "feed b failed again", func(st agent.Status) bool {
		return testagent.Feed(st, "b").State == agent.FeedFailedConfig && testagent.Feed(st, "a").State == agent.FeedRunning
	})
	names(testagent.Feed(st, "b").LastError)

	// a leaves. b's key now conflicts with no feed, but with a's rows:
	// the sink refuses it and b fails with what to do.
	writeConfigKeepAddr(t, path, "sinks:\n  db: {type: sqlite, path: sluice.db}\n")
	if out, errOut, code := sluiceCmd(t, "reload", "-config", path); code != 0 {
		t.Fatalf("sluice reload: exit %d: %s %s", code, out, errOut)
	}
	st = a.WaitFor(t, "feed b refused by the sink", func(st agent.Status) bool {
		return !testagent.HasFeed(st, "a") && testagent.Feed(st, "b").State == agent.FeedFailed
	})
	msg := testagent.Feed(st, "b").LastError
	for _, want := range []string{`table "trades"`, "2 keys with more than one row", `GROUP BY "symbol"`, "rename"} {
		if !strings.Contains(msg, want) {
			t.Errorf("sink refusal %q does not say %q", msg, want)
		}
	}
	if sink := testagent.Sink(st, "db"); sink.State != "ok" {
		t.Errorf("the sink is %s after refusing a key: %s", sink.State, sink.LastError)
	}
	a.Stop(t)
	if got := rows(); got != n {
		t.Fatalf("%d rows at the end, want all %d", got, n)
	}
}
