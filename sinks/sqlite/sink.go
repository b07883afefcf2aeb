package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/sinks"
)

// defaultBusyTimeout applies when the config leaves BusyTimeout at zero.
const defaultBusyTimeout = 5 * time.Second

// maxStmts bounds the prepared-statement cache; a batch stream normally
// has a handful of shapes, so overflowing it means churn and it is reset.
const maxStmts = 256

// Sink writes points to a SQLite file.
//
// Lifecycle: New has no side effects; Open creates the parent directory
// and the file if needed and loads the existing schema; Declare and Write
// may then be called by one goroutine at a time; Close releases the file
// and is idempotent. A Sink cannot be reopened after Close.
type Sink struct {
	cfg Config
	log *slog.Logger
	// dsnExtra is appended to the connection's DSN query (tests use it to
	// make the file read-only or tiny).
	dsnExtra string

	mu     sync.Mutex
	db     *sql.DB
	closed bool
	// stale means the in-memory schema may disagree with the file (a
	// schema or data transaction failed) and is reloaded before next use.
	stale bool

	// maxColumns is the connection's limit on columns in a table
	// (SQLITE_LIMIT_COLUMN, 2000 unless SQLite was built otherwise).
	maxColumns int
	// columnLimit, if set, lowers that limit at Open (tests use it).
	columnLimit int

	tables  map[string]*table   // by measurement
	objects map[string]bool     // folded names of every table and index
	want    map[string][]string // declared uniqueness names by measurement
	stmts   map[string]*shape   // by the key shapeFor builds
	// conn is the driver connection stmts are prepared on, retired the
	// shapes whose statements are still to be closed on it. Statements
	// are prepared and closed only while database/sql lends us that
	// connection (see insert).
	conn    any
	retired []*shape

	// Scratch reused across Writes.
	ok     []bool
	shapes []*shape
	args   []driver.NamedValue
	key    []byte
}

// New returns a sink for cfg. It does not touch the file system.
func New(cfg Config, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: cfg, log: log}
}

// Open creates the file's directory if missing, opens the file in WAL mode
// and loads the schema already in it.
func (s *Sink) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("sqlite: open: sink is closed")
	}
	if s.db != nil {
		return errors.New("sqlite: open: already open")
	}
	if s.cfg.Path == "" {
		return errors.New("sqlite: open: no path configured")
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o755); err != nil {
		return classify(fmt.Errorf("sqlite: create directory: %w", err))
	}
	db, err := openDB(s.dsn())
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.cfg.Path, err)
	}
	// One connection: SQLite has one writer anyway, and the insert
	// statements, prepared on the driver connection (see insert), then
	// live on the connection every schema change runs on too.
	db.SetMaxOpenConns(1)
	if err := createNamesTable(ctx, db); err != nil {
		db.Close()
		return classify(fmt.Errorf("sqlite: open %s: %w", s.cfg.Path, err))
	}
	if s.maxColumns, err = columnLimit(ctx, db, s.columnLimit); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: open %s: %w", s.cfg.Path, err)
	}
	s.db = db
	s.want = map[string][]string{}
	if err := s.reload(ctx); err != nil {
		s.db = nil
		db.Close()
		return classify(fmt.Errorf("sqlite: open %s: load schema: %w", s.cfg.Path, err))
	}
	s.log.Debug("sqlite: opened", "path", s.cfg.Path, "tables", len(s.tables), "driver", Driver)
	return nil
}

// columnLimit returns the connection's column limit, first setting it to
// set if that is positive. With one connection in the pool, the limit
// holds for every statement; a replacement connection would get SQLite's
// default back, which is no lower.
func columnLimit(ctx context.Context, db *sql.DB, set int) (int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if set > 0 {
		if _, err := limit(ctx, conn, limitColumn, set); err != nil {
			return 0, err
		}
	}
	n, err := limit(ctx, conn, limitColumn, -1)
	if err != nil {
		return 0, fmt.Errorf("read the column limit: %w", err)
	}
	return n, nil
}

