package sqlite

import (
	"errors"
	"io/fs"
	"syscall"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/sinks"
)

// classify wraps err in a *sinks.FailedError when retrying cannot help
// until an operator acts: the file is read-only, unopenable, full,
// failing I/O or corrupt, or its schema was changed into something we
// violate. Everything else, SQLITE_BUSY and SQLITE_LOCKED above all, is
// returned as is: transient, retried by the pipeline.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if needsOperator(err) {
		return &sinks.FailedError{Err: err}
	}
	return err
}

// isUniqueViolation reports whether err is SQLite refusing a row, or a
// unique index, because two rows would share a unique key.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func needsOperator(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary code of an extended one
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH,
			sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_NOLFS,
			sqlite3.SQLITE_CONSTRAINT:
			return true
		}
		return false
	}
	// Creating the directory.
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.ENOTDIR)
}
