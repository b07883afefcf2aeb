//go:build !sqlite_cgo

package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
)

// Driver names the SQLite driver this build uses: the pure-Go one by
// default, the cgo one with -tags sqlite_cgo (see DRIVER.md).
const Driver = "modernc.org/sqlite"

// openDB opens dsn, whose query takes the parameters of modernc's DSN
// (_pragma=name(value) among them).
func openDB(dsn string) (*sql.DB, error) { return sql.Open("sqlite", dsn) }

// errorCode returns the extended result code of a SQLite error.
func errorCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

// limit sets the connection's limit id to set when set is not negative,
// and returns the limit as it was before.
func limit(ctx context.Context, conn *sql.Conn, id, set int) (int, error) {
	return sqlite.Limit(conn, id, set)
}
