package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/sinks"
)

// namesTable maps measurements, tags and fields to the table and column
// names holding them, so that names given a suffix on a clash keep it
// across restarts.
const namesTable = "_sluice_names"

// reservedColumns are the fixed columns plus the names SQLite resolves to
// the rowid when no column has them (kept free so that an operator's
// queries by rowid keep working).
var reservedColumns = []string{"time", "received", "time_s", "rowid", "oid", "_rowid_"}

// fixedColumns is how many columns every table has before any tag or
// field: time, received, time_s.
const fixedColumns = 3

type role uint8

const (
	roleTag role = iota + 1
	roleField
)

func (r role) String() string {
	if r == roleTag {
		return "tag"
	}
	return "field"
}

// colRef names a tag or field of a measurement.
type colRef struct {
	role role
	key  string
}

type colSpec struct {
	colRef
	kind sluice.Kind
}

// change is what one measurement needs before a batch can be written:
// its table, or more columns.
type change struct {
	measurement string
	cols        []colSpec
	seen        map[colRef]bool
}

// table is the in-memory copy of one measurement's table.
type table struct {
	measurement string
	name        string
	taken       map[string]bool   // folded names of its columns, generated and reserved ones included
	tags        map[string]string // tag key → column
	fields      map[string]string // field key → column
	key         []string          // columns of the key index; nil if none
	keyIndex    string
	timeIndex   string // an index on (time) alone; "" if none
	ncols       int    // columns in the file, the fixed ones included
}

func newTable(measurement, name string) *table {
	t := &table{
		measurement: measurement,
		name:        name,
		taken:       map[string]bool{},
		tags:        map[string]string{},
		fields:      map[string]string{},
	}
	for _, c := range reservedColumns {
		t.taken[c] = true
	}
	return t
}

func (t *table) column(r role, key string) string {
	if r == roleTag {
		return t.tags[key]
	}
	return t.fields[key]
}

// allocColumn picks the column name for a new tag or field.
func (t *table) allocColumn(r role, key string) string {
	name := key
	if t.taken[fold(name)] {
		base := key + "_" + r.String()
		name = base
		for i := 2; t.taken[fold(name)]; i++ {
			name = base + "_" + strconv.Itoa(i)
		}
	}
	t.taken[fold(name)] = true
	if r == roleTag {
		t.tags[key] = name
	} else {
		t.fields[key] = name
	}
	return name
}

// resolveKey maps uniqueness names to columns, or returns nil while some
// name has no column yet.
func (t *table) resolveKey(names []string) []string {
	cols := make([]string, 0, len(names))
	for _, n := range names {
		c := t.tags[n]
		if c == "" {
			c = t.fields[n]
		}
		if c == "" && n == "time" {
			c = "time"
		}
		if c == "" {
			return nil
		}
		cols = append(cols, c)
	}
	return cols
}

// keyNeedsSync reports whether the key index must be (re)created for the
// declared names: they all have columns now, and the current index is not
// on columns holding them. A name that gains a column in the other role
// later (a field key that also turns up as a tag) keeps its index.
func (t *table) keyNeedsSync(names []string) bool {
	if len(names) == 0 || t.keyHolds(names) {
		return false
	}
	return t.resolveKey(names) != nil
}

// keyHolds reports whether the key index is on exactly one column holding
// each name, whichever role.
func (t *table) keyHolds(names []string) bool {
	if len(t.key) != len(names) {
		return false
	}
	for _, n := range names {
		if !containsFold(t.key, t.tags[n]) && !containsFold(t.key, t.fields[n]) &&
			!(n == "time" && containsFold(t.key, "time")) {
			return false
		}
	}
	return true
}

func containsFold(s []string, v string) bool {
	for _, x := range s {
		if fold(x) == fold(v) {
			return true
		}
	}
	return false
}

// fold lower-cases ASCII only, as SQLite does when comparing names.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// quote makes an SQL identifier of any name.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

func columnType(r role, k sluice.Kind) string {
	if r == roleTag {
		return "TEXT"
	}
	switch k {
	case sluice.KindFloat:
		return "REAL"
	case sluice.KindInt, sluice.KindBool:
		return "INTEGER"
	case sluice.KindString:
		return "TEXT"
	}
	// uint: no declared type (BLOB affinity) keeps values above
	// MaxInt64, stored as decimal text, from being turned into floats.
	return ""
}

