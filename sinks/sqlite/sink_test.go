package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/sinks"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "data", "sluice.db") }

// openSink opens a sink on path and closes it when the test ends.
func openSink(t *testing.T, path string, opts ...func(*Sink)) *Sink {
	t.Helper()
	s := New(Config{Path: path, BusyTimeout: time.Second}, nil)
	for _, o := range opts {
		o(s)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t *testing.T, s *Sink, points ...sluice.Point) {
	t.Helper()
	if err := s.Write(context.Background(), points); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func trade(symbol string, id int64, price float64, at time.Time) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "symbol", Value: symbol}},
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(price)},
			{Key: "size", Value: sluice.Float(0.5)},
			{Key: "trade_id", Value: sluice.Int(id)},
			{Key: "buyer_maker", Value: sluice.Bool(true)},
		},
		Time:     at,
		Received: at.Add(time.Millisecond),
	}
}

// reader opens a second, independent connection to the file, as a user's
// query tool would.
func reader(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rows runs a query and returns every row's values.
func rows(t *testing.T, db *sql.DB, query string, args ...any) [][]any {
	t.Helper()
	r, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out [][]any
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, db *sql.DB, table string) int64 {
	t.Helper()
	return rows(t, db, "SELECT count(*) FROM "+quote(table))[0][0].(int64)
}

func TestValuesRoundTrip(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	fields := []sluice.Field{
		{Key: "f_small", Value: sluice.Float(0.1)},
		{Key: "f_max", Value: sluice.Float(math.MaxFloat64)},
		{Key: "f_tiny", Value: sluice.Float(math.SmallestNonzeroFloat64)},
		{Key: "f_neg", Value: sluice.Float(-1.5e-300)},
		{Key: "f_inf", Value: sluice.Float(math.Inf(1))},
		{Key: "f_ninf", Value: sluice.Float(math.Inf(-1))},
		{Key: "f_whole", Value: sluice.Float(3)},
		{Key: "i_min", Value: sluice.Int(math.MinInt64)},
		{Key: "i_max", Value: sluice.Int(math.MaxInt64)},
		{Key: "i_zero", Value: sluice.Int(0)},
		{Key: "u_zero", Value: sluice.Uint(0)},
		{Key: "u_int_max", Value: sluice.Uint(math.MaxInt64)},
		{Key: "u_above", Value: sluice.Uint(math.MaxInt64 + 1)},
		{Key: "u_max", Value: sluice.Uint(math.MaxUint64)},
		{Key: "s_empty", Value: sluice.String("")},
		{Key: "s_text", Value: sluice.String("héllo \"wörld\" 'x' \x00 after NUL 📈")},
		{Key: "b_true", Value: sluice.Bool(true)},
		{Key: "b_false", Value: sluice.Bool(false)},
	}
	write(t, s, sluice.Point{
		Measurement: "kinds",
		Tags:        []sluice.Tag{{Key: "tag", Value: "v with ' and \""}},
		Fields:      fields,
		Time:        t0,
		Received:    t0.Add(1500 * time.Nanosecond),
	})

	db := reader(t, path)
	got := rows(t, db, `SELECT time, received, time_s, tag, datetime(time_s, 'unixepoch', 'subsec') FROM kinds`)
	want := []any{t0.UnixNano(), t0.UnixNano() + 1500, float64(t0.UnixNano()) / 1e9, "v with ' and \"", "2026-03-04 05:06:07.123"}
	if len(got) != 1 {
		t.Fatalf("got %d rows, want 1", len(got))
	}
	for i := range want {
		if got[0][i] != want[i] {
			t.Errorf("column %d = %#v, want %#v", i, got[0][i], want[i])
		}
	}

	wantVals := map[string]any{
		"f_small": 0.1, "f_max": math.MaxFloat64, "f_tiny": math.SmallestNonzeroFloat64,
		"f_neg": -1.5e-300, "f_inf": math.Inf(1), "f_ninf": math.Inf(-1), "f_whole": 3.0,
		"i_min": int64(math.MinInt64), "i_max": int64(math.MaxInt64), "i_zero": int64(0),
		"u_zero": int64(0), "u_int_max": int64(math.MaxInt64),
		// Beyond int64: exact decimal text.
		"u_above": "9223372036854775808", "u_max": "18446744073709551615",
		"s_empty": "", "s_text": "héllo \"wörld\" 'x' \x00 after NUL 📈",
		"b_true": int64(1), "b_false": int64(0),
	}
	for _, f := range fields {
		v := rows(t, db, `SELECT `+quote(f.Key)+` FROM kinds`)[0][0]
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		if v != wantVals[f.Key] {
			t.Errorf("%s = %#v (%T), want %#v", f.Key, v, v, wantVals[f.Key])
		}
	}

	types := map[string]string{}
	for _, r := range rows(t, db, `SELECT name, type FROM pragma_table_info('kinds')`) {
		types[r[0].(string)] = r[1].(string)
	}
	for col, typ := range map[string]string{
		"time": "INTEGER", "received": "INTEGER", "tag": "TEXT", "f_small": "REAL",
		"i_min": "INTEGER", "u_max": "", "s_text": "TEXT", "b_true": "INTEGER",
	} {
		if types[col] != typ {
			t.Errorf("column %s has type %q, want %q", col, types[col], typ)
		}
	}
}

func TestNaNNegativeZeroAndMissingReceived(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, sluice.Point{
		Measurement: "m",
		Fields: []sluice.Field{
			{Key: "x", Value: sluice.Float(math.NaN())},
			{Key: "y", Value: sluice.Float(1)},
			{Key: "z", Value: sluice.Float(math.Copysign(0, -1))},
		},
		Time: t0,
	})
	got := rows(t, reader(t, path), `SELECT x, y, received, z FROM m`)
	// NaN and a missing received time are NULL; -0 reads back as 0, as
	// documented (SQLite stores whole REALs as integers).
	if len(got) != 1 || got[0][0] != nil || got[0][1] != 1.0 || got[0][2] != nil || got[0][3] != 0.0 {
		t.Fatalf("got %v, want [[<nil> 1 <nil> 0]]", got)
	}
}

