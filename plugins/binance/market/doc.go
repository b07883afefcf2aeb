// Package market is the vocabulary every part of the Binance source
// shares: the venues (Spot, USD-M and COIN-M futures), the normalized
// schema of the points made from their data (measurement, tag and side
// names, uniqueness keys, the book's points) and the order-book levels
// and updates that the parsers produce and the local book consumes. It
// imports nothing of the other parts, so that the parsers (wire), the
// book (book), the REST client (rest), the source and the simulated
// exchange (binancesim) can all import it.
package market
