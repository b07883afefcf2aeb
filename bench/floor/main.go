// Command floor is the benchmark's floor: the least a program can do to
// get Binance trades from a WebSocket into SQLite. One process reads the
// combined stream, parses each frame with the Binance parser Sluice uses,
// and inserts the trades in batches with a prepared multi-row upsert. No
// plugin hop, no disk buffer, no normalization.
//
// The table, its indexes and the durability (WAL, synchronous=FULL, one
// transaction per batch) are the SQLite sink's, so the storage work is the
// same and the gap to Sluice is the cost of Sluice's architecture.
//
//	floor -ws ws://127.0.0.1:PORT/spot -db trades.db -symbols S0001USDT,S0002USDT
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	_ "modernc.org/sqlite"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/bench/internal/profile"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

const schema = `
CREATE TABLE IF NOT EXISTS trades (
	"time" INTEGER NOT NULL,
	"received" INTEGER,
	"time_s" REAL GENERATED ALWAYS AS (time / 1e9) VIRTUAL,
	"exchange" TEXT, "market" TEXT, "side" TEXT, "symbol" TEXT,
	"price" REAL, "quantity" REAL, "trade_id" INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS trades_key ON trades (time, exchange, market, symbol, trade_id);`

const cols = 9 // time, received, exchange, market, side, symbol, price, quantity, trade_id

// rowsPerStmt is the rows of one prepared multi-row INSERT (the sink's 64).
const rowsPerStmt = 64

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO trades (time, received, exchange, market, side, symbol, price, quantity, trade_id) VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(` ON CONFLICT (time, exchange, market, symbol, trade_id) DO UPDATE SET received = excluded.received, side = excluded.side, price = excluded.price, quantity = excluded.quantity`)
	return b.String()
}

func main() {
	var (
		ws      = flag.String("ws", "", "WebSocket base URL of the market (…/spot)")
		dbPath  = flag.String("db", "floor.db", "SQLite file")
		symbols = flag.String("symbols", "", "symbols, comma separated")
		batch   = flag.Int("batch", 1000, "points per transaction")
		flush   = flag.Duration("flush", 100*time.Millisecond, "longest wait before a partial batch is written")
	)
	flag.Parse()
	defer profile.Start("floor")()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *ws, *dbPath, strings.Split(*symbols, ","), *batch, *flush); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, ws, dbPath string, symbols []string, batch int, flush time.Duration) error {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	q.Set("_pragma", "temp_store(MEMORY)")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	multi, err := db.PrepareContext(ctx, insertSQL(rowsPerStmt))
	if err != nil {
		return err
	}
	one, err := db.PrepareContext(ctx, insertSQL(1))
	if err != nil {
		return err
	}

	streams := make([]string, len(symbols))
	for i, s := range symbols {
		streams[i] = strings.ToLower(s) + "@trade"
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, ws+"/stream?streams="+strings.Join(streams, "/"), nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()

	// The reader parses into batches and hands each to the writer, so the
	// socket is read while SQLite commits. Two batches in flight at most.
	batches := make(chan []sluice.Point, 1)
	free := make(chan []sluice.Point, 2)
	for range 2 {
		free <- make([]sluice.Point, 0, batch+64)
	}
	errc := make(chan error, 1)
	go func() {
		args := make([]any, 0, rowsPerStmt*cols)
		for pts := range batches {
			if err := write(ctx, db, multi, one, pts, args); err != nil {
				errc <- err
				return
			}
			free <- pts[:0]
		}
		errc <- nil
	}()

	p := wire.NewParser(market.Spot)
	cur := <-free
	started := time.Now()
	frames := make(chan []byte, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(frames)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			frames <- msg
		}
	}()
	tick := time.NewTicker(flush / 2)
	defer tick.Stop()
	hand := func() {
		batches <- cur
		cur = <-free
		started = time.Now()
	}
	for {
		select {
		case msg, ok := <-frames:
			if !ok {
				close(batches)
				<-errc
				return <-readErr
			}
			if cur, _, err = p.Parse(msg, time.Now(), cur); err != nil {
				log.Printf("parse: %v", err)
			}
			if len(cur) >= batch {
				hand()
			}
		case <-tick.C:
			if len(cur) > 0 && time.Since(started) >= flush {
				hand()
			}
		case err := <-errc:
			return err
		}
	}
}

// write inserts one batch in one transaction.
func write(ctx context.Context, db *sql.DB, multi, one *sql.Stmt, pts []sluice.Point, args []any) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	m, o := tx.StmtContext(ctx, multi), tx.StmtContext(ctx, one)
	for i := 0; i < len(pts); {
		n, st := 1, o
		if len(pts)-i >= rowsPerStmt {
			n, st = rowsPerStmt, m
		}
		args = args[:0]
		for _, p := range pts[i : i+n] {
			args = appendRow(args, &p)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		i += n
	}
	return tx.Commit()
}

// appendRow appends a trade's columns in statement order. The parser
// emits tags sorted (exchange, market, side, symbol) and fields in the
// order price, quantity, trade_id.
func appendRow(args []any, p *sluice.Point) []any {
	args = append(args, p.Time.UnixNano(), p.Received.UnixNano())
	for _, t := range p.Tags {
		args = append(args, t.Value)
	}
	for _, f := range p.Fields {
		args = append(args, f.Value.Any())
	}
	return args
}
