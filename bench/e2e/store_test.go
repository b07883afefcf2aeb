package main

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testagent"
)

// The poll reads only the rows committed since the last one, through the
// table's rowid, whatever the indexes: floor-cgo's (symbol, trade_id) and
// the sink's (time, exchange, market, symbol, trade_id) alike.
func TestPollReadsOnlyNewRows(t *testing.T) {
	for name, schema := range map[string]string{
		"floor-cgo": `CREATE TABLE trades (time INTEGER, symbol TEXT, price REAL, trade_id INTEGER);
			CREATE UNIQUE INDEX trades_key ON trades (symbol, trade_id)`,
		"sluice": `CREATE TABLE trades (time INTEGER, exchange TEXT, market TEXT, symbol TEXT, price REAL, trade_id INTEGER);
			CREATE UNIQUE INDEX trades_key ON trades (time, exchange, market, symbol, trade_id)`,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "trades.db")
			w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Exec(schema); err != nil {
				t.Fatal(err)
			}
			add := func(symbol string, from, to int) {
				t.Helper()
				for id := from; id <= to; id++ {
					if _, err := w.Exec(`INSERT INTO trades (time, symbol, price, trade_id) VALUES (?, ?, 1, ?)`, id, symbol, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			s, err := openSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			poll := func(want map[string]int64) {
				t.Helper()
				got, err := s.maxIDs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, want) {
					t.Fatalf("poll = %v, want %v", got, want)
				}
			}
			add("A", 1, 500)
			add("B", 1, 300)
			poll(map[string]int64{"A": 500, "B": 300})
			poll(map[string]int64{})
			add("B", 301, 302)
			poll(map[string]int64{"B": 302})

			if got := testagent.QueryPlan(t, s.db, pollQuery, 0); !strings.Contains(got, "SEARCH trades USING INTEGER PRIMARY KEY (rowid>?)") {
				t.Errorf("plan %s does not search by rowid", got)
			}
		})
	}
}
