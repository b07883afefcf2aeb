// Package binancesim is an in-process simulated Binance that speaks the
// market-data protocol frame for frame, so the Binance source can be
// tested and benchmarked offline against streams, REST answers, limits
// and faults shaped exactly like the real ones.
//
// # URL layout
//
// One http.Handler serves the three venues, each under its own prefix
// with Binance's own paths below it, so a client's base-URL override is
// all it takes to point at the simulator:
//
//	            WebSocket base (ws_url)   REST base (rest_url)
//	spot        ws://HOST/spot            http://HOST/spot   + /api/v3/...
//	USD-M       ws://HOST/usdm            http://HOST/usdm   + /fapi/v1/...
//	COIN-M      ws://HOST/coinm           http://HOST/coinm  + /dapi/v1/...
//
// Below each WebSocket base: /ws (raw, no stream yet), /ws/<stream>[/<stream>...]
// (raw frames) and /stream?streams=<s1>/<s2> (frames wrapped in
// {"stream":..,"data":..}). Below each REST base: depth, trades,
// historicalTrades, aggTrades, ping, time and a minimal exchangeInfo.
//
// # Streams
//
// <symbol>@trade, @aggTrade, @kline_<interval>, @bookTicker, @ticker,
// @miniTicker, diff depth (@depth and @depth@100ms; futures also
// @depth@500ms), partial depth (@depth5/10/20 with the same speeds) and,
// on futures, @markPrice, @markPrice@1s and @forceOrder; plus
// !miniTicker@arr and, on futures, !ticker@arr, !bookTicker,
// !markPrice@arr[@1s] and !forceOrder@arr. Each market's frames carry the
// key set, key order and decimals of the real captures: spot bookTicker
// has no e/E, futures depth carries T and pu, USD-M frames end in the
// undocumented "st", COIN-M bookTicker starts with "u".
//
// # How Binance behaves, and what the simulator does
//
//   - JSON requests SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS,
//     SET_PROPERTY/GET_PROPERTY "combined" are answered {"result":..,"id":N}
//     (COIN-M puts the id first); a bad stream name gets
//     {"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":N},
//     going past MaxStreams (1024) {"error":{"code":4,"msg":"Too many
//     subscriptions"},"id":N}, bad JSON code 3 without an id. Futures then
//     close the connection (1008), as they do since 2023-06.
//   - More than MaxIncoming messages a second (text frames, pings and
//     pongs; 5 on spot, 10 on futures) closes the connection with 1008.
//   - The server pings every PingInterval (spot 20 s, futures 3 min) and
//     drops, without a close frame, a connection whose oldest unanswered
//     ping is older than PongTimeout (spot 1 min, futures 10 min). Spot
//     only counts a pong echoing a ping's payload.
//   - Binance documents only that a connection "is only valid for 24
//     hours; expect to be disconnected at the 24 hour mark". The simulator
//     closes a connection MaxLifetime after it opened with
//     Options.LifetimeClose (default a 1001 close frame).
//   - REST weight is counted per IP and market in one-minute windows and
//     reported in X-MBX-USED-WEIGHT-1M (and X-MBX-USED-WEIGHT on spot).
//     Past WeightLimit the answer is 429 with Retry-After; an IP that goes
//     on after a 429 is banned (418 with Retry-After) for BanDuration.
//
// # Generated market
//
// Per symbol a seeded model matches taker orders against an evolving
// book: trade and aggregate trade ids are contiguous, several trades share
// a millisecond, each engine event is one update id (per symbol on spot,
// venue-wide on futures), diff-depth events fold a window's changes with
// consistent U/u/pu, bookTicker is sent on every change of the top of the
// book with the u that made it, and klines and tickers aggregate the
// trades. The generator runs on a virtual clock (Run in real time, or
// Advance in tests); the same seed gives the same events.
//
// Options.TakerShare (how many book events come with a trade) and
// Options.Skew (how unevenly the symbols share the activity) shape the mix;
// SetTradeRate changes a running market's rate.
//
// Sim.Trades, TradeCount and AggTrades return what was generated, the
// ground truth for "nothing missing, nothing duplicated" checks; Activity
// counts every kind generated (subscribed or not) and UpdateIDs is where
// each symbol's book stands.
package binancesim
