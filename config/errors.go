package config

import (
	"cmp"
	"errors"
	"slices"
	"strings"
)

// Error is one problem in the configuration. Load returns every problem it
// finds at once, as an errors.Join of *Error values; use errors.As to reach
// them one by one.
type Error struct {
	// File is the file the offending key came from, or "env NAME" for a key
	// set by an environment variable.
	File string
	// Key is the full dotted path from the file's root, such as
	// "sinks.db.batch_size"; empty when the problem is with the whole file.
	Key string
	Msg string
	// Err is the underlying cause, if any (an I/O error, a YAML error).
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Key + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// errorList collects problems and reports them in a stable order: by file
// (the main file first, then drop-ins by name, then environment variables),
// then by key.
type errorList struct {
	errs  []*Error
	ranks map[string]int
}

func newErrorList() *errorList {
	return &errorList{ranks: make(map[string]int)}
}

// register fixes where errors from file sort, in call order.
func (l *errorList) register(file string) {
	if _, ok := l.ranks[file]; !ok {
		l.ranks[file] = len(l.ranks)
	}
}

func (l *errorList) add(e *Error) {
	l.register(e.File)
	l.errs = append(l.errs, e)
}

// has reports whether a problem with key is already listed.
func (l *errorList) has(key string) bool {
	return slices.ContainsFunc(l.errs, func(e *Error) bool { return e.Key == key })
}

// err returns nil, the single error, or all of them joined.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sorted := slices.Clone(l.errs)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(l.ranks[a.File], l.ranks[b.File]),
			strings.Compare(a.Key, b.Key),
		)
	})
	if len(sorted) == 1 {
		return sorted[0]
	}
	errs := make([]error, len(sorted))
	for i, e := range sorted {
		errs[i] = e
	}
	return errors.Join(errs...)
}
