// Package live is the live sink: it serves the points it is given to
// browsers and programs as they arrive, over the Centrifuge client
// protocol (github.com/centrifugal/centrifuge; client SDKs for
// JavaScript, Go, Swift, Dart and Python), and a page at / to watch them.
// README.md says what a client gets and what is guaranteed.
//
// # Channels and payloads
//
// Each point goes to the channel its measurement's template renders
// (channel.go; trades:binance:spot:BTCUSDT by default) as one JSON object
// with its measurement, tags, fields and times (payload.go).
//
// # Auth
//
// A connection needs a JWT (auth.go) signed with the HMAC secret, a
// configured public key or a JWKS key; its channels claim lists the
// channel patterns it may subscribe to, and a subscription token adds one
// channel. Expired tokens are refreshed through the protocol's refresh
// flow. Without a token only anonymous_channels, if configured.
//
// # Recovery and slow clients
//
// Every channel keeps a bounded history (history_size, history_ttl), with
// the protocol's offsets and epoch, so that a client that reconnects
// within it gets what it missed, once, in order; latest_only channels
// keep their latest point and hand it to each new subscriber. Publishing
// never waits for a client: each client has a bounded queue, and one that
// cannot keep up is disconnected (code 3008, counted). The sink's part of
// the disk buffer is small and drops its oldest points when full (the
// type's pipeline defaults), so the sink never holds the feeds back.
//
// # Many agents
//
// With redis.address, publications and history go through Redis: every
// agent sharing it delivers every agent's points, and recovery works
// whichever agent a client reconnects to. The agent does not depend on Redis
// being up (redis.go): the sink opens without it, a keeper connects and
// watches it with backoff, Write skips what it is given while Redis does
// not answer and says so (a sinks.SkippedError, which the pipeline counts
// as dropped, not written), and Health says since when and why, which the
// agent shows as a failed sink.
package live
