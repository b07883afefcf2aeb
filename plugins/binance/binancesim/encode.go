package binancesim

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Frames are built by appending, key by key, in the order and with the key
// set that the real frames of each market have (see
// shared/data/binance/*.jsonl): a struct marshalled by encoding/json could
// not keep spot's bare bookTicker, COIN-M's leading "u", or USD-M's
// trailing "st".

// appendFixed appends v, an integer with dec implied decimals, with out
// decimals (out >= dec).
func appendFixed(b []byte, v int64, dec, out int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	p := pow10(dec)
	b = strconv.AppendInt(b, v/p, 10)
	if out == 0 {
		return b
	}
	b = append(b, '.')
	frac := strconv.FormatInt(v%p, 10)
	for i := len(frac); i < dec; i++ {
		b = append(b, '0')
	}
	if dec > 0 {
		b = append(b, frac...)
	}
	for i := dec; i < out; i++ {
		b = append(b, '0')
	}
	return b
}

func appendFloat(b []byte, x float64, dec int) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		x = 0
	}
	b = append(b, '"')
	b = strconv.AppendFloat(b, x, 'f', dec, 64)
	return append(b, '"')
}

func (mk *venue) spot() bool { return mk.m == market.Spot }

// priceOut and qtyOut are the decimals prices and quantities are sent with:
// always 8 on spot, the symbol's precision on futures.
func (mk *venue) priceOut(s *symbol) int {
	if mk.spot() {
		return 8
	}
	return s.pd
}

func (mk *venue) qtyOut(s *symbol) int {
	if mk.spot() {
		return 8
	}
	return s.qd
}

func (mk *venue) appendPrice(b []byte, s *symbol, v int64) []byte {
	b = append(b, '"')
	b = appendFixed(b, v, s.pd, mk.priceOut(s))
	return append(b, '"')
}

func (mk *venue) appendQty(b []byte, s *symbol, v int64) []byte {
	b = append(b, '"')
	b = appendFixed(b, v, s.qd, mk.qtyOut(s))
	return append(b, '"')
}

func appendKey(b []byte, key string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendStr(b []byte, key, v string) []byte {
	b = appendKey(b, key)
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func appendBool(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, key), v)
}

// quoteOut is the decimals of quote volumes (kline q/Q, ticker q).
func (mk *venue) quoteOut(s *symbol, kline bool) int {
	switch {
	case mk.m == market.USDM && kline:
		return s.pd + s.qd
	case mk.m == market.USDM:
		return s.pd
	}
	return 8
}

// eventDelay is how far after the matching engine's time (T) the event
// time (E) of a frame lies.
func (mk *venue) eventDelay() int64 {
	if mk.spot() {
		return 1
	}
	return 5
}

func (mk *venue) tradeFrame(s *symbol, tr *tradeRec) []byte {
	b := make([]byte, 0, 192)
	b = append(b, `{"e":"trade"`...)
	b = appendInt(b, "E", tr.ms+mk.eventDelay())
	if mk.spot() {
		b = appendStr(b, "s", s.name)
		b = appendInt(b, "t", tr.id)
		b = mk.appendPrice(appendKey(b, "p"), s, tr.price)
		b = mk.appendQty(appendKey(b, "q"), s, tr.qty)
		b = appendInt(b, "T", tr.ms)
		b = appendBool(b, "m", tr.buyerMaker)
		b = appendBool(b, "M", true)
		return append(b, '}')
	}
	b = appendInt(b, "T", tr.ms)
	b = appendStr(b, "s", s.name)
	b = appendInt(b, "t", tr.id)
	b = mk.appendPrice(appendKey(b, "p"), s, tr.price)
	b = mk.appendQty(appendKey(b, "q"), s, tr.qty)
	b = appendStr(b, "X", "MARKET")
	b = appendBool(b, "m", tr.buyerMaker)
	return append(b, '}')
}

