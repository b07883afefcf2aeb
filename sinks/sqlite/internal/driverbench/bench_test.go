package driverbench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3" (cgo)
	_ "modernc.org/sqlite"          // registers "sqlite" (pure Go)
)

// batchSize is the number of points per transaction, the pipeline's
// default batch.
const batchSize = 1000

var drivers = []struct {
	name, driver, dsn string
}{
	{"modernc", "sqlite", "file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)"},
	{"mattn", "sqlite3", "file:%s?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000"},
}

// The sink's schema and settings for a trades measurement: two tags, four
// fields, an index on time, one on the series, and (for upsert) the
// declared key.
const schema = `
CREATE TABLE trades (
	time INTEGER NOT NULL, received INTEGER,
	time_s REAL GENERATED ALWAYS AS (time / 1e9) VIRTUAL,
	exchange TEXT, symbol TEXT,
	price REAL, size REAL, side TEXT, trade_id INTEGER);
CREATE INDEX trades_time ON trades (time);
CREATE INDEX trades_series ON trades (exchange, symbol, time);`

const keyIndex = `CREATE UNIQUE INDEX trades_key ON trades (symbol, trade_id);`

const columns = "time, received, exchange, symbol, price, size, side, trade_id"
const nCols = 8

const upsertTail = ` ON CONFLICT (symbol, trade_id) DO UPDATE SET
	time = excluded.time, received = excluded.received, exchange = excluded.exchange,
	price = excluded.price, size = excluded.size, side = excluded.side`

var symbols = []string{"BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"}

// BenchmarkWrite inserts batches of 1000 trade-like points, one
// transaction per batch, and reports ns/point.
//
//	rows:     one prepared single-row INSERT executed per point
//	multirow: one prepared INSERT of 100 rows executed 10 times
//	insert:   no unique key; upsert: ON CONFLICT DO UPDATE on (symbol, trade_id)
func BenchmarkWrite(b *testing.B) {
	for _, d := range drivers {
		for _, mode := range []string{"insert", "upsert"} {
			for _, rowsPerStmt := range []int{1, 100} {
				shape := "rows"
				if rowsPerStmt > 1 {
					shape = "multirow"
				}
				b.Run(fmt.Sprintf("driver=%s/%s/%s", d.name, mode, shape), func(b *testing.B) {
					benchWrite(b, d.driver, fmt.Sprintf(d.dsn, filepath.Join(b.TempDir(), "bench.db")), mode == "upsert", rowsPerStmt)
				})
			}
		}
	}
}

func benchWrite(b *testing.B, driver, dsn string, upsert bool, rowsPerStmt int) {
	ctx := context.Background()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // so the pragma below holds for every statement
	if _, err := db.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		b.Fatal(err)
	}
	q := "INSERT INTO trades (" + columns + ") VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", rowsPerStmt), ",")
	if upsert {
		if _, err := db.ExecContext(ctx, keyIndex); err != nil {
			b.Fatal(err)
		}
		q += upsertTail
	}
	stmt, err := db.PrepareContext(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()

	args := make([]any, 0, rowsPerStmt*nCols)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	id := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		txStmt := tx.StmtContext(ctx, stmt)
		for i := 0; i < batchSize; i += rowsPerStmt {
			args = args[:0]
			for range rowsPerStmt {
				id++
				t := base + id*1_000_000
				side := "buy"
				if id%3 == 0 {
					side = "sell"
				}
				args = append(args, t, t+250_000, "coinbase", symbols[id%4],
					60000+float64(id%1000)/100, float64(id%17)/1000, side, id)
			}
			if _, err := txStmt.ExecContext(ctx, args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/point")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*batchSize), "cpu-ns/point")
}
