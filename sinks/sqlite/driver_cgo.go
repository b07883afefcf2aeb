//go:build sqlite_cgo

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Driver names the SQLite driver this build uses: the cgo one, built with
// -tags sqlite_cgo (see DRIVER.md).
const Driver = "github.com/mattn/go-sqlite3"

// openDB opens dsn, written for modernc's DSN, with the cgo driver. Both
// take _busy_timeout, _journal_mode, _synchronous, _txlock and
// _query_only; modernc's _pragma=name(value), which mattn does not know,
// is run as PRAGMA name(value) on every new connection.
func openDB(dsn string) (*sql.DB, error) {
	c := &connector{dsn: dsn}
	if base, query, ok := strings.Cut(dsn, "?"); ok {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("parse the DSN's query: %w", err)
		}
		c.pragmas = q["_pragma"]
		q.Del("_pragma")
		c.dsn = base + "?" + q.Encode()
	}
	return sql.OpenDB(c), nil
}

var cgoDriver = &sqlite3.SQLiteDriver{}

type connector struct {
	dsn     string
	pragmas []string
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cgoDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, p := range c.pragmas {
		if _, err := conn.(*sqlite3.SQLiteConn).Exec("PRAGMA "+p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("pragma %s: %w", p, err)
		}
	}
	return conn, nil
}

func (c *connector) Driver() driver.Driver { return cgoDriver }

// errorCode returns the extended result code of a SQLite error.
func errorCode(err error) (int, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.ExtendedCode), true
	}
	return 0, false
}

// limit sets the connection's limit id to set when set is not negative,
// and returns the limit as it was before.
func limit(ctx context.Context, conn *sql.Conn, id, set int) (int, error) {
	var old int
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("not a go-sqlite3 connection: %T", dc)
		}
		if set >= 0 {
			old = c.SetLimit(id, set)
		} else {
			old = c.GetLimit(id)
		}
		return nil
	})
	return old, err
}
