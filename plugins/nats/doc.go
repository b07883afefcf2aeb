// Package nats is the NATS JetStream source: it reads a stream written by
// the nats sink (or anything publishing line protocol) and emits each
// message's points with their original timestamps, declaring the
// uniqueness keys the messages carry, and resumes from the stream
// sequence it last emitted.
package nats
