package faults

// Building a scenario: exchange, sinks, config, agent.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testinflux"
)

// Pipeline settings shared by the scenarios: small batches flushed often
// (so the in-memory batch window is 200ms and outages are many windows
// long), fast retries, and small buffer segments so that segments are
// sealed, read and removed many times in a run.
const (
	flushInterval = 200 * time.Millisecond
	segmentBytes  = 256 << 10
)

// setup says what one scenario needs.
type setup struct {
	rate float64 // trades per second over all symbols; default tradeRate
	// influx adds an InfluxDB sink (skipped, with the scenario, where no
	// influxd is installed and SLUICE_REQUIRE_INFLUXD is not 1).
	influx bool
	// influxSink and sqliteSink are extra keys of those sinks' configs,
	// as YAML flow pairs.
	influxSink, sqliteSink string
	// sqliteDir puts the SQLite file in a directory of its own, apart
	// from data_dir.
	sqliteDir bool
	// second adds a second SQLite sink, "second", in data_dir/second.db,
	// with a short busy_timeout: the test holds its write lock to make it
	// lag.
	second       bool
	queueSize    int      // the feed's plugin-side queue; default 10000
	segmentBytes int      // buffer.segment_bytes; default segmentBytes
	feed         []string // extra plugin config keys
}

// tradeRate is the exchange's trade rate, over all symbols.
var tradeRate = pick(300.0, 800.0)

type rig struct {
	*scenario
	rng    *rand.Rand
	influx *testinflux.Server
	sqlite sqliteStore
	second *sqliteStore
}

// newRig prepares a scenario: the exchange (not yet trading), InfluxDB if
// asked for, and the agent's config. Nothing of the agent runs yet.
func newRig(t *testing.T, name string, o setup) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	sd := seed(t)
	r := &rig{rng: rand.New(rand.NewPCG(sd, 0x5eed))}
	if o.rate == 0 {
		o.rate = tradeRate
	}
	if o.queueSize == 0 {
		o.queueSize = 10000
	}
	if o.segmentBytes == 0 {
		o.segmentBytes = segmentBytes
	}
	if o.influx {
		r.influx = testinflux.Start(t)
	}
	x := startExchange(t, o.rate, sd)

	dbDir := "" // data_dir itself; the agent resolves relative paths there
	if o.sqliteDir {
		dbDir = filepath.Join(t.TempDir(), "db")
		if err := os.Mkdir(dbDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var sinks, names strings.Builder
	fmt.Fprintf(&sinks, "  sqlite: {type: sqlite, path: %q%s}\n", filepath.Join(dbDir, "sluice.db"), flowTail(o.sqliteSink))
	names.WriteString("sqlite")
	if o.second {
		sinks.WriteString("  second: {type: sqlite, path: second.db, busy_timeout: 100ms}\n")
		names.WriteString(", second")
	}
	if r.influx != nil {
		fmt.Fprintf(&sinks, "  influx: {type: influxdb, url: %q, bucket: %q, timeout: 5s%s}\n",
			r.influx.URL(), testinflux.Bucket, flowTail(o.influxSink))
		names.WriteString(", influx")
	}
	body := fmt.Sprintf(`pipeline: {batch_size: 500, flush_interval: %s, retry_initial: 50ms, retry_max: 500ms}
buffer: {fsync: interval, fsync_interval: 100ms, segment_bytes: %d}
sinks:
%sfeeds:
  %s:
    plugin: binance
    sinks: [%s]
    queue_size: %d
    config: %s
`, flushInterval, o.segmentBytes, sinks.String(), feedName, names.String(), o.queueSize, x.feedConfig(o.feed...))

	a := newAgentRig(t, body)
	if dbDir == "" {
		dbDir = a.dir
	}
	r.sqlite = sqliteStore{name: "sqlite", path: filepath.Join(dbDir, "sluice.db")}
	if o.second {
		r.second = &sqliteStore{name: "second", path: filepath.Join(a.dir, "second.db")}
	}
	r.scenario = &scenario{t: t, name: name, began: time.Now(), x: x, a: a}
	return r
}

func flowTail(pairs string) string {
	if pairs == "" {
		return ""
	}
	return ", " + pairs
}

// check adds the default checks: every sink complete, nothing dropped.
func (r *rig) checkAll() {
	r.checks = append(r.checks, sinkCheck{store: r.sqlite})
	if r.second != nil {
		r.checks = append(r.checks, sinkCheck{store: *r.second})
	}
	if r.influx != nil {
		r.checks = append(r.checks, sinkCheck{store: influxStore{name: "influx", srv: r.influx}})
	}
}

// begin starts the agent and, once its feed is connected, the market; it
// returns when every symbol's trades and aggregate trades have landed in
// SQLite and a position covering all of them has had time to be
// checkpointed (every second), so that a fault from here on has a
// position to resume from.
func (r *rig) begin() {
	r.t.Helper()
	r.a.start()
	r.a.waitRunning()
	r.x.run()
	deadline := time.Now().Add(startTimeout)
	for !landedSome(r.t, r.sqlite) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no trades of every symbol in SQLite within %s; status %s", startTimeout, statusJSON(r.a.last))
		}
		r.a.sleep(5 * pollEvery)
	}
	r.a.sleep(1500 * time.Millisecond)
}

// landedSome reports whether every symbol has ids of every stream.
func landedSome(t *testing.T, st store) bool {
	for _, sm := range streams {
		got := st.distinct(t, sm.table, sm.id)
		for _, sym := range symbols {
			if got[sym] == 0 {
				return false
			}
		}
	}
	return true
}

// between is a random duration in [lo, hi).
func (r *rig) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

// influxAvailable reports whether testinflux.Start will find influxd (or
// must, with SLUICE_REQUIRE_INFLUXD=1), for scenarios that can run
// without InfluxDB but do more with it.
func influxAvailable() bool {
	if os.Getenv(testinflux.EnvRequire) == "1" {
		return true
	}
	p := os.Getenv(testinflux.EnvBinary)
	if p == "" {
		p = filepath.Join("..", ".cache", "bin", "influxd") // the test runs in faults/
	}
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
