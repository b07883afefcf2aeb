// Package jsonws is a generic JSON-over-WebSocket source: it connects to a
// URL, runs the feed's open, heartbeat and reconnect protocol from config,
// and turns each JSON message into points with config-defined mapping
// rules, so a new feed needs a feed file rather than Go code.
//
// The mapping (Mapper, Sample) is pure and separate from the connection
// (Source), so rules can be developed offline against sample messages.
package jsonws
