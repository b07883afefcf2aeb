package faults

// Reading back what landed: trade and aggregate trade ids per symbol from
// the SQLite file and from InfluxDB.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testinflux"
)

// The streams checked, with the measurement and id field the Binance
// plugin writes them as (plugins/binance/README.md).
const (
	streamTrade = "trade"
	streamAgg   = "aggTrade"
	eventsTable = "feed_events"
)

var streams = []struct{ name, table, id string }{
	{streamTrade, "trades", "trade_id"},
	{streamAgg, "agg_trades", "agg_id"},
}

// store is one sink's storage as the test reads it.
type store interface {
	sink() string
	// ids returns the rows per id of one symbol in table.
	ids(t *testing.T, table, id, symbol string) map[int64]int64
	// distinct returns the distinct ids per symbol in table, cheaply
	// enough to poll.
	distinct(t *testing.T, table, id string) map[string]int64
	// rows counts every row of a table.
	rows(t *testing.T, table string) int64
	// show returns every row holding one id, for a failure message.
	show(t *testing.T, table, id, symbol string, value int64) string
}

type sqliteStore struct {
	name, path string
}

func (s sqliteStore) sink() string { return s.name }

func (s sqliteStore) query(t *testing.T, q string, args []any, scan func(*sql.Rows) error) {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+s.path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.path, q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatalf("%s: %s: %v", s.path, q, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %s: %v", s.path, q, err)
	}
}

// exists reports whether the file has the table (a sink that never got a
// point of a measurement has none).
func (s sqliteStore) exists(t *testing.T, table string) bool {
	var n int64
	s.query(t, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, []any{table},
		func(r *sql.Rows) error { return r.Scan(&n) })
	return n > 0
}

func (s sqliteStore) ids(t *testing.T, table, id, symbol string) map[int64]int64 {
	out := map[int64]int64{}
	if !s.exists(t, table) {
		return out
	}
	s.query(t, fmt.Sprintf(`SELECT %q, count(*) FROM %q WHERE symbol = ? GROUP BY 1`, id, table), []any{symbol},
		func(r *sql.Rows) error {
			var v, n int64
			err := r.Scan(&v, &n)
			out[v] = n
			return err
		})
	return out
}

func (s sqliteStore) distinct(t *testing.T, table, id string) map[string]int64 {
	out := map[string]int64{}
	if !s.exists(t, table) {
		return out
	}
	s.query(t, fmt.Sprintf(`SELECT symbol, count(DISTINCT %q) FROM %q GROUP BY symbol`, id, table), nil,
		func(r *sql.Rows) error {
			var sym string
			var n int64
			err := r.Scan(&sym, &n)
			out[sym] = n
			return err
		})
	return out
}

func (s sqliteStore) rows(t *testing.T, table string) int64 {
	var n int64
	if s.exists(t, table) {
		s.query(t, fmt.Sprintf(`SELECT count(*) FROM %q`, table), nil, func(r *sql.Rows) error { return r.Scan(&n) })
	}
	return n
}

type influxStore struct {
	name string
	srv  *testinflux.Server
}

func (s influxStore) sink() string { return s.name }

func number(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("influx: %v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			t.Fatalf("influx: %v: %v", v, err)
		}
		i = int64(f)
	}
	return i
}

func (s influxStore) ids(t *testing.T, table, id, symbol string) map[int64]int64 {
	out := map[int64]int64{}
	for _, series := range s.srv.Query(fmt.Sprintf(`SELECT %q FROM %q WHERE "symbol" = '%s'`, id, table, symbol)) {
		for _, row := range series.Values {
			out[number(t, row[1])]++
		}
	}
	return out
}

func (s influxStore) distinct(t *testing.T, table, id string) map[string]int64 {
	out := map[string]int64{}
	for _, series := range s.srv.Query(fmt.Sprintf(`SELECT count(distinct(%q)) FROM %q GROUP BY "symbol"`, id, table)) {
		if len(series.Values) > 0 {
			out[series.Tags["symbol"]] = number(t, series.Values[0][1])
		}
	}
	return out
}

func (s influxStore) rows(t *testing.T, table string) int64 {
	// Every feed_events point has a message field.
	field := map[string]string{eventsTable: "message", "trades": "trade_id", "agg_trades": "agg_id"}[table]
	var n int64
	for _, series := range s.srv.Query(fmt.Sprintf(`SELECT count(%q) FROM %q`, field, table)) {
		if len(series.Values) > 0 {
			n += number(t, series.Values[0][1])
		}
	}
	return n
}

func (s sqliteStore) show(t *testing.T, table, id, symbol string, value int64) string {
	var out []string
	s.query(t, fmt.Sprintf(`SELECT * FROM %q WHERE symbol = ? AND %q = ?`, table, id), []any{symbol, value},
		func(r *sql.Rows) error {
			cols, _ := r.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				return err
			}
			var row []string
			for i, c := range cols {
				row = append(row, fmt.Sprintf("%s=%v", c, vals[i]))
			}
			out = append(out, "{"+strings.Join(row, " ")+"}")
			return nil
		})
	return strings.Join(out, " ")
}

func (s influxStore) show(t *testing.T, table, id, symbol string, value int64) string {
	var out []string
	for _, series := range s.srv.Query(fmt.Sprintf(`SELECT * FROM %q WHERE "symbol" = '%s' AND %q = %d`, table, symbol, id, value)) {
		for _, row := range series.Values {
			var cells []string
			for i, c := range series.Columns {
				cells = append(cells, fmt.Sprintf("%s=%v", c, row[i]))
			}
			out = append(out, "{"+strings.Join(cells, " ")+"}")
		}
	}
	return strings.Join(out, " ")
}

// lock takes the SQLite file's write lock, as another writer (or a
// migration) would, until the returned function releases it: the sink's
// writes then fail with SQLITE_BUSY after its busy_timeout, and are
// retried.
func (s sqliteStore) lock(t *testing.T) (unlock func()) {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+s.path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock %s: %v", s.path, err)
	}
	done := false
	unlock = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("unlock %s: %v", s.path, err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(unlock)
	return unlock
}