func TestNewTagsAndFieldsAddColumns(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, sluice.Point{
		Measurement: "m",
		Tags:        []sluice.Tag{{Key: "a", Value: "1"}},
		Fields:      []sluice.Field{{Key: "x", Value: sluice.Int(1)}},
		Time:        t0,
	})
	// A point with no fields or tags at all, then one with new ones, in
	// one batch.
	write(t, s,
		sluice.Point{Measurement: "m", Time: t0.Add(time.Second)},
		sluice.Point{
			Measurement: "m",
			Tags:        []sluice.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "new"}},
			Fields:      []sluice.Field{{Key: "x", Value: sluice.Int(2)}, {Key: "y", Value: sluice.String("s")}},
			Time:        t0.Add(2 * time.Second),
		})
	got := rows(t, reader(t, path), `SELECT a, b, x, y FROM m ORDER BY time`)
	want := [][]any{{"1", nil, int64(1), nil}, {nil, nil, nil, nil}, {"2", "new", int64(2), "s"}}
	if !equalRows(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func equalRows(got, want [][]any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for j := range got[i] {
			if b, ok := got[i][j].([]byte); ok {
				got[i][j] = string(b)
			}
			if got[i][j] != want[i][j] {
				return false
			}
		}
	}
	return true
}

func TestDeclaredKeyUpserts(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	ctx := context.Background()
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	// Duplicates within one batch and across batches.
	write(t, s, trade("BTC", 1, 100, t0), trade("BTC", 2, 101, t0), trade("BTC", 1, 102, t0), trade("ETH", 1, 5, t0))
	write(t, s, trade("BTC", 2, 103, t0.Add(time.Second)))
	// A later write without some fields keeps their stored values.
	write(t, s, sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "symbol", Value: "ETH"}},
		Fields:      []sluice.Field{{Key: "trade_id", Value: sluice.Int(1)}, {Key: "price", Value: sluice.Float(6)}},
		Time:        t0,
	})

	got := rows(t, reader(t, path), `SELECT symbol, trade_id, price, size, time FROM trades ORDER BY symbol, trade_id`)
	want := [][]any{
		{"BTC", int64(1), 102.0, 0.5, t0.UnixNano()},
		{"BTC", int64(2), 103.0, 0.5, t0.Add(time.Second).UnixNano()},
		{"ETH", int64(1), 6.0, 0.5, t0.UnixNano()},
	}
	if !equalRows(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Large batches go through multi-row statements; duplicates inside one
// statement and shape changes in the middle of a run must still work.
func TestLargeBatchesWithDuplicatesAndMixedShapes(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	var points []sluice.Point
	add := func(n int) {
		for range n {
			i := len(points)
			points = append(points, trade("BTC", int64(i%50), float64(i), t0))
		}
	}
	add(150)
	for range 3 {
		points = append(points, sluice.Point{Measurement: "other", Fields: []sluice.Field{{Key: "x", Value: sluice.Int(1)}}, Time: t0})
	}
	add(70)
	points = append(points, sluice.Point{Measurement: "trades", Time: time.Time{}}) // rejected, mid-run
	add(100)
	err := s.Write(context.Background(), points)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 1 {
		t.Fatalf("Write = %v, want one rejected point", err)
	}
	db := reader(t, path)
	got := rows(t, db, `SELECT trade_id, price FROM trades ORDER BY trade_id`)
	if len(got) != 50 {
		t.Fatalf("%d rows, want 50", len(got))
	}
	for _, r := range got {
		// Each point's price is its index in the batch.
		id := r[0].(int64)
		last := int64(-1)
		for i, p := range points {
			if p.Measurement == "trades" && !p.Time.IsZero() {
				if v, _ := p.Field("trade_id"); v.Int() == id {
					last = int64(i)
				}
			}
		}
		if r[1] != float64(last) {
			t.Errorf("trade %d has price %v, want %d (its last write)", id, r[1], last)
		}
	}
	if n := count(t, db, "other"); n != 3 {
		t.Errorf("other has %d rows, want 3", n)
	}
}

func TestWithoutKeyEveryPointIsARow(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0), trade("BTC", 1, 100, t0))
	write(t, s, trade("BTC", 1, 100, t0))
	if n := count(t, reader(t, path), "trades"); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
}

