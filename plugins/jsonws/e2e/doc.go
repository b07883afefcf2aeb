// Package e2e holds the jsonws plugin's end-to-end tests: the real agent
// and plugin binaries on the example feeds in config/examples, writing to
// a real SQLite file; the exchange examples run against the fake
// exchanges of the exchanges subpackage. It has no non-test code.
package e2e
