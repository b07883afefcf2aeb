// Package binance turns Binance spot, USD-M and COIN-M market-data frames
// into normalized sluice points and keeps per-symbol local order books; it
// is pure logic with no I/O, so the connection code that feeds it can be
// tested and replaced independently.
package binance
