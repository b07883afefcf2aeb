// Package lineproto turns points into InfluxDB line protocol and back: the
// encoder the InfluxDB sink writes with and the NATS sink publishes with,
// and the decoder the NATS source reads messages with. Both are pure: they
// work on byte slices and do no I/O.
package lineproto