func (mk *venue) aggTradeFrame(s *symbol, a *aggRec) []byte {
	b := make([]byte, 0, 224)
	b = append(b, `{"e":"aggTrade"`...)
	b = appendInt(b, "E", a.ms+mk.eventDelay())
	if mk.spot() {
		b = appendStr(b, "s", s.name)
		b = appendInt(b, "a", a.id)
	} else {
		b = appendInt(b, "a", a.id)
		b = appendStr(b, "s", s.name)
	}
	b = mk.appendPrice(appendKey(b, "p"), s, a.price)
	b = mk.appendQty(appendKey(b, "q"), s, a.qty)
	if mk.m == market.USDM {
		b = mk.appendQty(appendKey(b, "nq"), s, a.qty)
	}
	b = appendInt(b, "f", a.first)
	b = appendInt(b, "l", a.last)
	b = appendInt(b, "T", a.ms)
	b = appendBool(b, "m", a.buyerMaker)
	switch mk.m {
	case market.Spot:
		b = appendBool(b, "M", true)
	case market.USDM:
		b = appendInt(b, "st", 1)
	}
	return append(b, '}')
}

// aggTradeREST is one element of a REST aggTrades answer.
func (mk *venue) aggTradeREST(b []byte, s *symbol, a *aggRec) []byte {
	b = append(b, `{"a":`...)
	b = strconv.AppendInt(b, a.id, 10)
	b = mk.appendPrice(appendKey(b, "p"), s, a.price)
	b = mk.appendQty(appendKey(b, "q"), s, a.qty)
	if mk.m == market.USDM {
		b = mk.appendQty(appendKey(b, "nq"), s, a.qty)
	}
	b = appendInt(b, "f", a.first)
	b = appendInt(b, "l", a.last)
	b = appendInt(b, "T", a.ms)
	b = appendBool(b, "m", a.buyerMaker)
	if mk.spot() {
		b = appendBool(b, "M", true)
	}
	return append(b, '}')
}

// tradeREST is one element of a REST trades / historicalTrades answer.
func (mk *venue) tradeREST(b []byte, s *symbol, t *tradeRec) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, t.id, 10)
	b = mk.appendPrice(appendKey(b, "price"), s, t.price)
	b = mk.appendQty(appendKey(b, "qty"), s, t.qty)
	switch mk.m {
	case market.COINM:
		b = appendFloat(appendKey(b, "baseQty"), s.quoteOf(t.price, t.qty), 8)
	case market.Spot:
		b = appendFloat(appendKey(b, "quoteQty"), s.quoteOf(t.price, t.qty), 8)
	default:
		b = appendFloat(appendKey(b, "quoteQty"), s.quoteOf(t.price, t.qty), s.pd+s.qd)
	}
	b = appendInt(b, "time", t.ms)
	b = appendBool(b, "isBuyerMaker", t.buyerMaker)
	if mk.spot() {
		b = appendBool(b, "isBestMatch", true)
	}
	return append(b, '}')
}

func (mk *venue) bookTickerFrame(s *symbol) []byte {
	bid, ask := s.bestBid(), s.bestAsk()
	b := make([]byte, 0, 224)
	switch mk.m {
	case market.Spot:
		b = append(b, `{"u":`...)
		b = strconv.AppendInt(b, s.lastID, 10)
		b = appendStr(b, "s", s.name)
	case market.USDM:
		b = append(b, `{"e":"bookTicker"`...)
		b = appendInt(b, "u", s.lastID)
		b = appendStr(b, "s", s.name)
		b = appendStr(b, "ps", s.pair)
	default:
		b = append(b, `{"u":`...)
		b = strconv.AppendInt(b, s.lastID, 10)
		b = appendStr(b, "e", "bookTicker")
		b = appendStr(b, "s", s.name)
		b = appendStr(b, "ps", s.pair)
	}
	b = mk.appendPrice(appendKey(b, "b"), s, bid.price)
	b = mk.appendQty(appendKey(b, "B"), s, bid.qty)
	b = mk.appendPrice(appendKey(b, "a"), s, ask.price)
	b = mk.appendQty(appendKey(b, "A"), s, ask.qty)
	if !mk.spot() {
		b = appendInt(b, "T", s.lastMs)
		b = appendInt(b, "E", s.lastMs+mk.eventDelay())
		if mk.m == market.USDM {
			b = appendInt(b, "st", 1)
		}
	}
	return append(b, '}')
}