func TestKeyDeclaredAfterTableWithoutDuplicates(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	ctx := context.Background()
	write(t, s, trade("BTC", 1, 100, t0), trade("BTC", 2, 102, t0))
	// A row with a NULL key column is never a duplicate.
	write(t, s, sluice.Point{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTC"}}, Time: t0},
		sluice.Point{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTC"}}, Time: t0})
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	db := reader(t, path)
	if n := count(t, db, "trades"); n != 4 {
		t.Fatalf("%d rows after Declare, want all 4", n)
	}
	idx := rows(t, db, `SELECT name, "unique" FROM pragma_index_list('trades') WHERE name = 'trades_key'`)
	if len(idx) != 1 || idx[0][1] != int64(1) {
		t.Fatalf("key index: %v", idx)
	}
	write(t, s, trade("BTC", 2, 104, t0))
	if got := rows(t, db, `SELECT price FROM trades WHERE trade_id = 2`); !equalRows(got, [][]any{{104.0}}) {
		t.Fatalf("after upsert got %v", got)
	}

	// Redeclaring another key the rows satisfy replaces the index.
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	cols := rows(t, db, `SELECT i.name FROM pragma_index_list('trades') l, pragma_index_info(l.name) i WHERE l."unique"`)
	if !equalRows(cols, [][]any{{"trade_id"}}) {
		t.Fatalf("key index columns %v, want trade_id", cols)
	}
}

// seqPoint is what the synth plugin writes: symbols cycled, seq counting.
func seqPoint(m string, seq int) sluice.Point {
	return sluice.Point{
		Measurement: m,
		Tags:        []sluice.Tag{{Key: "symbol", Value: []string{"AAA", "BBB"}[seq%2]}},
		Fields:      []sluice.Field{{Key: "seq", Value: sluice.Int(int64(seq))}, {Key: "price", Value: sluice.Float(float64(seq))}},
		Time:        t0.Add(time.Duration(seq) * time.Millisecond),
	}
}

// A measurement's rows, written under one key, and a second declaration
// of it with a key they violate: Declare used to delete every row but the
// last of each new key (3000 rows became 2). It must refuse, delete
// nothing, keep the old key, and say how to see the rows.
func TestKeyTheRowsViolateIsRefused(t *testing.T) {
	const n = 3000
	path := dbPath(t)
	s := openSink(t, path)
	ctx := context.Background()
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "synth", Unique: []string{"symbol", "seq"}}}); err != nil {
		t.Fatal(err)
	}
	var ps []sluice.Point
	for i := range n {
		ps = append(ps, seqPoint("synth", i))
	}
	write(t, s, ps...)
	write(t, s, seqPoint("other", 1), seqPoint("other", 3))

	err := s.Declare(ctx, []sluice.Measurement{
		{Name: "synth", Unique: []string{"symbol"}},
		{Name: "other", Unique: []string{"symbol", "seq"}}, // the rows satisfy this one
	})
	var ref *sinks.RefusedError
	if !errors.As(err, &ref) || ref.Measurement != "synth" || sinks.IsFailed(err) {
		t.Fatalf("Declare = %v, want a RefusedError for synth", err)
	}
	msg := err.Error()
	for _, want := range []string{`table "synth"`, "2 keys with more than one row", path, `GROUP BY "symbol" HAVING count(*) > 1`, "rename"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	db := reader(t, path)
	if got := count(t, db, "synth"); got != n {
		t.Fatalf("%d rows after the refused Declare, want all %d", got, n)
	}
	// The query the error gives works and lists the keys.
	_, q, _ := strings.Cut(msg, "sqlite3 "+path+" '")
	q, _, _ = strings.Cut(q, "'")
	if got := rows(t, db, q); !equalRows(got, [][]any{{"AAA", int64(n / 2)}, {"BBB", int64(n / 2)}}) {
		t.Errorf("%s = %v", q, got)
	}
	keyCols := func(table string) [][]any {
		return rows(t, db, `SELECT i.name FROM pragma_index_list(?) l, pragma_index_info(l.name) i WHERE l."unique" ORDER BY i.name`, table)
	}
	if got := keyCols("synth"); !equalRows(got, [][]any{{"seq"}, {"symbol"}}) {
		t.Errorf("synth key index on %v, want the old one (seq, symbol)", got)
	}
	if got := keyCols("other"); !equalRows(got, [][]any{{"seq"}, {"symbol"}}) {
		t.Errorf("other key index on %v: the measurement declared beside the refused one did not get its key", got)
	}
	// Not wedged: writes go on, upserting by the key the table kept.
	write(t, s, seqPoint("synth", 7), seqPoint("synth", n))
	if got := count(t, db, "synth"); got != n+1 {
		t.Fatalf("%d rows after writing one old and one new point, want %d", got, n+1)
	}
	// And a reopened sink refuses again, rather than deleting.
	s.Close()
	s = openSink(t, path)
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "synth", Unique: []string{"symbol"}}}); !sinks.IsRefused(err) {
		t.Fatalf("Declare after reopening = %v, want refused", err)
	}
	if got := count(t, db, "synth"); got != n+1 {
		t.Fatalf("%d rows, want %d", got, n+1)
	}
}

