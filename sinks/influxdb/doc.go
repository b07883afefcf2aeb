// Package influxdb is the InfluxDB sink: it writes batches of points as
// line protocol to the v2 write API (/api/v2/write) of InfluxDB 1.8, 2.x
// and 3.x, one attempt per Write, and says exactly how a write failed.
//
// # Talking to InfluxDB
//
// Requests go through github.com/influxdata/influxdb-client-go/v2: its
// HTTP service sets the Authorization ("Token <token>"; 1.8 takes
// "user:password" there) and User-Agent headers and sends the request on an
// http.Client this package configures (timeout, TLS). Neither of the
// client's write APIs is used: the async WriteAPI drops batches silently
// when its retry buffer overflows, and the blocking WriteAPIBlocking hides
// the response body (it keeps only a message truncated to 1 KiB for 1.8),
// which is what tells which points a partial write refused. The client's
// retries are off (MaxRetries 0): the pipeline owns retrying.
//
// The sink encodes line protocol itself into a reused buffer and, with
// gzip on, compresses it with a reused gzip writer at gzip.BestSpeed.
//
// # Line protocol
//
// Floats are written with the shortest representation that parses back to
// the same float64 (strconv 'g', -1). Ints are "123i". Uints are written as
// ints ("123i"), because InfluxDB 1.8 refuses the "u" suffix (unsigned
// support is a compile-time switch its releases leave off): a uint field
// reads back as an integer field with the same value on 1.8, 2.x and 3.x,
// and a uint above math.MaxInt64 is rejected rather than stored altered.
// Strings escape only '"' and '\'; newlines are written as they are.
// Measurement names escape ',' and ' '; tag keys, tag values and field keys
// escape ',', ' ' and '='. Tags with an empty value are left out (InfluxDB
// does not store them).
//
// A point is rejected (counted in the RejectedError, never sent) when it
// cannot be stored exactly: NaN or infinite floats; uints above MaxInt64;
// control characters (newline, tab, ...) or invalid UTF-8 in a name; a
// name with a backslash at its end or before '\', ',', ' ', '=' or '"'
// (InfluxDB 1.x's scanner and unescaper disagree about those); a
// measurement starting with '#' (a comment line); empty names; no fields;
// a time outside 1677-09-21..2262-04-11.
//
// # Point identity
//
// InfluxDB stores one point per measurement, tag set and timestamp: a
// second write with all three equal overwrites the first's fields. So
// retrying a batch is harmless, but two distinct trades of one symbol in
// one millisecond would collapse into one.
//
// A measurement's declared Unique key names what identifies its points.
// Names that are tags on a point are already in the series key and "time"
// is the timestamp; when every Unique name is one of those, points are
// written with their event time as is. When the key names fields that are
// not tags (a trade's trade_id), the written timestamp is
//
//	floor(event time, 1ms) + offset,  offset in [0, 999999] ns
//
// where offset is:
//
//   - when exactly one Unique name is a field present on the point (and
//     not a tag), and its value is an
//     integer (an int, a uint, an integral float, or a string of decimal
//     digits such as "123456789"): that integer mod 1,000,000 (made
//     non-negative). Sequential ids are therefore distinct for up to a
//     million points per series per millisecond.
//   - otherwise: the 64-bit FNV-1a hash of the non-tag fields' kinds and
//     values, in declared order (a missing field hashes as absent), mod
//     1,000,000. Two distinct points in the same series and millisecond
//     collide with probability about 1/1,000,000 per pair.
//
// A point on which none of those fields is present gets no offset.
//
// The offset is a pure function of the point, so a replayed point gets the
// timestamp it had and overwrites itself, while distinct points get
// distinct timestamps. The written time stays inside the event's
// millisecond: queries by time see it where they expect, and sub-
// millisecond event precision is traded for identity (sources whose event
// times are finer than 1ms keep only the millisecond in these
// measurements). This needs nanosecond precision: with another precision,
// a Write that would need an offset returns a *sinks.FailedError and sends
// nothing (whether a Unique name is a tag or a field is only known per
// point, so Declare cannot tell in advance). Points of measurements never
// declared, or declared with an empty Unique, are written at their event
// time in the configured precision, and InfluxDB's own identity applies.
//
// # Failures
//
// Each Write makes one attempt (plus the splits below) and returns:
//
//   - nil: every point is stored.
//   - *sinks.RetryAfterError on 429 and 503, with the Retry-After header's
//     delay (seconds or HTTP date), 5s when there is none.
//   - *sinks.FailedError on 401, 403, 404 (no such database, bucket or
//     org), on other 4xx that are about the request, not its points, and
//     on TLS certificate failures (the server's not trusted, ours refused).
//   - *sinks.RejectedError when some points can never be stored: the
//     encoder refused them, or InfluxDB did (a 400 or 422 partial write:
//     "partial write: ... dropped=N" and "unable to parse 'LINE': ..." from
//     1.x and 2.x, "error parsing line N" from Cloud, per-line data from
//     3.x). Lines the server names, by text or number, are rejected and
//     the others sent again; when it names none, the request is split in
//     halves, recursively, until each refused point stands alone. Every
//     other point is stored when it returns.
//   - a 413 splits the request in halves, recursively, within the Write.
//   - any other error (network, timeout, other 5xx) is plain: the pipeline
//     retries the batch with backoff.
//
// Sending points again is always safe (see Point identity), which is what
// lets a failed or partly failed Write be retried whole.
package influxdb
