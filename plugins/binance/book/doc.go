// Package book keeps the local order book of one Binance symbol from a
// REST depth snapshot and the diff-depth stream, by Binance's documented
// algorithm (spot and futures sequencing), and says when the sequence
// breaks so that the caller fetches a new snapshot. It is pure logic: it
// takes the market.DepthUpdate and market.DepthSnapshot values the wire
// package parses and gives the top levels as `book` points; fetching and
// scheduling are the source's.
package book
