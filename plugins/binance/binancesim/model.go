package binancesim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// The generator's shape. Each engine event picks a symbol (busier symbols
// first) and is a taker order, a maker order or a cancel; one engine event
// is one update id.
const (
	pTaker       = 0.35
	pMaker       = 0.40 // after pTaker; the rest are cancels
	tradesPerTkr = 2.2  // measured mean trades per taker order
	minLevels    = 20   // a side thinner than this is refilled
	maxLevels    = 400  // a side thicker than this loses its worst level
	initLevels   = 120
	pLiquidation = 0.03 // futures takers that are liquidations
)

// level is one price level in integer ticks and lots.
type level struct{ price, qty int64 }

// tradeRec is one generated trade.
type tradeRec struct {
	id, price, qty, ms int64
	buyerMaker         bool
}

// aggRec is one generated aggregate trade: the fills of one taker order at
// one price.
type aggRec struct {
	id, first, last, price, qty, ms int64
	buyerMaker                      bool
}

// ring is a bounded FIFO that drops its oldest element when full.
type ring[T any] struct {
	buf   []T
	start int
	n     int
}

func (r *ring[T]) push(capacity int, v T) {
	if r.n < capacity {
		if len(r.buf) < capacity {
			r.buf = append(r.buf, v)
		} else {
			r.buf[(r.start+r.n)%len(r.buf)] = v
		}
		r.n++
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring[T]) len() int   { return r.n }
func (r *ring[T]) at(i int) T { return r.buf[(r.start+i)%len(r.buf)] }
func (r *ring[T]) last() (T, bool) {
	var zero T
	if r.n == 0 {
		return zero, false
	}
	return r.at(r.n - 1), true
}

// diffAcc folds the book changes of one diff-depth update speed into the
// next event: U is the first update id of the window, u the last, pu (on
// futures) the u of the previous event.
type diffAcc struct {
	period     int64 // ms
	first      int64 // 0 when the window has no update
	last       int64
	lastT      int64 // transaction time of the last update
	prevU      int64
	bids, asks map[int64]int64
	gap        bool // drop the next event: InjectDepthGap
}

func (a *diffAcc) note(id, ms int64, bid bool, price, qty int64) {
	if a.first == 0 {
		a.first = id
	}
	a.last, a.lastT = id, ms
	if bid {
		a.bids[price] = qty
	} else {
		a.asks[price] = qty
	}
}

func (a *diffAcc) reset() {
	a.prevU = a.last
	a.first = 0
	clear(a.bids)
	clear(a.asks)
}

// symbol is the generated market of one symbol.
type symbol struct {
	name, lower string
	pair        string // futures "ps"
	perp        bool   // has funding (r, T)
	pd, qd      int    // decimals of price ticks and quantity lots
	contract    int64  // COIN-M contract size in USD
	spec        symSpec

	bids, asks []level // best last: bids ascending, asks descending
	lastID     int64   // update id the book reflects
	lastMs     int64   // transaction time of that update

	nextTrade, nextAgg int64
	tradeBase          int64 // the first trade id
	trades             ring[tradeRec]
	aggs               ring[aggRec]

	diffs  []*diffAcc // one per diff-depth speed of the market
	klines map[string]*kline
	stats  tickerStats
	names  streamNames

	bt          [4]int64 // last bookTicker sent: bid, bidQty, ask, askQty
	lastForceMs int64
}

type symSpec struct {
	price  float64
	pd, qd int
}

// knownSpecs gives familiar symbols familiar prices and precisions; other
// symbols get a price and precisions derived from their name.
var knownSpecs = map[string]map[market.Market]symSpec{
	"BTC": {market.Spot: {60000, 2, 5}, market.USDM: {60000, 1, 3}, market.COINM: {60000, 1, 0}},
	"ETH": {market.Spot: {3000, 2, 4}, market.USDM: {3000, 2, 3}, market.COINM: {3000, 2, 0}},
	"BNB": {market.Spot: {600, 2, 3}, market.USDM: {600, 2, 2}, market.COINM: {600, 3, 0}},
}

func baseAsset(m market.Market, name string) string {
	if m == market.COINM {
		b, _, _ := strings.Cut(name, "USD_")
		return b
	}
	name, _, _ = strings.Cut(name, "_")
	for _, q := range []string{"USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY"} {
		if b, ok := strings.CutSuffix(name, q); ok && b != "" {
			return b
		}
	}
	return name
}

func quoteAsset(m market.Market, name string) string {
	base := baseAsset(m, name)
	if m == market.COINM {
		return "USD"
	}
	q, _, _ := strings.Cut(strings.TrimPrefix(name, base), "_")
	return q
}

func specFor(m market.Market, name string) symSpec {
	if s, ok := knownSpecs[baseAsset(m, name)][m]; ok {
		return s
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	u := float64(h.Sum64()%1_000_000) / 1_000_000
	price := math.Pow(10, u*5-1) // 0.1 .. 10000
	mag := int(math.Floor(math.Log10(price)))
	pd := min(max(4-mag, 0), 8)
	qd := min(max(mag+1, 0), 8)
	switch m {
	case market.USDM:
		qd = min(max(mag, 0), 3)
	case market.COINM:
		qd = 0
	}
	return symSpec{price: price, pd: pd, qd: qd}
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func newSymbol(mk *venue, name string, idx int) *symbol {
	spec := specFor(mk.m, name)
	s := &symbol{
		name:   name,
		lower:  strings.ToLower(name),
		pair:   name,
		perp:   true,
		pd:     spec.pd,
		qd:     spec.qd,
		spec:   spec,
		klines: map[string]*kline{},
	}
	switch mk.m {
	case market.USDM:
		s.pair, _, _ = strings.Cut(name, "_")
		s.perp = !strings.Contains(name, "_")
	case market.COINM:
		s.pair, _, _ = strings.Cut(name, "_")
		s.perp = strings.HasSuffix(name, "_PERP")
		s.contract = 10
		if baseAsset(mk.m, name) == "BTC" {
			s.contract = 100
		}
	}
	rng := mk.rng
	s.nextTrade = 1_000_000 + rng.Int64N(900_000_000)
	s.nextAgg = s.nextTrade/2 + rng.Int64N(1000)
	s.tradeBase = s.nextTrade
	if mk.m == market.Spot {
		s.lastID = 100_000_000 + rng.Int64N(9_000_000_000)
	} else {
		s.lastID = mk.updateID
	}
	for _, p := range mk.depthPeriods {
		s.diffs = append(s.diffs, &diffAcc{period: p, prevU: s.lastID,
			bids: map[int64]int64{}, asks: map[int64]int64{}})
	}
	// The opening book: initLevels a side, one to three ticks apart.
	mid := int64(math.Round(spec.price * float64(pow10(s.pd))))
	mid = max(mid, 2*initLevels*3+10)
	p := mid - 1
	for range initLevels {
		s.bids = append(s.bids, level{p, s.makerQty(rng)})
		p -= 1 + rng.Int64N(3)
	}
	slices.Reverse(s.bids)
	p = mid + 1
	for range initLevels {
		s.asks = append(s.asks, level{p, s.makerQty(rng)})
		p += 1 + rng.Int64N(3)
	}
	slices.Reverse(s.asks)
	s.stats.init(mid)
	s.names = makeNames(mk, s.lower)
	_ = idx
	return s
}

// makerQty draws the size of a resting order in lots: a few hundred USD
// worth, log-normally spread; COIN-M sizes are contracts.
func (s *symbol) makerQty(rng *rand.Rand) int64 {
	if s.contract > 0 {
		return 1 + int64(rng.ExpFloat64()*40)
	}
	notional := 300 * math.Exp(rng.NormFloat64())
	lots := notional / s.spec.price * float64(pow10(s.qd))
	return max(1, int64(lots))
}

func (s *symbol) bestBid() level { return s.bids[len(s.bids)-1] }
func (s *symbol) bestAsk() level { return s.asks[len(s.asks)-1] }

// side returns the side slice and its ordering (asks are descending).
func (s *symbol) side(bid bool) (*[]level, bool) {
	if bid {
		return &s.bids, false
	}
	return &s.asks, true
}

// setLevel sets a level's quantity (0 removes it) and records the change
// for every diff-depth speed.
func (s *symbol) setLevel(id, ms int64, bid bool, price, qty int64) {
	side, desc := s.side(bid)
	i, found := slices.BinarySearchFunc(*side, price, func(x level, p int64) int {
		switch {
		case x.price == p:
			return 0
		case (x.price < p) != desc:
			return -1
		}
		return 1
	})
	switch {
	case qty == 0 && found:
		*side = slices.Delete(*side, i, i+1)
	case qty == 0:
		return
	case found:
		(*side)[i].qty = qty
	default:
		*side = slices.Insert(*side, i, level{price, qty})
	}
	for _, a := range s.diffs {
		a.note(id, ms, bid, price, qty)
	}
}

func (s *symbol) qtyAt(bid bool, price int64) int64 {
	side, _ := s.side(bid)
	for i := len(*side) - 1; i >= 0; i-- {
		if (*side)[i].price == price {
			return (*side)[i].qty
		}
	}
	return 0
}

// top returns up to n levels of a side, best first.
func (s *symbol) top(bid bool, n int) []level {
	side, _ := s.side(bid)
	out := make([]level, 0, min(n, len(*side)))
	for i := len(*side) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, (*side)[i])
	}
	return out
}

// tradeIndex returns the history index of trade id, or -1.
func (s *symbol) tradeIndex(id int64) int {
	first, ok := s.firstTrade()
	if !ok || id < first {
		return -1
	}
	i := id - first
	if i >= int64(s.trades.len()) {
		return -1
	}
	return int(i)
}

func (s *symbol) firstTrade() (int64, bool) {
	if s.trades.len() == 0 {
		return 0, false
	}
	return s.trades.at(0).id, true
}

func (s *symbol) firstAgg() (int64, bool) {
	if s.aggs.len() == 0 {
		return 0, false
	}
	return s.aggs.at(0).id, true
}

// tickerStats are the rolling statistics of the 24hr tickers, kept since
// the generator started (a simulation does not run for a day).
type tickerStats struct {
	open, high, low, last, lastQty int64
	vol                            int64
	quote                          float64
	first, lastID, n               int64
}

func (t *tickerStats) init(mid int64) {
	*t = tickerStats{open: mid, high: mid, low: mid, last: mid, first: -1, lastID: -1}
}

func (t *tickerStats) add(tr *tradeRec, quote float64) {
	if t.n == 0 {
		t.open, t.high, t.low, t.first = tr.price, tr.price, tr.price, tr.id
	}
	t.high = max(t.high, tr.price)
	t.low = min(t.low, tr.price)
	t.last, t.lastQty, t.lastID = tr.price, tr.qty, tr.id
	t.vol += tr.qty
	t.quote += quote
	t.n++
}

// quoteOf is a trade's quote volume: price times quantity in quote units on
// spot and USD-M; on COIN-M, the base-asset volume of the contracts.
func (s *symbol) quoteOf(price, qty int64) float64 {
	p := float64(price) / float64(pow10(s.pd))
	if s.contract > 0 {
		return float64(qty*s.contract) / p
	}
	return p * float64(qty) / float64(pow10(s.qd))
}

// hashNoise is a deterministic value in [-1, 1) for a symbol and instant,
// so periodic frames vary without drawing from the generator's random
// stream.
func hashNoise(name string, ms int64) float64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	var b [8]byte
	for i := range b {
		b[i] = byte(ms >> (8 * i))
	}
	h.Write(b[:])
	return float64(h.Sum64()%2_000_000)/1_000_000 - 1
}