func (s *Sink) dsn() string {
	busy := s.cfg.BusyTimeout
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	// Take the write lock at BEGIN, where the busy timeout applies,
	// rather than on the first write, where WAL can fail with BUSY at once.
	q.Set("_txlock", "immediate")
	// A multi-row INSERT keeps a statement journal (to undo just itself on
	// error); in memory that costs no temp-file writes. The price: the
	// one-off sort when a key index is created on a big existing table
	// is held in memory.
	q.Set("_pragma", "temp_store(MEMORY)")
	dsn := "file:" + escapePath(s.cfg.Path) + "?" + q.Encode()
	if s.dsnExtra != "" {
		dsn += "&" + s.dsnExtra
	}
	return dsn
}

// escapePath makes a file path safe inside a SQLite URI, where ?, # and %
// are special.
func escapePath(p string) string {
	p = filepath.ToSlash(p)
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("/._-~:", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Declare records each measurement's uniqueness names and creates the key
// index of every measurement whose table already has the columns. A key
// the stored rows violate is refused (*sinks.RefusedError, joined with
// any others): that measurement keeps the key it had, the others of ms
// take theirs.
func (s *Sink) Declare(ctx context.Context, ms []sluice.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return errNotOpen
	}
	var refused []error
	for _, m := range ms {
		if len(m.Unique) == 0 {
			continue
		}
		if err := s.ensureFresh(ctx); err != nil {
			return err
		}
		names := dedupe(m.Unique)
		old, had := s.want[m.Name]
		if had && !slices.Equal(old, names) {
			s.log.Warn("sqlite: uniqueness key redeclared", "measurement", m.Name, "old", old, "new", names)
		}
		s.want[m.Name] = names
		t := s.tables[m.Name]
		if t == nil || !t.keyNeedsSync(names) {
			continue
		}
		// One transaction per measurement, so that a refused key
		// leaves the others' in place.
		err := s.applySchema(ctx, nil, []string{m.Name})
		if err == nil {
			continue
		}
		if had {
			s.want[m.Name] = old
		} else {
			delete(s.want, m.Name)
		}
		if sinks.IsRefused(err) {
			refused = append(refused, fmt.Errorf("sqlite: declare: %w", err))
			continue
		}
		return classify(fmt.Errorf("sqlite: declare: %w", err))
	}
	return errors.Join(refused...)
}

var errNotOpen = errors.New("sqlite: sink is not open")

// Write stores points in one transaction. Points the file can never hold
// (see the package doc) are left out and reported as a
// *sinks.RejectedError once the rest are committed.
func (s *Sink) Write(ctx context.Context, points []sluice.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return errNotOpen
	}
	if err := s.ensureFresh(ctx); err != nil {
		return err
	}

	rejected, sample, changes, keyed := s.plan(points)
	for len(changes) > 0 || len(keyed) > 0 {
		err := s.applySchema(ctx, changes, keyed)
		var ref *sinks.RefusedError
		if !errors.As(err, &ref) {
			if err != nil {
				return classify(fmt.Errorf("sqlite: write: schema: %w", err))
			}
			break
		}
		// A key index went missing from the file (dropped by hand) and
		// rows written meanwhile share keys. Stopping here would stop
		// every feed on this sink; deleting rows is not ours to do. So
		// the measurement is written without its key until an operator
		// acts, and the schema is planned again without it.
		delete(s.want, ref.Measurement)
		s.log.Error("sqlite: cannot restore a uniqueness key; writing its measurement without one (a replayed point may then be stored twice)",
			"measurement", ref.Measurement, "error", ref)
		if err := s.ensureFresh(ctx); err != nil {
			return err
		}
		rejected, sample, changes, keyed = s.plan(points)
	}
	if rejected < len(points) {
		if err := s.insert(ctx, points, len(points)-rejected); err != nil {
			s.stale = true
			return classify(err)
		}
	}
	if rejected > 0 {
		return &sinks.RejectedError{
			Rejected: rejected,
			Sample:   sample,
			Err:      errors.New("sqlite: points the file cannot hold"),
		}
	}
	return nil
}

func (s *Sink) ensureFresh(ctx context.Context) error {
	if !s.stale {
		return nil
	}
	if err := s.reload(ctx); err != nil {
		return classify(fmt.Errorf("sqlite: reload schema: %w", err))
	}
	return nil
}

