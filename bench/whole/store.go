package main

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the driver the SQLite sink uses
)

// pollEvery is how often the harness reads the rows committed since its
// last look. A row counts as landed at the first poll that returns it, so
// lags are upper bounds with this resolution.
const pollEvery = 50 * time.Millisecond

// store reads the agent's SQLite file over its own read-only connection
// (WAL mode lets it read while the agent writes). Rows are found by rowid:
// the sink appends, and an upsert keeps a row's rowid, so the rows past
// the largest rowid seen are the ones committed since.
type store struct {
	db *sql.DB
}

func openStore(path string) (*store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(2000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func noTable(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") }

// The new rows of each table the poller reads: what identifies their
// generation time. Trades carry the trade time; book rows the event time
// of the last diff applied (level 0 of the bids stands for the 40 rows of
// an emission); spot bookTicker has no event time, so its update id is
// matched to the moment the simulator's book reached it.
var pollQueries = []struct{ table, query string }{
	{"trades", `SELECT rowid, '', time FROM trades WHERE rowid > ?`},
	{"book_ticker", `SELECT rowid, symbol, update_id FROM book_ticker WHERE rowid > ?`},
	{"book", `SELECT rowid, symbol, time FROM book WHERE rowid > ? AND side = 'bid' AND level = '0'`},
}

// poll calls seen for every row committed since the last poll, until ctx
// ends.
func (s *store) poll(ctx context.Context, seen func(kind, sym string, v int64, at time.Time)) error {
	last := map[string]int64{}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, q := range pollQueries {
			// The newest rowid first, so that the rows read are exactly
			// those up to it even while the agent commits more.
			top := s.maxRowID(ctx, q.table)
			if top <= last[q.table] {
				continue
			}
			rows, err := s.db.QueryContext(ctx, q.query+` AND rowid <= ?`, last[q.table], top)
			if noTable(err) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			at := time.Now()
			for rows.Next() {
				var id, v int64
				var sym string
				if err := rows.Scan(&id, &sym, &v); err != nil {
					rows.Close()
					return err
				}
				seen(q.table, sym, v, at)
			}
			rows.Close()
			if err := rows.Err(); err != nil && ctx.Err() == nil {
				return err
			}
			last[q.table] = top
		}
	}
}

// maxRowID is the newest row of a table (0 without the table).
func (s *store) maxRowID(ctx context.Context, table string) int64 {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(rowid) FROM `+table).Scan(&n); err != nil {
		return 0
	}
	return n.Int64
}

func (s *store) count(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	if noTable(err) {
		return 0, nil
	}
	return n, err
}

// tradeCounts is the number of distinct trade ids per symbol.
func (s *store) tradeCounts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	rows, err := s.db.QueryContext(ctx, `SELECT symbol, count(DISTINCT trade_id) FROM trades GROUP BY symbol`)
	if noTable(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var sym string
		var n int64
		if err := rows.Scan(&sym, &n); err != nil {
			return nil, err
		}
		out[sym] = n
	}
	return out, rows.Err()
}

// idHistory remembers, per symbol, when the simulator's book reached each
// update id (at the 10ms ticks of the clock), so that a bookTicker's u
// gives the moment it was generated, as an upper bound.
type idHistory struct {
	mu    sync.Mutex
	index map[string]int
	marks [][]idMark
}

type idMark struct {
	at time.Time
	id int64
}

func newIDHistory(syms []string) *idHistory {
	h := &idHistory{index: map[string]int{}, marks: make([][]idMark, len(syms))}
	for i, s := range syms {
		h.index[s] = i
	}
	return h
}

// note records the update ids of every symbol (in Symbols order) at at.
func (h *idHistory) note(at time.Time, ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, id := range ids {
		m := h.marks[i]
		if n := len(m); n == 0 || m[n-1].id != id {
			h.marks[i] = append(m, idMark{at, id})
		}
	}
}

// genTime is when symbol sym's book first reached update id u. The marks
// before it are dropped: a symbol's rows land in id order.
func (h *idHistory) genTime(sym string, u int64) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i, ok := h.index[sym]
	if !ok {
		return time.Time{}, false
	}
	m := h.marks[i]
	j, _ := slices.BinarySearchFunc(m, u, func(x idMark, u int64) int {
		switch {
		case x.id < u:
			return -1
		case x.id > u:
			return 1
		}
		return 0
	})
	if j == len(m) {
		return time.Time{}, false
	}
	at := m[j].at
	if j > 0 {
		h.marks[i] = slices.Delete(m, 0, j)
	}
	return at, true
}

func summarize(v []float64) lagStats {
	if len(v) == 0 {
		return lagStats{}
	}
	slices.Sort(v)
	q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
	return lagStats{N: len(v), P50ms: q(0.5), P99ms: q(0.99), Maxms: v[len(v)-1]}
}
