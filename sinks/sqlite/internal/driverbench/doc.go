// Package driverbench compares the two SQLite drivers the sqlite sink could
// be built on, with the same schema and statements the sink uses. It is its
// own module so that the cgo driver never becomes a dependency of Sluice;
// see ../../DRIVER.md for the results and the decision.
package driverbench
