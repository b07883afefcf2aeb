package agent_test

import (
	"database/sql"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

// eventSourcePlugins builds the eventsource test plugin (testdata) both
// ways into a plugin directory: eventsource, with the SDK, and
// eventsource-legacy, standing for a plugin built before events.
func eventSourcePlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, ldflags := range map[string]string{"eventsource": "", "eventsource-legacy": "-X main.mode=legacy"} {
		cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, "sluice-source-"+name), "./testdata/eventsource")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return dir
}

// withPluginDir points a config written by testagent.WriteConfig at
// another plugin directory.
func withPluginDir(t *testing.T, path, dir string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`(?m)^plugin_dir: .*$`).ReplaceAllString(string(raw), "plugin_dir: "+dir)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// table returns a table's columns (name and declared type, in order) and
// its rows, each as text, ordered by time and kind, with the feed tag's
// value left out.
func table(t *testing.T, db *sql.DB, name string) (cols []string, rows []string) {
	t.Helper()
	r, err := db.Query(`SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var n, typ string
		if err := r.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, n+" "+typ)
	}
	r.Close()
	q, err := db.Query(`SELECT * FROM "` + name + `" ORDER BY time, kind`)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	names, _ := q.Columns()
	for q.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := q.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for i, v := range vals {
			if names[i] == "feed" {
				v = "<feed>"
			}
			parts = append(parts, fmt.Sprintf("%s=%v", names[i], v))
		}
		rows = append(rows, strings.Join(parts, " "))
	}
	return cols, rows
}

// A plugin built before events (it sends feed_events points of its own
// and declares no "events" capability) still has its events counted;
// and what the agent writes for a plugin that reports the same events
// through the SDK is, column for column and row for row, what the old
// plugin wrote, so the dashboards read both alike.
func TestFeedEventsOldAndNewPlugins(t *testing.T) {
	plugins := eventSourcePlugins(t)
	dir := t.TempDir()
	path := testagent.WriteConfig(t, dir, `sinks:
  old_db: {type: sqlite, path: old.db}
  new_db: {type: sqlite, path: new.db}
feeds:
  old: {plugin: eventsource-legacy, sinks: [old_db]}
  new: {plugin: eventsource, sinks: [new_db]}
`)
	withPluginDir(t, path, plugins)
	a := testagent.Launch(t, path)
	const points = 5 + 12 // ticks and the script's events
	st := a.WaitFor(t, "both feeds' points", func(st agent.Status) bool {
		return testagent.Feed(st, "old").Points == points && testagent.Feed(st, "new").Points == points &&
			testagent.Written(st, "old_db") == points && testagent.Written(st, "new_db") == points
	})
	wantEvents := map[string]uint64{"connect": 1, "gap": 1, "backfill": 1, "gap_lost": 1, "queue_drop": 1, "resync": 1,
		"disconnect": 1, "reconnect": 1, "stale": 1, "live": 1, "server_error": 1, "rotate": 1}
	for _, name := range []string{"old", "new"} {
		f := testagent.Feed(st, name)
		if f.Reconnects != 1 || f.Gaps != 1 || f.BackfilledPoints != 3 || !maps.Equal(f.Events, wantEvents) || len(f.Stale) != 0 {
			t.Errorf("feed %s: reconnects %d, gaps %d, backfilled %d, events %v, stale %v; want 1, 1, 3, one of each kind, none",
				name, f.Reconnects, f.Gaps, f.BackfilledPoints, f.Events, f.Stale)
		}
	}
	_, metrics := get(t, a.Base+"/metrics")
	for _, name := range []string{"old", "new"} {
		for _, series := range []string{
			fmt.Sprintf(`sluice_feed_gaps_total{feed=%q} 1`, name),
			fmt.Sprintf(`sluice_feed_backfilled_points_total{feed=%q} 3`, name),
			fmt.Sprintf(`sluice_feed_events_total{feed=%q,kind="resync"} 1`, name),
		} {
			if !strings.Contains(metrics, series+"\n") {
				t.Errorf("/metrics has no %s", series)
			}
		}
	}
	a.Stop(t)

	oldCols, oldRows := table(t, testagent.OpenDB(t, filepath.Join(dir, "old.db")), "feed_events")
	newCols, newRows := table(t, testagent.OpenDB(t, filepath.Join(dir, "new.db")), "feed_events")
	if len(oldRows) != 12 {
		t.Fatalf("the old plugin's feed_events: %d rows, want 12", len(oldRows))
	}
	if !slices.Equal(oldCols, newCols) {
		t.Errorf("feed_events columns:\nold plugin: %v\nnew plugin: %v", oldCols, newCols)
	}
	if !slices.Equal(oldRows, newRows) {
		t.Errorf("feed_events rows differ:\nold plugin:\n%s\nnew plugin:\n%s", strings.Join(oldRows, "\n"), strings.Join(newRows, "\n"))
	}
	for _, db := range []string{"old.db", "new.db"} {
		conn := testagent.OpenDB(t, filepath.Join(dir, db))
		if n := testagent.QueryInt(t, conn, `SELECT count(*) FROM ticks`); n != 5 {
			t.Errorf("%s: %d ticks, want 5", db, n)
		}
		if n := testagent.QueryInt(t, conn, `SELECT count(DISTINCT feed) FROM feed_events`); n != 1 {
			t.Errorf("%s: feed_events of %d feeds", db, n)
		}
	}
}

// A Binance stream that goes silent reaches the agent as a stale event:
// /readyz fails naming the feed, the stream and how long, status and
// metrics show it, and the feed stays running; when the stream has data
// again the agent is ready again.
func TestBinanceStaleStreamReachesTheAgent(t *testing.T) {
	sim := binancesim.Start(t, binancesim.Options{
		Markets:   []binance.Market{binance.Spot},
		Symbols:   map[binance.Market][]string{binance.Spot: {"BTCUSDT", "ETHUSDT"}},
		TradeRate: 100,
	})
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  spot:
    plugin: binance
    sinks: [db]
    config: {market: spot, symbols: [BTCUSDT, ETHUSDT], streams: [trade], stale_after: {trade: 1s}, ws_url: %q, rest_url: %q}
`, sim.WSURL(binance.Spot), sim.RESTURL(binance.Spot)))
	a.WaitFor(t, "trades flowing", func(st agent.Status) bool { return testagent.Written(st, "db") > 50 })
	if code, r := readiness(t, a); code != http.StatusOK {
		t.Fatalf("readyz before the stall: %d %+v", code, r)
	}

	sim.Stall(binance.Spot, "btcusdt@trade", 8*time.Second)
	st := a.WaitFor(t, "BTCUSDT's trade stream stale", func(st agent.Status) bool { return len(testagent.Feed(st, "spot").Stale) > 0 })
	f := testagent.Feed(st, "spot")
	if f.State != agent.FeedRunning || len(f.Stale) != 1 || f.Stale[0].Symbol != "BTCUSDT" || f.Stale[0].Stream != "trade" {
		t.Fatalf("feed: state %s, stale %+v; want running with BTCUSDT trade stale", f.State, f.Stale)
	}
	code, r := readiness(t, a)
	if code != http.StatusServiceUnavailable || len(r.Reasons) != 1 ||
		!regexp.MustCompile(`^feed spot is stale: BTCUSDT trade has had no data for \d+s \(since \S+Z\)$`).MatchString(r.Reasons[0]) {
		t.Errorf("readyz while stale: %d %q", code, r.Reasons)
	}
	_, metrics := get(t, a.Base+"/metrics")
	if v := metricValue(t, metrics, `sluice_feed_stale{feed="spot"}`); v != 1 {
		t.Errorf("sluice_feed_stale = %v, want 1", v)
	}
	if v := metricValue(t, metrics, `sluice_feed_up{feed="spot"}`); v != 1 {
		t.Errorf("sluice_feed_up = %v: a stale feed still runs", v)
	}

	a.WaitFor(t, "BTCUSDT's trades live again", func(st agent.Status) bool { return len(testagent.Feed(st, "spot").Stale) == 0 })
	if code, r := readiness(t, a); code != http.StatusOK {
		t.Errorf("readyz once live: %d %+v", code, r)
	}
	a.Stop(t)
	db := testagent.OpenDB(t, a.DB)
	for _, kind := range []string{binance.FeedStale, binance.FeedLive} {
		if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE kind = ? AND symbol = 'BTCUSDT' AND stream = 'trade'`, kind); n == 0 {
			t.Errorf("no %s row for BTCUSDT trade in feed_events", kind)
		}
	}
}
