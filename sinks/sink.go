// Package sinks defines what a storage backend implements. The pipeline
// owns batching, buffering, retries and drop accounting; a sink only turns
// a batch of points into one write and says how that write failed. Each
// backend's package also declares its Type: its name, its config and its
// constructor; sinks/all lists them.
//
// What Write returns decides what the pipeline does with the batch and how
// it counts its points: nil, every point written; *RejectedError, some
// points are bad and will never be stored (dropped, reason
// rejected_by_sink); *SkippedError, the sink let some points go on purpose
// (dropped, reason skipped); in both cases the rest is written and the
// batch is not retried. Any other error keeps the batch for a retry
// (*RetryAfterError and *FailedError say when and how).
package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// Sink writes batches of points to one storage backend.
//
// Lifecycle: the constructor has no side effects; Open connects (creating
// files or schema as needed); Declare and Write may then be called, by one
// goroutine at a time; Close releases everything and is idempotent.
type Sink interface {
	Open(ctx context.Context) error
	// Declare announces measurements and their uniqueness keys before any
	// of their points are written. It may be called again as feeds start.
	Declare(ctx context.Context, ms []sluice.Measurement) error
	// Write stores points as one unit. It returns nil only once every
	// point is durably stored, a *RejectedError or *SkippedError once
	// every point it does not count is. A point whose uniqueness key is already
	// stored replaces it (one copy, latest values), so a batch can be
	// retried and a replay lands on itself. Write must not write to the
	// points' tags or fields: other sinks may be writing the same ones.
	Write(ctx context.Context, points []sluice.Point) error
	Close() error
}

// Any error from Write that is not one of the types below is transient:
// the pipeline retries the same batch with capped exponential backoff.

// RetryAfterError asks the pipeline to wait at least After before retrying
// (an HTTP 429 or 503 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// FailedError means the sink cannot write until an operator acts (bad
// credentials, a read-only file). The pipeline marks the sink failed in
// its status, keeps buffering and keeps retrying at its slowest pace, so
// fixing the cause loses nothing.
type FailedError struct {
	Err error
}

func (e *FailedError) Error() string { return e.Err.Error() }
func (e *FailedError) Unwrap() error { return e.Err }

// RejectedError reports points the backend will never accept (an InfluxDB
// partial write). Every other point of the batch has been written; the
// pipeline counts Rejected as dropped with reason "rejected_by_sink" and logs
// Sample, and does not retry.
type RejectedError struct {
	Rejected int
	Sample   string
	Err      error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%d points rejected: %v", e.Rejected, e.Err)
}
func (e *RejectedError) Unwrap() error { return e.Err }

// SkippedError reports points the sink let go of on purpose and does not
// want again: the live sink while its Redis does not answer, since live
// data that arrives late is not live. Every other point of the batch has
// been written. The pipeline counts Skipped as dropped with reason
// "skipped", does not retry, and logs it at most every few seconds with
// the count since its last line: a sink may skip every batch for as long
// as its cause lasts.
//
// Rejected or skipped: RejectedError is for points the backend will never
// accept (the data is bad); SkippedError for good points the sink chose
// not to deliver now. A sink that still wants the points once its backend
// is back returns neither, but an error the pipeline retries.
//
// When a batch has both, Err wraps the *RejectedError of the points the
// sink rejected, and the pipeline counts each.
type SkippedError struct {
	Skipped int
	Err     error
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%d points skipped: %v", e.Skipped, e.Err)
}
func (e *SkippedError) Unwrap() error { return e.Err }

// RefusedError is Declare refusing a measurement's uniqueness key that
// the rows already stored violate (two rows with one key): making the key
// hold would mean deleting rows, which a sink never does on its own.
// Retrying cannot help; the feed that declared the key fails with this
// reason until an operator acts on Hint. The sink keeps the key it had.
type RefusedError struct {
	Measurement string
	Unique      []string
	Err         error
	Hint        string // what the operator can do, e.g. the SQL to see the rows
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("measurement %q: uniqueness key (%s) refused: %v; %s",
		e.Measurement, strings.Join(e.Unique, ", "), e.Err, e.Hint)
}
func (e *RefusedError) Unwrap() error { return e.Err }

// Classify helpers for callers that branch on the error class.

// AsRetryAfter reports the wait an error asks for, if any.
func AsRetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Split is how a Write that returned err left a batch of n points:
// stored, rejected (*RejectedError) and skipped (*SkippedError). A sink's
// counts are held to the batch, so that a wrong one cannot wrap a
// counter: rejected first, then skipped from what is left. settled is
// false when err asks for a retry; the batch is then not accounted.
func Split(err error, n int) (stored, rejected, skipped int, settled bool) {
	var (
		rej  *RejectedError
		skip *SkippedError
	)
	isRej, isSkip := errors.As(err, &rej), errors.As(err, &skip)
	if err != nil && !isRej && !isSkip {
		return 0, 0, 0, false
	}
	if isRej {
		rejected = min(max(rej.Rejected, 0), n)
	}
	if isSkip {
		skipped = min(max(skip.Skipped, 0), n-rejected)
	}
	return n - rejected - skipped, rejected, skipped, true
}

// IsRefused reports whether err is, or wraps, a *RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// IsFailed reports whether err needs an operator to fix it.
func IsFailed(err error) bool {
	var f *FailedError
	return errors.As(err, &f)
}