func (mk *venue) appendLevels(b []byte, s *symbol, ls []level) []byte {
	b = append(b, '[')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = mk.appendPrice(b, s, l.price)
		b = append(b, ',')
		b = mk.appendQty(b, s, l.qty)
		b = append(b, ']')
	}
	return append(b, ']')
}

func sortedLevels(m map[int64]int64, desc bool) []level {
	out := make([]level, 0, len(m))
	for p, q := range m {
		out = append(out, level{p, q})
	}
	slices.SortFunc(out, func(x, y level) int {
		if desc {
			return cmp.Compare(y.price, x.price)
		}
		return cmp.Compare(x.price, y.price)
	})
	return out
}

// futuresDepthHead appends the keys a futures depthUpdate (diff or
// partial) starts with, up to "b".
func (mk *venue) depthHead(b []byte, s *symbol, E, T, U, u, pu int64) []byte {
	b = append(b, `{"e":"depthUpdate"`...)
	b = appendInt(b, "E", E)
	if !mk.spot() {
		b = appendInt(b, "T", T)
	}
	b = appendStr(b, "s", s.name)
	if !mk.spot() {
		b = appendStr(b, "ps", s.pair)
	}
	b = appendInt(b, "U", U)
	b = appendInt(b, "u", u)
	if !mk.spot() {
		b = appendInt(b, "pu", pu)
	}
	return b
}

// diffFrame is the diff-depth event of a window: spot lists bids best
// first, futures lists both sides ascending, as the real streams do.
func (mk *venue) diffFrame(s *symbol, a *diffAcc, E int64) []byte {
	b := make([]byte, 0, 128+40*(len(a.bids)+len(a.asks)))
	b = mk.depthHead(b, s, E, a.lastT, a.first, a.last, a.prevU)
	b = mk.appendLevels(appendKey(b, "b"), s, sortedLevels(a.bids, mk.spot()))
	b = mk.appendLevels(appendKey(b, "a"), s, sortedLevels(a.asks, false))
	if mk.m == market.USDM {
		b = appendInt(b, "st", 1)
	}
	return append(b, '}')
}

// partialFrame is a partial book depth event: spot's bare lastUpdateId
// snapshot, or a futures depthUpdate carrying the top levels.
func (mk *venue) partialFrame(s *symbol, a *diffAcc, levels int, E int64) []byte {
	bids, asks := s.top(true, levels), s.top(false, levels)
	b := make([]byte, 0, 128+40*(len(bids)+len(asks)))
	if mk.spot() {
		b = append(b, `{"lastUpdateId":`...)
		b = strconv.AppendInt(b, s.lastID, 10)
		b = mk.appendLevels(appendKey(b, "bids"), s, bids)
		b = mk.appendLevels(appendKey(b, "asks"), s, asks)
		return append(b, '}')
	}
	U, u, T := a.first, a.last, a.lastT
	if U == 0 {
		U, u, T = s.lastID, s.lastID, s.lastMs
	}
	b = mk.depthHead(b, s, E, T, U, u, a.prevU)
	b = mk.appendLevels(appendKey(b, "b"), s, bids)
	b = mk.appendLevels(appendKey(b, "a"), s, asks)
	if mk.m == market.USDM {
		b = appendInt(b, "st", 1)
	}
	return append(b, '}')
}

