// Package binance is the Binance market-data source: the Source the agent
// runs as the `binance` plugin. It validates a feed's config, connects to
// Binance (combined-stream connections in shards, rotation, reconnects,
// staleness), keeps trade ids contiguous with REST backfill, keeps a local
// order book per `depth` symbol and checkpoints a Position to resume from
// (README.md).
//
// The parts that need nothing of the source live in packages of their
// own, which the simulated exchange and the benchmarks import without it:
// market (venues, the normalized schema, book levels), wire (frame and
// REST-body parsing), book (the local order book) and rest (the REST
// client and its weight limit). binancesim is the simulated exchange the
// tests run against.
package binance
