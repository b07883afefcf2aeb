// Package binance is the Binance market-data source: pure logic that turns
// Binance spot, USD-M and COIN-M frames into normalized sluice points and
// keeps per-symbol local order books (Parser, Book, the id checks), and the
// Source that connects it to Binance (connections, rotation, backfill,
// positions; README.md). The parsing is free of I/O so that it can be
// tested on recorded frames and replaced independently.
package binance