// depthSnapshot is the REST depth answer.
func (mk *venue) depthSnapshot(s *symbol, limit int, nowMs int64) []byte {
	bids, asks := s.top(true, limit), s.top(false, limit)
	b := make([]byte, 0, 128+40*(len(bids)+len(asks)))
	b = append(b, `{"lastUpdateId":`...)
	b = strconv.AppendInt(b, s.lastID, 10)
	if !mk.spot() {
		b = appendInt(b, "E", nowMs)
		b = appendInt(b, "T", s.lastMs)
	}
	if mk.m == market.COINM {
		b = appendStr(b, "symbol", s.name)
		b = appendStr(b, "pair", s.pair)
	}
	b = mk.appendLevels(appendKey(b, "bids"), s, bids)
	b = mk.appendLevels(appendKey(b, "asks"), s, asks)
	return append(b, '}')
}

func (mk *venue) klineFrame(s *symbol, k *kline, E int64, closed bool) []byte {
	b := make([]byte, 0, 384)
	b = append(b, `{"e":"kline"`...)
	b = appendInt(b, "E", E)
	b = appendStr(b, "s", s.name)
	b = append(b, `,"k":{"t":`...)
	b = strconv.AppendInt(b, k.t, 10)
	b = appendInt(b, "T", k.T)
	b = appendStr(b, "s", s.name)
	b = appendStr(b, "i", k.iv)
	b = appendInt(b, "f", k.f)
	b = appendInt(b, "L", k.L)
	b = mk.appendPrice(appendKey(b, "o"), s, k.o)
	b = mk.appendPrice(appendKey(b, "c"), s, k.c)
	b = mk.appendPrice(appendKey(b, "h"), s, k.h)
	b = mk.appendPrice(appendKey(b, "l"), s, k.l)
	b = mk.appendQty(appendKey(b, "v"), s, k.v)
	b = appendInt(b, "n", k.n)
	b = appendBool(b, "x", closed)
	b = appendFloat(appendKey(b, "q"), k.q, mk.quoteOut(s, true))
	b = mk.appendQty(appendKey(b, "V"), s, k.V)
	b = appendFloat(appendKey(b, "Q"), k.Q, mk.quoteOut(s, true))
	b = appendStr(b, "B", "0")
	return append(b, '}', '}')
}

func (mk *venue) tickerFrame(s *symbol, E int64, mini bool) []byte {
	st := &s.stats
	b := make([]byte, 0, 448)
	if mini {
		b = append(b, `{"e":"24hrMiniTicker"`...)
	} else {
		b = append(b, `{"e":"24hrTicker"`...)
	}
	b = appendInt(b, "E", E)
	b = appendStr(b, "s", s.name)
	if mk.m == market.COINM || (mk.m == market.USDM && !mini) {
		b = appendStr(b, "ps", s.pair)
	}
	if mini {
		b = mk.appendPrice(appendKey(b, "c"), s, st.last)
		b = mk.appendPrice(appendKey(b, "o"), s, st.open)
		b = mk.appendPrice(appendKey(b, "h"), s, st.high)
		b = mk.appendPrice(appendKey(b, "l"), s, st.low)
		b = mk.appendQty(appendKey(b, "v"), s, st.vol)
		b = appendFloat(appendKey(b, "q"), st.quote, mk.quoteOut(s, false))
		return append(b, '}')
	}
	change := st.last - st.open
	b = mk.appendPrice(appendKey(b, "p"), s, change)
	b = appendFloat(appendKey(b, "P"), 100*float64(change)/float64(max(st.open, 1)), 3)
	wavg := float64(st.last) / float64(pow10(s.pd))
	if st.vol > 0 {
		if s.contract > 0 {
			wavg = float64(st.vol*s.contract) / st.quote
		} else {
			wavg = st.quote / (float64(st.vol) / float64(pow10(s.qd)))
		}
	}
	b = appendFloat(appendKey(b, "w"), wavg, mk.quoteOut(s, false))
	if mk.spot() {
		b = mk.appendPrice(appendKey(b, "x"), s, st.open)
	}
	b = mk.appendPrice(appendKey(b, "c"), s, st.last)
	b = mk.appendQty(appendKey(b, "Q"), s, st.lastQty)
	if mk.spot() {
		bid, ask := s.bestBid(), s.bestAsk()
		b = mk.appendPrice(appendKey(b, "b"), s, bid.price)
		b = mk.appendQty(appendKey(b, "B"), s, bid.qty)
		b = mk.appendPrice(appendKey(b, "a"), s, ask.price)
		b = mk.appendQty(appendKey(b, "A"), s, ask.qty)
	}
	b = mk.appendPrice(appendKey(b, "o"), s, st.open)
	b = mk.appendPrice(appendKey(b, "h"), s, st.high)
	b = mk.appendPrice(appendKey(b, "l"), s, st.low)
	b = mk.appendQty(appendKey(b, "v"), s, st.vol)
	b = appendFloat(appendKey(b, "q"), st.quote, mk.quoteOut(s, false))
	b = appendInt(b, "O", max(mk.epochMs, E-86_400_000))
	b = appendInt(b, "C", E)
	b = appendInt(b, "F", st.first)
	b = appendInt(b, "L", st.lastID)
	b = appendInt(b, "n", st.n)
	if mk.m == market.USDM {
		b = appendInt(b, "st", 1)
	}
	return append(b, '}')
}