// allocObject picks a free name for a table or index, starting from base.
func (s *Sink) allocObject(base string) string {
	if strings.HasPrefix(fold(base), "sqlite_") {
		base = "_" + base
	}
	name := base
	for i := 2; s.objects[fold(name)]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	s.objects[fold(name)] = true
	return name
}

// execer is what schema changes run on: the schema transaction, or the
// database while opening.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func createNamesTable(ctx context.Context, db *sql.DB) error {
	var n int
	// Check first so that opening an existing read-only file works.
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, namesTable).Scan(&n)
	if err != nil || n > 0 {
		return err
	}
	_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quote(namesTable)+` (
	measurement TEXT NOT NULL,
	role TEXT NOT NULL, -- table, tag, field or index
	key TEXT NOT NULL,  -- tag or field key; for an index, which one
	name TEXT NOT NULL, -- the table, column or index name
	PRIMARY KEY (measurement, role, key)) WITHOUT ROWID`)
	return err
}

func setName(ctx context.Context, db execer, measurement, role, key, name string) error {
	_, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO `+quote(namesTable)+
		` (measurement, role, key, name) VALUES (?, ?, ?, ?)`, measurement, role, key, name)
	return err
}

// reload rebuilds the in-memory schema from the file: the names mapping,
// checked against what each table really has (PRAGMA table_xinfo), so
// tables or columns dropped behind our back are created again.
func (s *Sink) reload(ctx context.Context) error {
	s.closeStmts()
	objects := map[string]bool{}
	err := queryRows(ctx, s.db, `SELECT name FROM sqlite_schema`, nil, func(r *sql.Rows) error {
		var name string
		err := r.Scan(&name)
		objects[fold(name)] = true
		return err
	})
	if err != nil {
		return err
	}

	type nameRow struct{ measurement, role, key, name string }
	var rows []nameRow
	err = queryRows(ctx, s.db, `SELECT measurement, role, key, name FROM `+quote(namesTable), nil, func(r *sql.Rows) error {
		var n nameRow
		err := r.Scan(&n.measurement, &n.role, &n.key, &n.name)
		rows = append(rows, n)
		return err
	})
	if err != nil {
		return err
	}

	tables := map[string]*table{}
	for _, n := range rows {
		if n.role == "table" && objects[fold(n.name)] {
			tables[n.measurement] = newTable(n.measurement, n.name)
		}
	}
	for _, t := range tables {
		err := queryRows(ctx, s.db, `SELECT name FROM pragma_table_xinfo(?)`, []any{t.name}, func(r *sql.Rows) error {
			var c string
			err := r.Scan(&c)
			t.taken[fold(c)] = true
			t.ncols++
			return err
		})
		if err != nil {
			return fmt.Errorf("columns of %q: %w", t.name, err)
		}
		// Any index on (time) alone serves, ours or an operator's.
		err = queryRows(ctx, s.db, `SELECT l.name FROM pragma_index_list(?) AS l
			WHERE l.partial = 0 AND (SELECT group_concat(i.name, ',') FROM pragma_index_info(l.name) AS i) = 'time'`,
			[]any{t.name}, func(r *sql.Rows) error { return r.Scan(&t.timeIndex) })
		if err != nil {
			return fmt.Errorf("indexes of %q: %w", t.name, err)
		}
	}
	for _, n := range rows {
		t := tables[n.measurement]
		if t == nil {
			continue
		}
		switch n.role {
		case "tag":
			if t.taken[fold(n.name)] {
				t.tags[n.key] = n.name
			}
		case "field":
			if t.taken[fold(n.name)] {
				t.fields[n.key] = n.name
			}
		case "index":
			if n.key != "key" || !objects[fold(n.name)] {
				continue
			}
			var cols []string
			err := queryRows(ctx, s.db, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, []any{n.name}, func(r *sql.Rows) error {
				var c string
				err := r.Scan(&c)
				cols = append(cols, c)
				return err
			})
			if err != nil {
				return fmt.Errorf("key index of %q: %w", t.name, err)
			}
			if len(cols) > 0 {
				t.key, t.keyIndex = cols, n.name
			}
		}
	}
	s.tables, s.objects, s.stale = tables, objects, false
	return nil
}

// queryRows runs a query and calls each for every row. It always closes
// the rows: with one connection, an open result set would block the next
// statement forever.
func queryRows(ctx context.Context, db *sql.DB, query string, args []any, each func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// applySchema creates tables and columns and syncs key indexes, in one
// transaction committed before the data's. The in-memory schema is edited
// as it goes; on failure it is marked stale and reloaded before next use.
func (s *Sink) applySchema(ctx context.Context, changes []*change, keyed []string) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.stale = true
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			s.stale = true
		}
	}()
	keyChanged := false
	syncKeyOf := func(m string) error {
		t := s.tables[m]
		if t == nil {
			return nil
		}
		if want := s.want[m]; t.keyNeedsSync(want) {
			keyChanged = true
			if err := s.syncKey(ctx, tx, t, want); err != nil {
				return err
			}
		}
		return s.syncTimeIndex(ctx, tx, t)
	}
	for _, ch := range changes {
		if t := s.tables[ch.measurement]; t == nil {
			err = s.createTable(ctx, tx, ch)
		} else {
			err = s.addColumns(ctx, tx, t, ch.cols)
		}
		if err != nil {
			return err
		}
		if err := syncKeyOf(ch.measurement); err != nil {
			return err
		}
	}
	for _, m := range keyed {
		if err := syncKeyOf(m); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if keyChanged {
		// Statements for a table whose key changed carry the old
		// conflict clause.
		s.closeStmts()
	}
	return nil
}

func (s *Sink) createTable(ctx context.Context, tx *sql.Tx, ch *change) error {
	t := newTable(ch.measurement, s.allocObject(ch.measurement))
	defs := []string{
		`"time" INTEGER NOT NULL`,
		`"received" INTEGER`,
		// For Grafana (see the package doc). An RFC 3339 text column
		// would read better but strftime costs ~1µs a row on insert,
		// where SQLite computes even virtual columns.
		`"time_s" REAL GENERATED ALWAYS AS (time / 1e9) VIRTUAL`,
	}
	var tagCols []string
	for _, c := range ch.cols {
		name := t.allocColumn(c.role, c.key)
		defs = append(defs, strings.TrimSpace(quote(name)+" "+columnType(c.role, c.kind)))
		if c.role == roleTag {
			tagCols = append(tagCols, name)
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+quote(t.name)+" (\n\t"+strings.Join(defs, ",\n\t")+")"); err != nil {
		return fmt.Errorf("create table %q: %w", t.name, err)
	}
	t.ncols = len(defs)
	if err := setName(ctx, tx, t.measurement, "table", "", t.name); err != nil {
		return err
	}
	for _, c := range ch.cols {
		if err := setName(ctx, tx, t.measurement, c.role.String(), c.key, t.column(c.role, c.key)); err != nil {
			return err
		}
	}
	if s.cfg.SeriesIndex && len(tagCols) > 0 {
		idx := s.allocObject(t.name + "_by_series")
		if _, err := tx.ExecContext(ctx, "CREATE INDEX "+quote(idx)+" ON "+quote(t.name)+
			" ("+quoteAll(tagCols)+", time)"); err != nil {
			return fmt.Errorf("create index %q: %w", idx, err)
		}
	}
	s.tables[t.measurement] = t
	s.log.Info("sqlite: created table", "measurement", t.measurement, "table", t.name, "columns", len(ch.cols))
	return nil
}

func (s *Sink) addColumns(ctx context.Context, tx *sql.Tx, t *table, cols []colSpec) error {
	for _, c := range cols {
		name := t.allocColumn(c.role, c.key)
		def := strings.TrimSpace(quote(name) + " " + columnType(c.role, c.kind))
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+quote(t.name)+" ADD COLUMN "+def); err != nil {
			return fmt.Errorf("add column %q to %q: %w", name, t.name, err)
		}
		t.ncols++
		if err := setName(ctx, tx, t.measurement, c.role.String(), c.key, name); err != nil {
			return err
		}
		s.log.Info("sqlite: added column", "measurement", t.measurement, "table", t.name, c.role.String(), c.key, "column", name)
	}
	return nil
}

// syncTimeIndex gives t an index on (time) unless its key index leads
// with time, which serves time-range queries as well: a second B-tree on
// the same leading column would only cost every row an insert (about a
// fifth of the sink's CPU per book level). An existing time index is
// kept, so a table whose key later loses time stays indexed.
func (s *Sink) syncTimeIndex(ctx context.Context, tx *sql.Tx, t *table) error {
	if t.timeIndex != "" || (len(t.key) > 0 && fold(t.key[0]) == "time") {
		return nil
	}
	idx := s.allocObject(t.name + "_by_time")
	if _, err := tx.ExecContext(ctx, "CREATE INDEX "+quote(idx)+" ON "+quote(t.name)+" (time)"); err != nil {
		return fmt.Errorf("create index %q: %w", idx, err)
	}
	t.timeIndex = idx
	return nil
}

// syncKey (re)creates t's unique key index on the columns names resolve
// to. It never deletes a row: if stored rows already share a key (rows
// written under another key, by a feed that is gone or by this one before
// its key changed), it returns a *sinks.RefusedError saying how to see
// them, and the transaction, rolled back, leaves the old index in place.
func (s *Sink) syncKey(ctx context.Context, tx *sql.Tx, t *table, names []string) error {
	cols := timeFirst(t.resolveKey(names))
	if t.keyIndex != "" {
		if _, err := tx.ExecContext(ctx, "DROP INDEX IF EXISTS "+quote(t.keyIndex)); err != nil {
			return fmt.Errorf("drop index %q: %w", t.keyIndex, err)
		}
		delete(s.objects, fold(t.keyIndex))
		t.key, t.keyIndex = nil, ""
	}
	idx := s.allocObject(t.name + "_key")
	if _, err := tx.ExecContext(ctx, "CREATE UNIQUE INDEX "+quote(idx)+" ON "+quote(t.name)+" ("+quoteAll(cols)+")"); err != nil {
		if isUniqueViolation(err) {
			return s.refuseKey(ctx, tx, t, names, cols, err)
		}
		return fmt.Errorf("create key index %q: %w", idx, err)
	}
	if err := setName(ctx, tx, t.measurement, "index", "key", idx); err != nil {
		return err
	}
	t.key, t.keyIndex = cols, idx
	s.log.Info("sqlite: created key index", "measurement", t.measurement, "table", t.name, "key", names, "index", idx)
	return nil
}

// timeFirst moves the time column to the front of a key's columns. A key
// with the event time in it (book levels, candles, tickers: one point per
// series per instant) then grows at its end as time goes on, like the time
// index; ordered series first, every series would insert into its own part
// of the B-tree, and with thousands of series (2 000 symbols × 40 book
// levels) each commit rewrites a page per series: 40 000 rows/s of books
// ran at 11 000–14 000 rows/s that way (BENCHMARKS.md). Uniqueness is the
// same in any order.
func timeFirst(cols []string) []string {
	for i, c := range cols {
		if c == "time" {
			copy(cols[1:i+1], cols[:i])
			cols[0] = "time"
			break
		}
	}
	return cols
}

// refuseKey builds the error for a key the stored rows violate: how many
// keys have more than one row, and the SQL that lists them.
func (s *Sink) refuseKey(ctx context.Context, tx *sql.Tx, t *table, names, cols []string, cause error) error {
	// NULLs never conflict in a unique index: only rows with every key
	// column set count.
	notNull := make([]string, len(cols))
	for i, c := range cols {
		notNull[i] = quote(c) + " IS NOT NULL"
	}
	dups := "SELECT " + quoteAll(cols) + ", count(*) AS rows FROM " + quote(t.name) +
		" WHERE " + strings.Join(notNull, " AND ") + " GROUP BY " + quoteAll(cols) + " HAVING count(*) > 1"
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+dups+")").Scan(&n); err != nil {
		n = -1
	}
	what := fmt.Sprintf("table %q already holds %d keys with more than one row", t.name, n)
	if n < 0 {
		what = fmt.Sprintf("table %q already holds rows that share a key", t.name)
	}
	return &sinks.RefusedError{
		Measurement: t.measurement,
		Unique:      names,
		Err:         fmt.Errorf("%s (%w); making the key unique would delete rows, which the sink never does", what, cause),
		Hint: fmt.Sprintf("see them with: sqlite3 %s '%s'; "+
			"then write the feed to another measurement (rename it in the feed's config), "+
			"or move or delete those rows yourself, and reload", s.cfg.Path, strings.ReplaceAll(dups, "'", `'\''`)),
	}
}

// shape is the prepared INSERT for one measurement and one sequence of
// tag and field keys: single-row, and for runs of points multi-row.
type shape struct {
	measurement string
	table       string
	tagKeys     []string
	fieldKeys   []string
	stmt        writeStmt
	multi       writeStmt // inserts rows points at once; nil if rows is 1
	rows        int
}

// multiRowValues is the most rows one multi-row INSERT carries. Gains
// flatten well before this; SQLite allows 32766 parameters a statement.
const multiRowValues = 64

func (sh *shape) matches(p *sluice.Point) bool {
	if p.Measurement != sh.measurement || len(p.Tags) != len(sh.tagKeys) || len(p.Fields) != len(sh.fieldKeys) {
		return false
	}
	for i := range p.Tags {
		if p.Tags[i].Key != sh.tagKeys[i] {
			return false
		}
	}
	for i := range p.Fields {
		if p.Fields[i].Key != sh.fieldKeys[i] {
			return false
		}
	}
	return true
}

// shapeFor returns the cached statement for p's shape, preparing it if
// new. p's table and columns must exist.
func (s *Sink) shapeFor(ctx context.Context, c writeConn, p *sluice.Point) (*shape, error) {
	k := append(s.key[:0], p.Measurement...)
	for _, t := range p.Tags {
		k = append(append(append(k, 0, 't'), t.Key...), 0)
	}
	for _, f := range p.Fields {
		k = append(append(append(k, 0, 'f'), f.Key...), 0)
	}
	s.key = k
	if sh := s.stmts[string(k)]; sh != nil {
		return sh, nil
	}

	t := s.tables[p.Measurement]
	sh := &shape{measurement: p.Measurement, table: t.name}
	cols := []string{"time", "received"}
	for _, tg := range p.Tags {
		sh.tagKeys = append(sh.tagKeys, tg.Key)
		cols = append(cols, t.tags[tg.Key])
	}
	for _, f := range p.Fields {
		sh.fieldKeys = append(sh.fieldKeys, f.Key)
		cols = append(cols, t.fields[f.Key])
	}
	var err error
	if sh.stmt, err = prepare(ctx, c, insertSQL(t, cols, 1)); err != nil {
		return nil, fmt.Errorf("prepare insert into %q: %w", t.name, err)
	}
	sh.rows = min(multiRowValues, 32766/len(cols))
	if sh.rows > 1 {
		if sh.multi, err = prepare(ctx, c, insertSQL(t, cols, sh.rows)); err != nil {
			sh.stmt.Close()
			return nil, fmt.Errorf("prepare insert into %q: %w", t.name, err)
		}
	}
	s.stmts[string(k)] = sh
	return sh, nil
}

// insertSQL is an INSERT of rows rows into cols, an upsert if t has a key.
func insertSQL(t *table, cols []string, rows int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + quote(t.name) + " (" + quoteAll(cols) + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	if t.key != nil {
		var set []string
		for _, c := range cols {
			if !containsFold(t.key, c) {
				set = append(set, quote(c)+" = excluded."+quote(c))
			}
		}
		// Rows of one statement are applied in order, so a later
		// duplicate in the same statement updates the earlier one.
		q.WriteString(" ON CONFLICT (" + quoteAll(t.key) + ") DO ")
		if len(set) == 0 {
			q.WriteString("NOTHING")
		} else {
			q.WriteString("UPDATE SET " + strings.Join(set, ", "))
		}
	}
	return q.String()
}

func prepare(ctx context.Context, c writeConn, query string) (writeStmt, error) {
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ws, ok := st.(writeStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("driver statement %T cannot execute with a context", st)
	}
	return ws, nil
}

// closeStmts retires every statement: none is used again, and each is
// closed on its connection at the next Write or at Close (see useConn).
func (s *Sink) closeStmts() {
	for _, sh := range s.stmts {
		s.retired = append(s.retired, sh)
	}
	s.stmts = map[string]*shape{}
}

func (sh *shape) close() {
	sh.stmt.Close()
	if sh.multi != nil {
		sh.multi.Close()
	}
}