// plan validates points (recording the verdict in s.ok) and lists the
// schema changes the valid ones need: new tables and columns, in the order
// first seen, and measurements whose key index can now be created.
func (s *Sink) plan(points []sluice.Point) (rejected int, sample string, changes []*change, keyed []string) {
	s.ok = resize(s.ok, len(points))
	var prev *sluice.Point
	prevOK, prevWhy := false, ""
	var byM map[string]*change
	var touched map[string]bool
	for i := range points {
		p := &points[i]
		if !timeOK(p.Time) {
			rejected, sample = reject(rejected, sample, p, "event time out of range")
			s.ok[i] = false
			continue
		}
		if prev != nil && sameKeys(prev, p) {
			s.ok[i] = prevOK
			if !prevOK {
				rejected, sample = reject(rejected, sample, p, prevWhy)
			}
			continue
		}
		prev = p
		why := checkNames(p)
		if why == "" {
			why = s.checkColumns(p, byM[p.Measurement])
		}
		if why != "" {
			prevOK, prevWhy = false, why
			s.ok[i] = false
			rejected, sample = reject(rejected, sample, p, why)
			continue
		}
		prevOK = true
		s.ok[i] = true

		if touched == nil || !touched[p.Measurement] {
			if touched == nil {
				touched = map[string]bool{}
			}
			touched[p.Measurement] = true
			if t := s.tables[p.Measurement]; t != nil && t.keyNeedsSync(s.want[p.Measurement]) {
				keyed = append(keyed, p.Measurement)
			}
		}
		t := s.tables[p.Measurement]
		var ch *change
		need := func(ref colRef, kind sluice.Kind) {
			if ch == nil {
				if byM == nil {
					byM = map[string]*change{}
				}
				if ch = byM[p.Measurement]; ch == nil {
					ch = &change{measurement: p.Measurement, seen: map[colRef]bool{}}
					byM[p.Measurement] = ch
					changes = append(changes, ch)
				}
			}
			if ref.key != "" && !ch.seen[ref] {
				ch.seen[ref] = true
				ch.cols = append(ch.cols, colSpec{colRef: ref, kind: kind})
			}
		}
		if t == nil {
			need(colRef{}, 0) // the table itself, even if the point has no tags or fields
		}
		for _, tg := range p.Tags {
			if t == nil || t.column(roleTag, tg.Key) == "" {
				need(colRef{roleTag, tg.Key}, sluice.KindString)
			}
		}
		for _, f := range p.Fields {
			if t == nil || t.column(roleField, f.Key) == "" {
				need(colRef{roleField, f.Key}, f.Value.Kind())
			}
		}
	}
	return rejected, sample, changes, keyed
}

// checkColumns reports why p's table cannot take the columns p adds,
// or "". ch holds the columns the batch adds before p. SQLite refuses a
// table past its column limit, which no retry changes: such points are
// rejected, and the rest of the batch is written.
func (s *Sink) checkColumns(p *sluice.Point, ch *change) string {
	t := s.tables[p.Measurement]
	have := fixedColumns
	if t != nil {
		have = t.ncols
	}
	if ch != nil {
		have += len(ch.cols)
	}
	if have+len(p.Tags)+len(p.Fields) <= s.maxColumns {
		return "" // even if every one were new
	}
	adds := 0
	for _, tg := range p.Tags {
		ref := colRef{roleTag, tg.Key}
		if (t == nil || t.column(roleTag, tg.Key) == "") && (ch == nil || !ch.seen[ref]) {
			adds++
		}
	}
	for _, f := range p.Fields {
		ref := colRef{roleField, f.Key}
		if (t == nil || t.column(roleField, f.Key) == "") && (ch == nil || !ch.seen[ref]) {
			adds++
		}
	}
	if have+adds <= s.maxColumns {
		return ""
	}
	name := p.Measurement
	if t != nil {
		name = t.name
	}
	return fmt.Sprintf("table %q would have %d columns, over SQLite's limit of %d", name, have+adds, s.maxColumns)
}

func reject(n int, sample string, p *sluice.Point, why string) (int, string) {
	if n == 0 {
		sample = fmt.Sprintf("%s: measurement %q at %s", why, p.Measurement, p.Time.Format(time.RFC3339Nano))
	}
	return n + 1, sample
}

