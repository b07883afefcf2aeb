package sqlite

import (
	"errors"
	"io/fs"
	"syscall"

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
	code, ok := errorCode(err)
	return ok && code == codeConstraintUnique
}

// SQLite's result codes (sqlite.org/rescode.html), the same whichever
// driver reports them.
const (
	codePerm             = 3
	codeReadonly         = 8
	codeIOErr            = 10
	codeCorrupt          = 11
	codeFull             = 13
	codeCantOpen         = 14
	codeConstraint       = 19
	codeNoLFS            = 22
	codeAuth             = 23
	codeNotADB           = 26
	codeConstraintUnique = codeConstraint | 8<<8

	limitColumn = 2 // SQLITE_LIMIT_COLUMN
)

func needsOperator(err error) bool {
	if code, ok := errorCode(err); ok {
		switch code & 0xff { // primary code of an extended one
		case codeReadonly, codeCantOpen, codeFull, codeIOErr, codePerm, codeAuth,
			codeCorrupt, codeNotADB, codeNoLFS, codeConstraint:
			return true
		}
		return false
	}
	// Creating the directory.
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.ENOTDIR)
}
