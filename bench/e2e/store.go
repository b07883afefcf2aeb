package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // the driver the SQLite sink uses
)

// store is where the harness looks, from outside the agent, for what has
// been committed: the newest trade id per symbol (polled while the stream
// runs) and the distinct ids per symbol (counted once at the end).
type store interface {
	maxIDs(ctx context.Context) (map[string]int64, error)
	counts(ctx context.Context) (map[string]idCount, error)
	Close() error
}

type idCount struct{ n, min, max int64 }

// sqliteStore reads the trades table over its own read-only connection.
// WAL mode lets it read while the writer commits. A poll reads only the
// rows committed since the one before, by rowid (a new row's rowid is
// above every committed row's), so it costs the same whatever the table's
// indexes and however big it grows. NOT INDEXED keeps SQLite to that:
// with an index leading with symbol (floor-cgo's) it would otherwise scan
// the whole index for the GROUP BY.
type sqliteStore struct {
	db    *sql.DB
	stmt  *sql.Stmt
	after int64 // the highest rowid seen
}

// pollQuery is the newest trade id of each symbol among the rows after a
// rowid, and the highest rowid among them.
const pollQuery = `SELECT symbol, max(trade_id), max(rowid) FROM trades NOT INDEXED WHERE rowid > ? GROUP BY symbol`

// openSQLite opens the store at path. Every row of its trades table is a
// trade of the benchmark's stream.
func openSQLite(path string) (*sqliteStore, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(2000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return &sqliteStore{db: db}, nil
}

// maxIDs returns the newest trade id of each symbol with rows committed
// since the last call.
func (s *sqliteStore) maxIDs(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	if s.stmt == nil {
		st, err := s.db.PrepareContext(ctx, pollQuery)
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				return out, nil // nothing written yet
			}
			return nil, err
		}
		s.stmt = st
	}
	rows, err := s.stmt.QueryContext(ctx, s.after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var sym string
		var id, rowid int64
		if err := rows.Scan(&sym, &id, &rowid); err != nil {
			return nil, err
		}
		out[sym] = id
		s.after = max(s.after, rowid)
	}
	return out, rows.Err()
}

func (s *sqliteStore) counts(ctx context.Context) (map[string]idCount, error) {
	out := map[string]idCount{}
	rows, err := s.db.QueryContext(ctx, `SELECT symbol, count(DISTINCT trade_id), min(trade_id), max(trade_id) FROM trades GROUP BY symbol`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return out, nil
		}
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var sym string
		var c idCount
		if err := rows.Scan(&sym, &c.n, &c.min, &c.max); err != nil {
			return nil, err
		}
		out[sym] = c
	}
	return out, rows.Err()
}

func (s *sqliteStore) Close() error {
	if s.stmt != nil {
		s.stmt.Close()
	}
	return s.db.Close()
}

// influxStore sees commits to InfluxDB 1.8 through the ack proxy the
// agent writes through, and counts what landed over influxd's HTTP API
// (InfluxQL) once the step is over.
type influxStore struct {
	base, db string
	client   *http.Client
	acks     *ackProxy
}

func (s *influxStore) query(ctx context.Context, q string) ([]influxSeries, error) {
	u := s.base + "/query?" + url.Values{"db": {s.db}, "q": {q}, "epoch": {"ns"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("influx query: %s: %s", resp.Status, body)
	}
	var r struct {
		Results []struct {
			Series []influxSeries `json:"series"`
			Error  string         `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("influx query: %w", err)
	}
	if len(r.Results) == 0 {
		return nil, nil
	}
	if e := r.Results[0].Error; e != "" {
		return nil, fmt.Errorf("influx query: %s", e)
	}
	return r.Results[0].Series, nil
}

type influxSeries struct {
	Tags   map[string]string `json:"tags"`
	Values [][]json.Number   `json:"values"`
}

func (s *influxStore) maxIDs(context.Context) (map[string]int64, error) {
	return s.acks.maxIDs(), nil
}

func (s *influxStore) counts(ctx context.Context) (map[string]idCount, error) {
	series, err := s.query(ctx, `SELECT count(trade_id), min(trade_id), max(trade_id) FROM trades GROUP BY symbol`)
	if err != nil {
		return nil, err
	}
	out := map[string]idCount{}
	for _, se := range series {
		if len(se.Values) > 0 && len(se.Values[0]) > 3 {
			var c idCount
			c.n, _ = se.Values[0][1].Int64()
			c.min, _ = se.Values[0][2].Int64()
			c.max, _ = se.Values[0][3].Int64()
			out[se.Tags["symbol"]] = c
		}
	}
	return out, nil
}

func (s *influxStore) Close() error { s.acks.Close(); return nil }

// influxExec runs a statement that changes the server (CREATE/DROP DATABASE).
func influxExec(ctx context.Context, base, q string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(url.Values{"q": {q}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("influx %q: %s: %s", q, resp.Status, b)
	}
	return nil
}
