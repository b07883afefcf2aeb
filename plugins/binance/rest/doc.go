// Package rest is the Binance source's REST client: the market-data
// requests it makes (a local book's depth snapshot, the pages of a trade
// backfill), each kept under the feed's request-weight limit, retried as
// Binance's rate limits and errors call for, and parsed by the wire
// package. Endpoint weights, page sizes and paths per market are here
// too.
package rest
