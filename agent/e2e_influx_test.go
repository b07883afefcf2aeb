package agent_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testinflux"
)

// influxCount returns count(seq) and count(distinct seq) of a measurement.
func influxCount(t *testing.T, srv *testinflux.Server, m string) (rows, distinct int64) {
	t.Helper()
	get := func(q string) int64 {
		series := srv.Query(q)
		if len(series) == 0 || len(series[0].Values) == 0 {
			return 0
		}
		n, err := series[0].Values[0][1].(json.Number).Int64()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	return get(`SELECT count(seq) FROM "` + m + `"`), get(`SELECT count(DISTINCT seq) FROM "` + m + `"`)
}

// One feed to SQLite and InfluxDB at once; InfluxDB is stopped for a while
// mid-stream. Both stores end with every point exactly once.
func TestFeedToSQLiteAndInfluxDBSurvivesInfluxOutage(t *testing.T) {
	srv := testinflux.Start(t)
	const n = 6000
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
  influx:
    type: influxdb
    url: %s
    bucket: %s
    token: %q
    retry_initial: 50ms
    retry_max: 200ms
feeds:
  synth:
    plugin: synth
    sinks: [db, influx]
    config: {symbols: [AAA, BBB], rate: 2000, count: %d}
`, srv.URL(), testinflux.Bucket, srv.Token(), n))

	a.WaitFor(t, "influx written some", func(st agent.Status) bool { return testagent.Written(st, "influx") > 1000 })
	srv.Stop()
	st := a.WaitFor(t, "influx retrying while down", func(st agent.Status) bool {
		for _, s := range st.Sinks {
			if s.Name == "influx" && s.Retries >= 2 {
				return true
			}
		}
		return false
	})
	writtenDuringOutage := testagent.Written(st, "influx")
	srv.Restart()
	a.WaitFor(t, "everything written to both sinks", func(st agent.Status) bool {
		return testagent.Written(st, "influx") >= n && testagent.Written(st, "db") >= n
	})
	a.Stop(t)

	if writtenDuringOutage >= n {
		t.Fatalf("the outage began after all %d points were written; the test proved nothing", n)
	}
	rows, distinct := influxCount(t, srv, "synth")
	if rows != n || distinct != n {
		t.Errorf("influx: %d points, %d distinct seq; want %d of each", rows, distinct, n)
	}
	db := testagent.OpenDB(t, a.DB)
	if got := testagent.QueryInt(t, db, `SELECT count(DISTINCT seq) FROM synth`); got != n {
		t.Errorf("sqlite: %d distinct seq, want %d", got, n)
	}
}