// The range of time.Time that UnixNano represents.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func timeOK(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

// checkNames reports why a point's names cannot be stored, or "".
func checkNames(p *sluice.Point) string {
	if !nameOK(p.Measurement) {
		return "empty or NUL-containing measurement"
	}
	for i, t := range p.Tags {
		if !nameOK(t.Key) {
			return "empty or NUL-containing tag key"
		}
		for _, u := range p.Tags[:i] {
			if u.Key == t.Key {
				return "duplicate tag key " + strconv.Quote(t.Key)
			}
		}
	}
	for i, f := range p.Fields {
		if !nameOK(f.Key) {
			return "empty or NUL-containing field key"
		}
		if f.Value.Kind() < sluice.KindFloat || f.Value.Kind() > sluice.KindBool {
			return "field " + strconv.Quote(f.Key) + " has an invalid value"
		}
		for _, g := range p.Fields[:i] {
			if g.Key == f.Key {
				return "duplicate field key " + strconv.Quote(f.Key)
			}
		}
	}
	return ""
}

func nameOK(s string) bool { return s != "" && strings.IndexByte(s, 0) < 0 }

// sameKeys reports whether two points have the same measurement and the
// same tag and field keys in the same order, so share a statement.
func sameKeys(a, b *sluice.Point) bool {
	if a.Measurement != b.Measurement || len(a.Tags) != len(b.Tags) || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i].Key != b.Tags[i].Key {
			return false
		}
	}
	for i := range a.Fields {
		if a.Fields[i].Key != b.Fields[i].Key {
			return false
		}
	}
	return true
}

// writeConn is what the sink needs of a driver connection to write
// without database/sql: both drivers' connections have it.
type writeConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

// writeStmt is a prepared driver statement run with driver arguments.
type writeStmt interface {
	driver.Stmt
	driver.StmtExecContext
}

// insert writes every valid point (n of them) in one transaction, run on
// the driver connection itself: through database/sql, every Exec copied
// and checked its few hundred arguments into a new slice, 12–18 % of the
// agent's allocated bytes (issue #19). With one connection in the pool,
// Raw lends the connection every other statement of the sink runs on.
func (s *Sink) insert(ctx context.Context, points []sluice.Point, n int) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: write: connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(writeConn)
		if !ok {
			return fmt.Errorf("sqlite: write: driver connection %T cannot begin transactions or prepare statements with a context", dc)
		}
		s.useConn(dc)
		err := s.prepareShapes(ctx, c, points)
		if err != nil {
			err = fmt.Errorf("sqlite: write: %w", err)
		} else if err = s.insertTx(ctx, c, points); err != nil {
			err = fmt.Errorf("sqlite: write %d points: %w", n, err)
		}
		if err != nil && discarded(dc, err) {
			// Close the statements while their connection is open.
			s.closeStmts()
			s.useConn(dc)
		}
		return err
	})
}

// discarded reports whether database/sql will close connection dc once
// Raw returns err: the driver called it bad, or it is no longer valid
// (modernc's is not while an interrupted statement is unfinished).
func discarded(dc any, err error) bool {
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	v, ok := dc.(driver.Validator)
	return ok && !v.IsValid()
}

// useConn makes dc the connection statements are prepared on, and closes
// the retired ones. If database/sql replaced the connection (it discards
// one a driver calls bad), the old one is closed and so are its
// statements' handles as far as SQLite is concerned: closing them through
// the driver then is an error (cgo) or unsafe (modernc), so they are only
// forgotten.
func (s *Sink) useConn(dc any) {
	if dc != s.conn {
		if s.conn != nil {
			s.log.Debug("sqlite: connection replaced; statements prepared again", "statements", len(s.stmts)+len(s.retired))
		}
		s.conn = dc
		clear(s.retired)
		s.retired = s.retired[:0]
		s.stmts = map[string]*shape{}
		return
	}
	for i, sh := range s.retired {
		sh.close()
		s.retired[i] = nil
	}
	s.retired = s.retired[:0]
}