// A key index dropped by hand, and rows sharing a key written meanwhile:
// the sink cannot put the index back. Failing every write would stop
// every feed on the file; it writes the measurement without its key.
func TestMissingKeyIndexWithDuplicatesDoesNotWedgeWrites(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	ctx := context.Background()
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "synth", Unique: []string{"symbol", "seq"}}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, seqPoint("synth", 1))
	db := reader(t, path)
	if _, err := db.Exec(`DROP INDEX synth_key; INSERT INTO synth (time, symbol, seq) VALUES (1, 'BBB', 1)`); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 3 { // the first may fail on the schema changed under the prepared statement
		if err = s.Write(ctx, []sluice.Point{seqPoint("synth", 2)}); err == nil {
			break
		}
		if sinks.IsFailed(err) {
			t.Fatalf("Write = %v, want a transient error at worst", err)
		}
	}
	if err != nil {
		t.Fatalf("Write still fails: %v", err)
	}
	if got := count(t, db, "synth"); got != 3 {
		t.Fatalf("%d rows, want 3", got)
	}
}

// SQLite refuses a table more columns than its limit (2000), and no
// retry changes that: a point that would need more is rejected, the
// rest of the batch written, and the next batch too.
func TestTooManyColumnsIsRejectedNotRetried(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	ctx := context.Background()
	if s.maxColumns != 2000 {
		t.Fatalf("column limit read as %d, want SQLite's default 2000", s.maxColumns)
	}
	wide := func(from, to int) sluice.Point {
		p := sluice.Point{Measurement: "wide", Tags: []sluice.Tag{{Key: "t", Value: "x"}}, Time: t0.Add(time.Duration(from))}
		for i := from; i < to; i++ {
			p.Fields = append(p.Fields, sluice.Field{Key: "f" + strconv.Itoa(i), Value: sluice.Int(int64(i))})
		}
		return p
	}
	// time, received, time_s, t and 1990 fields: 1994 columns.
	write(t, s, wide(0, 1990))
	batch := []sluice.Point{
		trade("BTC", 1, 100, t0),
		wide(1990, 1994), // 1998
		wide(1994, 1998), // 2002: rejected
		wide(1994, 1996), // 2000
		wide(1994, 1998), // rejected, the same shape as the one before last
		wide(0, 10),      // known columns only
		wide(1996, 1997), // 2001: rejected
		trade("BTC", 2, 100, t0),
	}
	err := s.Write(ctx, batch)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 3 || !strings.Contains(rej.Sample, "over SQLite's limit of 2000") {
		t.Fatalf("Write = %v, want 3 points rejected for the column limit", err)
	}
	db := reader(t, path)
	if got := len(rows(t, db, `SELECT name FROM pragma_table_xinfo('wide')`)); got != 2000 {
		t.Errorf("wide has %d columns, want 2000", got)
	}
	if got := count(t, db, "wide"); got != 4 {
		t.Errorf("wide has %d rows, want 4", got)
	}
	if got := count(t, db, "trades"); got != 2 {
		t.Errorf("trades has %d rows, want 2", got)
	}
	// The next batch is not held up either, and a reopened sink knows the
	// table is full.
	s.Close()
	s = openSink(t, path)
	err = s.Write(ctx, []sluice.Point{wide(5000, 5001), trade("BTC", 3, 100, t0)})
	if !errors.As(err, &rej) || rej.Rejected != 1 {
		t.Fatalf("Write after reopening = %v, want 1 point rejected", err)
	}
	if got := count(t, db, "trades"); got != 3 {
		t.Errorf("trades has %d rows, want 3", got)
	}
}

func TestKeyStaysWhenANameTurnsUpInTheOtherRole(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, trade("BTC", 1, 100, t0))
	odd := sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "symbol", Value: "BTC"}, {Key: "trade_id", Value: "7"}},
		Time:        t0,
	}
	write(t, s, odd, trade("BTC", 1, 101, t0))
	db := reader(t, path)
	cols := rows(t, db, `SELECT name FROM pragma_index_info('trades_key') ORDER BY name`)
	if !equalRows(cols, [][]any{{"symbol"}, {"trade_id"}}) {
		t.Fatalf("key index on %v, want symbol, trade_id", cols)
	}
	if n := count(t, db, "trades"); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestKeyIncludingTime(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "candles", Unique: []string{"symbol", "interval", "time"}}}); err != nil {
		t.Fatal(err)
	}
	candle := func(close float64, at time.Time) sluice.Point {
		return sluice.Point{
			Measurement: "candles",
			Tags:        []sluice.Tag{{Key: "interval", Value: "1m"}, {Key: "symbol", Value: "BTC"}},
			Fields:      []sluice.Field{{Key: "close", Value: sluice.Float(close)}},
			Time:        at,
		}
	}
	write(t, s, candle(1, t0), candle(2, t0), candle(3, t0.Add(time.Minute)))
	write(t, s, candle(4, t0.Add(time.Minute)))
	got := rows(t, reader(t, path), `SELECT close FROM candles ORDER BY time`)
	if !equalRows(got, [][]any{{2.0}, {4.0}}) {
		t.Fatalf("got %v, want [[2] [4]]", got)
	}
	// Time leads the key index, so that new rows of every series go to
	// its end rather than each into its own part of the B-tree.
	cols := rows(t, reader(t, path), `SELECT name FROM pragma_index_info('candles_key') ORDER BY seqno`)
	if !equalRows(cols, [][]any{{"time"}, {"symbol"}, {"interval"}}) {
		t.Fatalf("key index columns %v, want time, symbol, interval", cols)
	}
}

