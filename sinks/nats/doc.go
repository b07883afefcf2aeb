// Package nats is the NATS JetStream sink: it publishes each point as one
// JetStream message, in line protocol, on a subject made from the
// measurement and its tags, with a message id built from the point's
// uniqueness key so that the same trade sent twice (by two recorders, or
// by one retrying) is stored once. README.md says what is guaranteed.
//
// # Messages
//
// Body: one line of InfluxDB line protocol (internal/lineproto), the
// timestamp in nanoseconds, uints tagged "u" so that the kind survives.
// Headers:
//
//	Nats-Msg-Id           msgID: measurement and key values (only with a key)
//	Sluice-Unique         the key's names, comma-separated (only with a key)
//	Sluice-Received       when the source received the point, Unix ns
//	Nats-Expected-Stream  the configured stream: a subject some other
//	                      stream holds is refused, not stored there
//
// # Acknowledgements
//
// Write publishes asynchronously, at most MaxInFlight messages waiting
// for their acknowledgement, and returns nil only when every message of
// the batch is acknowledged: stored, or found a duplicate of a stored one.
// On the first failure it stops publishing, waits for what is in flight,
// and returns the error; the pipeline then retries the whole batch, and
// message ids keep what was stored already from being stored again.
//
// # Connection and stream
//
// The first Write connects (nats.go then reconnects on its own, to any
// server of the cluster) and looks the stream up, creating it when
// CreateStream is set. The stream is checked once per connection, and
// again after a publish found no stream answering (the stream deleted).
package nats
