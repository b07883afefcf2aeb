//go:build sqlite_cgo

package sqlite

import (
	"database/sql"

	"github.com/mattn/go-sqlite3"
)

// The tests' readers open "sqlite", the pure-Go driver's name. A cgo build
// must read with the same SQLite library the sink writes with: two copies
// of SQLite in one process do not see each other's POSIX locks, so one
// would checkpoint and remove a WAL the other still reads.
func init() { sql.Register("sqlite", &sqlite3.SQLiteDriver{}) }