// A key index made series first (before the sink ordered it time first)
// is kept as it is on reopening; dropped by hand, it comes back time first,
// as sinks/sqlite/doc.go tells operators.
func TestSeriesFirstKeyIndexKeptUntilDropped(t *testing.T) {
	path := dbPath(t)
	decl := []sluice.Measurement{{Name: "candles", Unique: []string{"symbol", "time"}}}
	candle := sluice.Point{Measurement: "candles", Tags: []sluice.Tag{{Key: "symbol", Value: "BTC"}},
		Fields: []sluice.Field{{Key: "close", Value: sluice.Float(1)}}, Time: t0}
	s := openSink(t, path)
	if err := s.Declare(context.Background(), decl); err != nil {
		t.Fatal(err)
	}
	write(t, s, candle)
	s.Close()
	db := reader(t, path)
	if _, err := db.Exec(`DROP INDEX candles_key; CREATE UNIQUE INDEX candles_key ON candles (symbol, time)`); err != nil {
		t.Fatal(err)
	}
	keyCols := func() [][]any {
		return rows(t, db, `SELECT name FROM pragma_index_info('candles_key') ORDER BY seqno`)
	}
	reopen := func() {
		s := openSink(t, path)
		if err := s.Declare(context.Background(), decl); err != nil {
			t.Fatal(err)
		}
		write(t, s, candle)
		s.Close()
	}
	reopen()
	if got := keyCols(); !equalRows(got, [][]any{{"symbol"}, {"time"}}) {
		t.Fatalf("reopening changed the key index to %v, want it kept (symbol, time)", got)
	}
	if _, err := db.Exec(`DROP INDEX candles_key`); err != nil {
		t.Fatal(err)
	}
	reopen()
	if got := keyCols(); !equalRows(got, [][]any{{"time"}, {"symbol"}}) {
		t.Fatalf("key index after it was dropped: %v, want time, symbol", got)
	}
	if n := count(t, db, "candles"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// A table whose key index leads with time gets no separate time index:
// the key index serves time ranges, and a second B-tree on time would
// cost every row an insert. A key without time brings the time index
// (again), and the time index stays when time comes back to the key.
func TestTimeIndexOnlyWhereTheKeyLacksTime(t *testing.T) {
	path := dbPath(t)
	db := reader(t, path)
	candle := func(close float64) sluice.Point {
		return sluice.Point{Measurement: "candles", Tags: []sluice.Tag{{Key: "symbol", Value: "BTC"}},
			Fields: []sluice.Field{{Key: "close", Value: sluice.Float(close)}}, Time: t0}
	}
	step := func(unique []string, want [][]any, uses string) {
		t.Helper()
		s := openSink(t, path)
		if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "candles", Unique: unique}}); err != nil {
			t.Fatal(err)
		}
		write(t, s, candle(1))
		s.Close()
		got := rows(t, db, `SELECT l.name, group_concat(i.name, ',') FROM pragma_index_list('candles') l, pragma_index_info(l.name) i
			GROUP BY l.name ORDER BY l.name`)
		if !equalRows(got, want) {
			t.Fatalf("key %v: indexes %v, want %v", unique, got, want)
		}
		queries := []string{`SELECT close FROM candles WHERE time >= 1 AND time < 2 ORDER BY time`}
		if uses == "candles_key" {
			// The dashboards' query shape: some tags and a time range.
			queries = append(queries, `SELECT close FROM candles WHERE symbol = 'BTC' AND time BETWEEN 1 AND 2 ORDER BY time`)
		}
		for _, q := range queries {
			plan := rows(t, db, "EXPLAIN QUERY PLAN "+q)
			if len(plan) != 1 || !strings.Contains(plan[0][3].(string), uses) {
				t.Errorf("key %v: %s: plan %v does not use %s alone", unique, q, plan, uses)
			}
		}
	}
	step([]string{"symbol", "time"}, [][]any{{"candles_key", "time,symbol"}}, "candles_key")
	step([]string{"symbol", "close"}, [][]any{{"candles_by_time", "time"}, {"candles_key", "symbol,close"}}, "candles_by_time")
	step([]string{"symbol", "time"}, [][]any{{"candles_by_time", "time"}, {"candles_key", "time,symbol"}}, "candles_")
	// Reopened, the sink finds the time index it made: no second one.
	step([]string{"symbol", "close"}, [][]any{{"candles_by_time", "time"}, {"candles_key", "symbol,close"}}, "candles_by_time")
	if n := count(t, db, "candles"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestNastyNames(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	nasty := []string{
		`we"ird 'table'; DROP TABLE x; --`,
		"select",
		"Ünïcödé 📈 name",
		"sqlite_master",
		"Trades",
		"trades",
		"_sluice_names",
		"trades_by_time",
	}
	var points []sluice.Point
	for i, m := range nasty {
		points = append(points, sluice.Point{
			Measurement: m,
			Tags: []sluice.Tag{
				{Key: "from", Value: "t1"},
				{Key: "side", Value: "tag-side"},
				{Key: "time", Value: "tag-time"},
				{Key: `x"y`, Value: "quoted"},
			},
			Fields: []sluice.Field{
				{Key: "Price", Value: sluice.Int(int64(i))},
				{Key: "price", Value: sluice.Int(int64(100 + i))},
				{Key: "received", Value: sluice.String("field-received")},
				{Key: "side", Value: sluice.Float(0.5)},
				{Key: "sp ace", Value: sluice.Bool(true)},
				{Key: "rowid", Value: sluice.Int(-1)},
			},
			Time: t0,
		})
	}
	write(t, s, points...)
	// The mapping survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSink(t, path)
	write(t, s, points...)

	db := reader(t, path)
	tables := map[string]string{}
	for _, r := range rows(t, db, `SELECT measurement, name FROM _sluice_names WHERE role = 'table'`) {
		tables[r[0].(string)] = r[1].(string)
	}
	seen := map[string]bool{}
	for i, m := range nasty {
		tbl := tables[m]
		if tbl == "" || seen[fold(tbl)] {
			t.Fatalf("measurement %q has table %q (taken: %v)", m, tbl, seen[fold(tbl)])
		}
		seen[fold(tbl)] = true
		cols := map[string]string{}
		for _, r := range rows(t, db, `SELECT role || ':' || key, name FROM _sluice_names WHERE measurement = ? AND role IN ('tag', 'field')`, m) {
			cols[r[0].(string)] = r[1].(string)
		}
		got := rows(t, db, "SELECT count(*), "+strings.Join([]string{
			quote(cols["tag:from"]), quote(cols["tag:side"]), quote(cols["tag:time"]), quote(cols[`tag:x"y`]),
			quote(cols["field:Price"]), quote(cols["field:price"]), quote(cols["field:received"]),
			quote(cols["field:side"]), quote(cols["field:sp ace"]), quote(cols["field:rowid"]), "time",
		}, ", ")+" FROM "+quote(tbl))
		want := []any{int64(2), "t1", "tag-side", "tag-time", "quoted", int64(i), int64(100 + i),
			"field-received", 0.5, int64(1), int64(-1), t0.UnixNano()}
		if !equalRows(got, [][]any{want}) {
			t.Errorf("measurement %q (table %q, columns %v): got %v, want %v", m, tbl, cols, got, want)
		}
	}
	// The documented suffix rule.
	if tables["trades"] != "trades_2" || tables["sqlite_master"] != "_sqlite_master" || tables["_sluice_names"] != "_sluice_names_2" {
		t.Errorf("tables: %v", tables)
	}
	cols := map[string]string{}
	for _, r := range rows(t, db, `SELECT role || ':' || key, name FROM _sluice_names WHERE measurement = 'select'`) {
		cols[r[0].(string)] = r[1].(string)
	}
	for k, v := range map[string]string{"tag:time": "time_tag", "field:received": "received_field",
		"field:side": "side_field", "field:price": "price_field", "field:Price": "Price", "field:rowid": "rowid_field"} {
		if cols[k] != v {
			t.Errorf("%s is in column %q, want %q", k, cols[k], v)
		}
	}
}

func TestRejectsWhatItCannotStore(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	good := trade("BTC", 1, 100, t0)
	points := []sluice.Point{
		good,
		{Measurement: "trades", Time: time.Time{}}, // zero time
		{Measurement: "trades", Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Measurement: "", Time: t0},
		{Measurement: "m", Tags: []sluice.Tag{{Key: "a\x00b", Value: "x"}}, Time: t0},
		{Measurement: "m", Fields: []sluice.Field{{Key: "x", Value: sluice.Int(1)}, {Key: "x", Value: sluice.Int(2)}}, Time: t0},
		{Measurement: "m", Fields: []sluice.Field{{Key: "x"}}, Time: t0}, // invalid kind
		trade("BTC", 2, 101, t0),
	}
	err := s.Write(context.Background(), points)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 6 || rej.Sample == "" {
		t.Fatalf("Write = %v, want RejectedError of 6", err)
	}
	if n := count(t, reader(t, path), "trades"); n != 2 {
		t.Fatalf("%d rows, want the 2 good ones", n)
	}
}

func TestFailedBatchRollsBack(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0))
	db := reader(t, path)
	// Make the file refuse one particular row, as a full disk or a
	// constraint would, after others in the batch have gone in.
	if _, err := db.Exec(`CREATE TRIGGER boom BEFORE INSERT ON trades WHEN NEW.price < 0 BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	err := s.Write(context.Background(), []sluice.Point{
		trade("BTC", 2, 101, t0),
		sluice.Point{Measurement: "trades", Tags: []sluice.Tag{{Key: "venue", Value: "new column"}}, Time: t0},
		trade("BTC", 3, -1, t0),
		trade("BTC", 4, 102, t0),
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Write = %v, want the trigger's error", err)
	}
	if n := count(t, db, "trades"); n != 1 {
		t.Fatalf("%d rows after failed batch, want 1", n)
	}
	if _, err := db.Exec(`DROP TRIGGER boom`); err != nil {
		t.Fatal(err)
	}
	write(t, s, trade("BTC", 2, 101, t0), trade("BTC", 3, 1, t0))
	if n := count(t, db, "trades"); n != 3 {
		t.Fatalf("%d rows after retry, want 3", n)
	}
}

func TestReopenKeepsAppending(t *testing.T) {
	path := dbPath(t)
	ctx := context.Background()
	s := New(Config{Path: path}, nil)
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	side := sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "side", Value: "buy"}, {Key: "symbol", Value: "BTC"}},
		Fields:      []sluice.Field{{Key: "side", Value: sluice.Int(1)}, {Key: "trade_id", Value: sluice.Int(9)}},
		Time:        t0,
	}
	write(t, s, trade("BTC", 1, 100, t0), side)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// No Declare this time: the key index in the file still applies.
	s = openSink(t, path)
	side.Fields[0].Value = sluice.Int(2)
	more := trade("BTC", 2, 101, t0)
	more.Fields = append(more.Fields, sluice.Field{Key: "note", Value: sluice.String("new")})
	write(t, s, trade("BTC", 1, 105, t0), side, more)

	got := rows(t, reader(t, path), `SELECT trade_id, price, side, side_field, note FROM trades ORDER BY trade_id`)
	want := [][]any{
		{int64(1), 105.0, nil, nil, nil},
		{int64(2), 101.0, nil, nil, "new"},
		{int64(9), nil, "buy", int64(2), nil},
	}
	if !equalRows(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSchemaDroppedBehindOurBackIsRecreated(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0))
	db := reader(t, path)
	if _, err := db.Exec(`DROP TABLE trades`); err != nil {
		t.Fatal(err)
	}
	err := s.Write(context.Background(), []sluice.Point{trade("BTC", 2, 100, t0)})
	if err == nil || sinks.IsFailed(err) {
		t.Fatalf("Write = %v, want a transient error", err)
	}
	write(t, s, trade("BTC", 2, 100, t0))
	if n := count(t, db, "trades"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestReadOnlyFileIsFailed(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0))
	s.Close()

	// query_only makes SQLite refuse writes as a read-only file would,
	// and works when the tests run as root, which chmod does not stop.
	s = openSink(t, path, func(s *Sink) { s.dsnExtra = "_query_only=1" })
	err := s.Write(context.Background(), []sluice.Point{trade("BTC", 2, 100, t0)})
	if !sinks.IsFailed(err) {
		t.Fatalf("Write = %v, want FailedError", err)
	}
	// A new table needs the schema transaction, which fails the same way.
	err = s.Write(context.Background(), []sluice.Point{{Measurement: "other", Time: t0}})
	if !sinks.IsFailed(err) {
		t.Fatalf("Write = %v, want FailedError", err)
	}
}

func TestReadOnlyDirectoryIsFailed(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Skip("chmod does not stop this user (root?); TestReadOnlyFileIsFailed covers SQLITE_READONLY")
	}
	s := New(Config{Path: filepath.Join(dir, "sluice.db")}, nil)
	defer s.Close()
	if err := s.Open(context.Background()); !sinks.IsFailed(err) {
		t.Fatalf("Open = %v, want FailedError", err)
	}
}

func TestUnopenablePathIsFailed(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"parent is a file": filepath.Join(file, "sluice.db"), // ENOTDIR
		"path is a dir":    dir,                              // SQLITE_CANTOPEN
		"not a database":   garbage,                          // SQLITE_NOTADB
	} {
		t.Run(name, func(t *testing.T) {
			s := New(Config{Path: path}, nil)
			defer s.Close()
			if err := s.Open(context.Background()); !sinks.IsFailed(err) {
				t.Fatalf("Open = %v, want FailedError", err)
			}
		})
	}
}

func TestDiskFullIsFailed(t *testing.T) {
	path := dbPath(t)
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0))
	s.Close()

	// A page limit at the file's current size stands in for a full disk.
	var pages int64
	if err := reader(t, path).QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	s = openSink(t, path, func(s *Sink) { s.dsnExtra = "_pragma=max_page_count(" + strconv.FormatInt(pages, 10) + ")" })
	var points []sluice.Point
	for i := range 5000 {
		points = append(points, trade("BTC", int64(i), 100, t0))
	}
	err := s.Write(context.Background(), points)
	if !sinks.IsFailed(err) {
		t.Fatalf("Write = %v, want FailedError", err)
	}
	if n := count(t, reader(t, path), "trades"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestBusyIsTransient(t *testing.T) {
	path := dbPath(t)
	s := New(Config{Path: path, BusyTimeout: 50 * time.Millisecond}, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write(t, s, trade("BTC", 1, 100, t0))

	other := reader(t, path)
	other.SetMaxOpenConns(1)
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO trades (time) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), []sluice.Point{trade("BTC", 2, 100, t0)})
	if err == nil || sinks.IsFailed(err) {
		t.Fatalf("Write while locked = %v, want a transient error", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	write(t, s, trade("BTC", 2, 100, t0))
}

func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "we?ird #dir %20 & 'x'", "a?b=c#d.db")
	s := openSink(t, path)
	write(t, s, trade("BTC", 1, 100, t0))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file not at its path: %v", err)
	}
	if n := count(t, reader(t, "file:"+escapePath(path)), "trades"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestLifecycle(t *testing.T) {
	path := dbPath(t)
	s := New(Config{Path: path}, nil)
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("New touched the file system: %v", err)
	}
	if err := s.Write(context.Background(), nil); err == nil {
		t.Fatal("Write before Open succeeded")
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	if err := s.Open(context.Background()); err == nil {
		t.Fatal("second Open succeeded")
	}
	write(t, s) // an empty batch is fine
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := s.Write(context.Background(), []sluice.Point{trade("BTC", 1, 1, t0)}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if err := New(Config{Path: path}, nil).Close(); err != nil {
		t.Fatalf("Close without Open: %v", err)
	}
	var mode string
	if err := reader(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// The insert statements are prepared on the driver connection itself, out
// of database/sql's sight: Close must finalize them, those retired by a
// key change included, or SQLite keeps the connection open as a zombie
// and never checkpoints and removes the WAL file.
func TestCloseReleasesTheFile(t *testing.T) {
	path := dbPath(t)
	ctx := context.Background()
	s := New(Config{Path: path}, nil)
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	write(t, s, trade("BTC", 1, 100, t0), sluice.Point{Measurement: "books", Tags: []sluice.Tag{{Key: "symbol", Value: "BTC"}}, Time: t0})
	// Retires the statements prepared so far; the next Write closes
	// them and prepares the upserts, which Close then closes.
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"symbol", "trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, trade("BTC", 1, 101, t0))
	if err := s.Declare(ctx, []sluice.Measurement{{Name: "trades", Unique: []string{"trade_id"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("WAL file still there after Close (%v): a statement was left open", err)
	}
	got := rows(t, reader(t, path), `SELECT trade_id, price FROM trades`)
	if want := [][]any{{int64(1), 101.0}}; !equalRows(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestIndexes(t *testing.T) {
	// By default a table gets the time index only: the dashboards' queries
	// (some tags and a time range) use it, and a series index would be a
	// third B-tree to update on every row.
	queries := map[string]string{
		`SELECT price FROM trades WHERE time >= 1 AND time < 2`:                                   "trades_by_time",
		`SELECT price FROM trades WHERE exchange = 'x' AND symbol = 'y' AND time BETWEEN 1 AND 2`: "trades_by_time",
	}
	checkIndexes(t, Config{}, [][]any{{"trades_by_time", "time"}}, queries)

	queries[`SELECT price FROM trades WHERE exchange = 'x' AND symbol = 'y' AND time BETWEEN 1 AND 2`] = "trades_by_series"
	checkIndexes(t, Config{SeriesIndex: true}, [][]any{{"trades_by_series", "exchange,symbol,time"}, {"trades_by_time", "time"}}, queries)
}

// checkIndexes writes a trade through a sink with cfg's index settings
// and checks the table's indexes and the index each query's plan uses.
func checkIndexes(t *testing.T, cfg Config, want [][]any, queries map[string]string) {
	t.Helper()
	path := dbPath(t)
	s := openSink(t, path, func(s *Sink) { s.cfg.SeriesIndex = cfg.SeriesIndex })
	write(t, s, trade("BTC", 1, 100, t0))
	db := reader(t, path)
	got := rows(t, db, `SELECT l.name, group_concat(i.name, ',') FROM pragma_index_list('trades') l, pragma_index_info(l.name) i
		GROUP BY l.name ORDER BY l.name`)
	if !equalRows(got, want) {
		t.Fatalf("series_index %v: indexes %v, want %v", cfg.SeriesIndex, got, want)
	}
	for q, idx := range queries {
		plan := rows(t, db, "EXPLAIN QUERY PLAN "+q)
		if len(plan) == 0 || !strings.Contains(plan[0][3].(string), idx) {
			t.Errorf("series_index %v: %s: plan %v does not use %s", cfg.SeriesIndex, q, plan, idx)
		}
	}
}

// FuzzNames writes a point under arbitrary names and reads it back through
// the _sluice_names mapping, which is how quoting bugs would show.
func FuzzNames(f *testing.F) {
	f.Add("trades", "symbol", "price")
	f.Add(`a"b`, `c""d`, `e'f`)
	f.Add("select", "from", "where")
	f.Add("Trades", "time", "received")
	f.Add("sqlite_x", "side", "side")
	f.Add("ünï 📈", "X", "x")
	path := filepath.Join(f.TempDir(), "fuzz.db")
	s := New(Config{Path: path}, nil)
	if err := s.Open(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	n := int64(0)
	f.Fuzz(func(t *testing.T, measurement, tagKey, fieldKey string) {
		n++
		at := time.Unix(0, n)
		p := sluice.Point{
			Measurement: measurement,
			Tags:        []sluice.Tag{{Key: tagKey, Value: "tag value"}},
			Fields:      []sluice.Field{{Key: fieldKey, Value: sluice.Int(n)}},
			Time:        at,
		}
		err := s.Write(context.Background(), []sluice.Point{p})
		if !nameOK(measurement) || !nameOK(tagKey) || !nameOK(fieldKey) {
			var rej *sinks.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("Write of invalid names = %v, want RejectedError", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		name := func(role, key string) string {
			var v string
			if err := db.QueryRow(`SELECT name FROM _sluice_names WHERE measurement = ? AND role = ? AND key = ?`,
				measurement, role, key).Scan(&v); err != nil {
				t.Fatalf("name of %s %q: %v", role, key, err)
			}
			return v
		}
		var tag string
		var field int64
		q := "SELECT " + quote(name("tag", tagKey)) + ", " + quote(name("field", fieldKey)) +
			" FROM " + quote(name("table", "")) + " WHERE time = ?"
		if err := db.QueryRow(q, at.UnixNano()).Scan(&tag, &field); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if tag != "tag value" || field != n {
			t.Fatalf("read back %q, %d; want %q, %d", tag, field, "tag value", n)
		}
	})
}
