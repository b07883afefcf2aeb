// Command floorcgo is the benchmark's stricter floor: what a program
// written for this one job, with the usual libraries, spends to get
// Binance trades from a WebSocket into SQLite. One process reads the
// combined trade stream with gorilla/websocket, decodes each frame with
// encoding/json, and inserts the trades in batches through the cgo
// SQLite driver (mattn/go-sqlite3) into a table with one index, unique on
// (symbol, trade_id). No plugin, no disk buffer, no normalization, no
// time or series index.
//
// The durability is the SQLite sink's: WAL, synchronous=FULL, one
// transaction per batch. A batch is written when it holds -batch trades
// or its first trade is -flush old; the socket is read while the previous
// batch commits.
//
// It is its own module so that the cgo driver is a dependency of this
// program only.
//
//	floorcgo -ws ws://127.0.0.1:PORT/spot -db trades.db -symbols S0001USDT,S0002USDT
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	_ "github.com/mattn/go-sqlite3"
)

const schema = `
CREATE TABLE IF NOT EXISTS trades (
	time INTEGER NOT NULL, received INTEGER, symbol TEXT, side TEXT,
	price REAL, quantity REAL, trade_id INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS trades_key ON trades (symbol, trade_id);`

const cols = 7

// rowsPerStmt is the rows of one prepared multi-row INSERT.
const rowsPerStmt = 64

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO trades (time, received, symbol, side, price, quantity, trade_id) VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(` ON CONFLICT (symbol, trade_id) DO UPDATE SET time = excluded.time, received = excluded.received, side = excluded.side, price = excluded.price, quantity = excluded.quantity`)
	return b.String()
}

// frame is a combined-stream trade frame. Every key Binance sends is
// declared, because encoding/json matches keys without regard to case
// when no field matches exactly (e/E, t/T, m/M).
type frame struct {
	Stream string `json:"stream"`
	Data   struct {
		Event     string `json:"e"`
		EventTime int64  `json:"E"`
		Symbol    string `json:"s"`
		TradeID   int64  `json:"t"`
		Price     string `json:"p"`
		Quantity  string `json:"q"`
		TradeTime int64  `json:"T"`
		Maker     bool   `json:"m"`
		Ignore    bool   `json:"M"`
	} `json:"data"`
}

type trade struct {
	time, received int64
	symbol, side   string
	price, qty     float64
	id             int64
}

func main() {
	var (
		ws      = flag.String("ws", "", "WebSocket base URL of the market (…/spot)")
		dbPath  = flag.String("db", "floor.db", "SQLite file")
		symbols = flag.String("symbols", "", "symbols, comma separated")
		batch   = flag.Int("batch", 1000, "trades per transaction")
		flush   = flag.Duration("flush", 100*time.Millisecond, "longest wait before a partial batch is written")
	)
	flag.Parse()
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
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?"+q.Encode())
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

	// The writer commits one batch while the reader fills the next: two
	// batches in flight at most.
	batches := make(chan []trade, 1)
	free := make(chan []trade, 2)
	for range 2 {
		free <- make([]trade, 0, batch)
	}
	errc := make(chan error, 1)
	go func() {
		args := make([]any, 0, rowsPerStmt*cols)
		for b := range batches {
			if err := write(ctx, db, multi, one, b, args); err != nil {
				// The reader would wait for a free batch forever.
				log.Fatal(err)
			}
			free <- b[:0]
		}
		errc <- nil
	}()

	// The reader: one goroutine reads, decodes and batches. A batch that
	// is not full goes when its first trade is flush old: checked on each
	// frame, and a few times a flush interval by a ticker.
	var (
		mu     sync.Mutex
		cur    = <-free
		first  time.Time
		closed bool // batches is closed: the ticker hands nothing more
	)
	handLocked := func() {
		batches <- cur
		cur = <-free
	}
	tick := time.NewTicker(flush / 4)
	tickDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-tickDone:
				return
			case <-tick.C:
			}
			mu.Lock()
			if !closed && len(cur) > 0 && time.Since(first) >= flush {
				handLocked()
			}
			mu.Unlock()
		}
	}()
	var f frame
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			tick.Stop()
			close(tickDone)
			mu.Lock()
			closed = true
			close(batches)
			mu.Unlock()
			if werr := <-errc; werr != nil {
				return werr
			}
			return err
		}
		f = frame{}
		if err := json.Unmarshal(msg, &f); err != nil {
			log.Printf("decode: %v", err)
			continue
		}
		d := &f.Data
		price, err1 := strconv.ParseFloat(d.Price, 64)
		qty, err2 := strconv.ParseFloat(d.Quantity, 64)
		if err1 != nil || err2 != nil || d.Event != "trade" {
			log.Printf("bad trade: %s", msg)
			continue
		}
		side := "buy"
		if d.Maker {
			side = "sell" // the buyer was the maker: the taker sold
		}
		now := time.Now()
		mu.Lock()
		if len(cur) == 0 {
			first = now
		}
		cur = append(cur, trade{time: d.TradeTime * 1e6, received: now.UnixNano(),
			symbol: d.Symbol, side: side, price: price, qty: qty, id: d.TradeID})
		if len(cur) >= batch || now.Sub(first) >= flush {
			handLocked()
		}
		mu.Unlock()
	}
}

// write inserts one batch in one transaction.
func write(ctx context.Context, db *sql.DB, multi, one *sql.Stmt, b []trade, args []any) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	m, o := tx.StmtContext(ctx, multi), tx.StmtContext(ctx, one)
	for i := 0; i < len(b); {
		n, st := 1, o
		if len(b)-i >= rowsPerStmt {
			n, st = rowsPerStmt, m
		}
		args = args[:0]
		for _, t := range b[i : i+n] {
			args = append(args, t.time, t.received, t.symbol, t.side, t.price, t.qty, t.id)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		i += n
	}
	return tx.Commit()
}