func (mk *venue) markPriceFrame(s *symbol, E int64) []byte {
	mid := float64(s.bestBid().price+s.bestAsk().price) / 2 / float64(pow10(s.pd))
	mark := mid * (1 + 0.0001*hashNoise(s.name, E))
	index := mid * (1 + 0.0002*hashNoise(s.name, E+1))
	settle := index * (1 + 0.0001*hashNoise(s.name, E+2))
	b := make([]byte, 0, 256)
	b = append(b, `{"e":"markPriceUpdate"`...)
	b = appendInt(b, "E", E)
	b = appendStr(b, "s", s.name)
	b = appendFloat(appendKey(b, "p"), mark, 8)
	if mk.m == market.USDM {
		b = appendFloat(appendKey(b, "ap"), mark, 8)
	}
	b = appendFloat(appendKey(b, "P"), settle, 8)
	if mk.m == market.USDM {
		b = appendFloat(appendKey(b, "i"), index, 8)
	}
	var next int64
	rate := 0.0
	if s.perp {
		const funding = 8 * 3_600_000
		next = (E/funding + 1) * funding
		rate = 0.0001 + 0.0001*hashNoise(s.name, E/funding)
	}
	b = appendFloat(appendKey(b, "r"), rate, 8)
	b = appendInt(b, "T", next)
	if mk.m == market.USDM {
		b = appendInt(b, "st", 1)
	}
	return append(b, '}')
}

// forceOrder is one liquidation order, as the forceOrder stream reports.
type forceOrder struct {
	sell            bool
	qty, price      int64 // order quantity and limit (bankruptcy) price
	avg, lastFilled int64
	ms              int64
}

func (mk *venue) forceOrderFrame(s *symbol, f *forceOrder) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"e":"forceOrder"`...)
	b = appendInt(b, "E", f.ms+mk.eventDelay())
	b = append(b, `,"o":{"s":`...)
	b = append(b, '"')
	b = append(b, s.name...)
	b = append(b, '"')
	if mk.m == market.COINM {
		b = appendStr(b, "ps", s.pair)
	}
	side := "BUY"
	if f.sell {
		side = "SELL"
	}
	b = appendStr(b, "S", side)
	b = appendStr(b, "o", "LIMIT")
	b = appendStr(b, "f", "IOC")
	b = mk.appendQty(appendKey(b, "q"), s, f.qty)
	b = mk.appendPrice(appendKey(b, "p"), s, f.price)
	b = mk.appendPrice(appendKey(b, "ap"), s, f.avg)
	b = appendStr(b, "X", "FILLED")
	b = mk.appendQty(appendKey(b, "l"), s, f.lastFilled)
	b = mk.appendQty(appendKey(b, "z"), s, f.qty)
	b = appendInt(b, "T", f.ms)
	return append(b, '}', '}')
}