// prepareShapes finds or prepares on c the statement for every valid
// point, before the transaction.
func (s *Sink) prepareShapes(ctx context.Context, c writeConn, points []sluice.Point) error {
	if len(s.stmts) >= maxStmts {
		s.closeStmts()
		s.useConn(c)
	}
	s.shapes = resize(s.shapes, len(points))
	var cur *shape
	for i := range points {
		p := &points[i]
		if !s.ok[i] {
			s.shapes[i] = nil
			continue
		}
		if cur == nil || !cur.matches(p) {
			var err error
			if cur, err = s.shapeFor(ctx, c, p); err != nil {
				return err
			}
		}
		s.shapes[i] = cur
	}
	return nil
}

// insertTx writes every valid point in one transaction on c: runs of
// points of one shape go through its multi-row statement, the rest row by
// row.
func (s *Sink) insertTx(ctx context.Context, c writeConn, points []sluice.Point) (err error) {
	tx, err := c.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Both drivers end the transaction themselves when COMMIT fails, and
	// a ROLLBACK then would fail for want of one.
	committing := false
	defer func() {
		clear(s.args) // drop references to the batch's strings
		if err == nil || committing {
			return
		}
		if rbErr := tx.Rollback(); rbErr != nil {
			// The connection may still be in the transaction, and
			// every later BEGIN would fail: have database/sql
			// close it, as its own Tx does when it cannot tell.
			err = badConn{fmt.Errorf("%w (rollback: %w; connection discarded)", err, rbErr)}
		}
	}()
	for i := 0; i < len(points); {
		sh := s.shapes[i]
		if sh == nil {
			i++
			continue
		}
		n := 1
		if sh.multi != nil {
			for n < sh.rows && i+n < len(points) && s.shapes[i+n] == sh {
				n++
			}
			if n < sh.rows {
				n = 1
			}
		}
		stmt := sh.stmt
		if n > 1 {
			stmt = sh.multi
		}
		s.args = s.args[:0]
		for j := i; j < i+n; j++ {
			s.args = appendArgs(s.args, &points[j])
		}
		if _, err := stmt.ExecContext(ctx, s.args); err != nil {
			return fmt.Errorf("insert into %q: %w", sh.table, err)
		}
		i += n
	}
	// As database/sql's Tx: a transaction whose context ended is not
	// committed.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committing = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// badConn makes database/sql close the connection Raw lent when the
// callback returns it (it asks errors.Is(err, driver.ErrBadConn)).
type badConn struct{ error }

func (e badConn) Unwrap() error      { return e.error }
func (badConn) Is(target error) bool { return target == driver.ErrBadConn }

// appendArgs appends a point's values in statement order: time, received,
// tags, fields. The values are the types database/sql would pass on
// unchanged (int64, float64, string, nil).
func appendArgs(args []driver.NamedValue, p *sluice.Point) []driver.NamedValue {
	var recv any
	if !p.Received.IsZero() && timeOK(p.Received) {
		recv = p.Received.UnixNano()
	}
	args = append(args,
		driver.NamedValue{Ordinal: len(args) + 1, Value: p.Time.UnixNano()},
		driver.NamedValue{Ordinal: len(args) + 2, Value: recv})
	for _, t := range p.Tags {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: t.Value})
	}
	for _, f := range p.Fields {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: value(f.Value)})
	}
	return args
}

// value converts a field value to what the driver binds.
func value(v sluice.Value) any {
	switch v.Kind() {
	case sluice.KindFloat:
		return v.Float() // NaN binds as NULL
	case sluice.KindInt:
		return v.Int()
	case sluice.KindUint:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return strconv.FormatUint(v.Uint(), 10)
	case sluice.KindString:
		return v.Str()
	case sluice.KindBool:
		if v.Bool() {
			return int64(1)
		}
		return int64(0)
	}
	return nil
}

// Close closes the file. It is safe to call more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.db == nil {
		return nil
	}
	if len(s.stmts) > 0 || len(s.retired) > 0 {
		s.closeStmts()
		// Close them on their connection, if it is still the one in
		// the pool; the file is closed whatever happens.
		if conn, err := s.db.Conn(context.Background()); err == nil {
			conn.Raw(func(dc any) error { s.useConn(dc); return nil })
			conn.Close()
		}
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func dedupe(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

var _ sinks.Sink = (*Sink)(nil)
