package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
)

// 11. A feed file declaring trades with another uniqueness key, dropped
// into feeds_dir while the Binance feed streams trades into the same
// measurement. The SQLite sink used to re-key the trades table to it,
// deleting every row but one per symbol, and InfluxDB to change the
// trades' point identity, so that trades of one millisecond overwrote
// each other. Now the new feed fails with a reason naming both feeds and
// their files, the Binance feed is not disturbed, and every trade lands
// once in every sink.
func TestConflictingFeedFile(t *testing.T) {
	t.Parallel()
	r := newRig(t, "11 conflicting feed file", setup{influx: influxAvailable()})
	feedsDir := r.useFeedsDir()
	r.checkAll()
	r.begin()

	sinks := "sqlite"
	if r.influx != nil {
		sinks += ", influx"
	}
	file := filepath.Join(feedsDir, "intruder.yaml")
	// Nothing listens at its URL: the declaration alone did the damage.
	testagent.WriteFile(t, file, `feeds:
  intruder:
    plugin: jsonws
    sinks: [`+sinks+`]
    config:
      url: ws://127.0.0.1:9/ws
      rules:
        - name: trade
          measurement: trades
          tags: {symbol: s}
          fields: {price: {path: p, type: float}}
          unique: [symbol]
`)
	before := feedStatus(r.a.last)
	st := r.a.waitFor("the conflicting feed failed", startTimeout, func(st agent.Status) bool {
		return testagent.Feed(st, "intruder").State == agent.FeedFailedConfig
	})
	msg := testagent.Feed(st, "intruder").LastError
	t.Logf("intruder: %s", msg)
	for _, want := range []string{"feed intruder (" + file + ")", "feed " + feedName + " (" + r.a.config + ")", `measurement "trades"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failed feed's reason %q does not say %q", msg, want)
		}
	}
	if f := feedStatus(st); f.Pid != before.Pid || f.Restarts != before.Restarts || f.State != agent.FeedRunning {
		t.Errorf("the Binance feed was disturbed: %+v", f)
	}
	r.finish()
}

// useFeedsDir gives the scenario's agent a feeds_dir, before it starts,
// and returns it.
func (r *rig) useFeedsDir() string {
	r.t.Helper()
	dir := filepath.Join(r.a.dir, "feeds.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	raw, err := os.ReadFile(r.a.config)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "feeds_dir: \"\"\n", "feeds_dir: "+dir+"\n", 1)
	if cfg == string(raw) {
		r.t.Fatal("the scenario config has no feeds_dir line to replace")
	}
	if err := os.WriteFile(r.a.config, []byte(cfg), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return dir
}
