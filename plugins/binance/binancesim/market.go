package binancesim

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// venue is one market: its symbols, generator, subscriptions and limits.
// Everything in it is guarded by Sim.mu.
type venue struct {
	sim  *Sim
	m    market.Market
	lim  limits
	syms []*symbol
	by   map[string]*symbol // upper-case name
	cum  []float64          // cumulative symbol weights
	rng  *rand.Rand

	updateID     int64 // futures: the venue-wide update id counter
	depthPeriods []int64
	suffixes     map[string]bool // per-symbol stream suffixes offered
	global       map[string]bool // all-market streams offered

	subs   map[string]*streamSubs
	stalls map[string]time.Time // stream -> wall time its frames resume

	epochMs int64
	nextUs  int64   // virtual time of the next engine event
	meanUs  float64 // mean gap between engine events
	tasks   []*task

	replay *Replay
	act    Activity
}

// task is a periodic job on the virtual clock, run at every multiple of
// its period.
type task struct {
	period int64 // ms
	next   int64 // ms
	run    func(ms int64)
}

// streamSubs are the connections subscribed to one stream.
type streamSubs struct {
	conns map[*conn]struct{}
}

func newMarket(s *Sim, m market.Market, names []string, rng *rand.Rand) *venue {
	mk := &venue{
		sim:    s,
		m:      m,
		lim:    s.opts.limits(m),
		by:     map[string]*symbol{},
		rng:    rng,
		subs:   map[string]*streamSubs{},
		stalls: map[string]time.Time{},
	}
	mk.depthPeriods = spotDepthPeriods
	if m != market.Spot {
		mk.depthPeriods = futuresDepthPeriods
		mk.updateID = 100_000_000_000 + rng.Int64N(900_000_000_000)
	}
	mk.suffixes, mk.global = validStreams(m)
	total := 0.0
	for i, n := range names {
		if _, dup := mk.by[n]; dup || n == "" {
			continue
		}
		sym := newSymbol(mk, n, i)
		mk.syms = append(mk.syms, sym)
		mk.by[n] = sym
		total += math.Pow(float64(len(mk.syms)), -s.opts.skew()) // Zipf: the first symbol is busiest
		mk.cum = append(mk.cum, total)
	}
	return mk
}

// start fixes the epoch and schedules the first event and tasks.
func (mk *venue) start(epochUs int64) {
	mk.epochMs = epochUs / 1000
	mk.setTradeRate(mk.sim.opts.tradeRate())
	mk.nextUs = epochUs + mk.gap()
	for i, p := range mk.depthPeriods {
		mk.every(p, func(ms int64) { mk.flushDepth(i, ms) })
	}
	if mk.m == market.Spot {
		mk.every(1000, mk.pushKlines)
		mk.every(1000, mk.pushTickers)
	} else {
		mk.every(250, mk.pushKlines)
		mk.every(500, mk.pushTickers)
		mk.every(1000, func(ms int64) { mk.pushMarkPrices(ms, true) })
		mk.every(3000, func(ms int64) { mk.pushMarkPrices(ms, false) })
	}
}

// setTradeRate sets the mean gap between engine events for a trade rate.
func (mk *venue) setTradeRate(rate float64) {
	mk.meanUs = 1e6 / (rate / (mk.sim.opts.takerShare() * tradesPerTkr))
}

func (mk *venue) every(period int64, run func(int64)) {
	mk.tasks = append(mk.tasks, &task{period: period, next: (mk.epochMs/period + 1) * period, run: run})
}

func (mk *venue) gap() int64 { return int64(mk.rng.ExpFloat64() * mk.meanUs) }

// advance runs the engine events and periodic tasks up to virtual time
// toUs, in time order; a task due at the same instant as an event runs
// first, so a window [t, t+period) never holds an event at its end.
func (mk *venue) advance(toUs int64) {
	if len(mk.syms) == 0 {
		return
	}
	for {
		var due *task
		for _, t := range mk.tasks {
			if due == nil || t.next < due.next {
				due = t
			}
		}
		if due != nil && due.next*1000 <= mk.nextUs {
			if due.next*1000 > toUs {
				return
			}
			due.run(due.next)
			due.next += due.period
			continue
		}
		if mk.nextUs > toUs {
			return
		}
		mk.engineEvent(mk.nextUs)
		mk.nextUs += mk.gap()
	}
}

func (mk *venue) pick() *symbol {
	x := mk.rng.Float64() * mk.cum[len(mk.cum)-1]
	i := sort.SearchFloat64s(mk.cum, x)
	return mk.syms[min(i, len(mk.syms)-1)]
}

// nextID returns the update id of a new engine event on s.
func (mk *venue) nextID(s *symbol, ms int64) int64 {
	if mk.m == market.Spot {
		s.lastID++
	} else {
		// Futures ids are venue-wide: other symbols' updates fall between
		// two of this symbol's.
		mk.updateID += 1 + mk.rng.Int64N(3)
		s.lastID = mk.updateID
	}
	s.lastMs = ms
	return s.lastID
}

func (mk *venue) engineEvent(us int64) {
	s := mk.pick()
	ms := us / 1000
	mk.act.Events++
	taker := mk.sim.opts.takerShare()
	// Makers and cancels keep the default's 40:25 split of the rest.
	maker := pMaker
	if taker != pTaker {
		maker = (1 - taker) * pMaker / (1 - pTaker)
	}
	switch r := mk.rng.Float64(); {
	case r < taker:
		mk.taker(s, ms)
	case r < taker+maker:
		mk.maker(s, ms)
	default:
		mk.cancel(s, ms)
	}
	mk.maybeBookTicker(s)
}

// taker matches a market order against the best levels of one side: one
// trade per resting order filled, one aggregate trade per price level.
func (mk *venue) taker(s *symbol, ms int64) {
	rng := mk.rng
	buy := rng.IntN(2) == 0
	bidSide := !buy // a buyer takes asks
	side, _ := s.side(bidSide)
	id := mk.nextID(s, ms)
	want := max(1, int64(float64((*side)[len(*side)-1].qty)*(0.15+rng.ExpFloat64()*0.9)))
	var filled, notional, lastFill, lastPrice int64
	for lv := 0; want > 0 && len(*side) > 1 && lv < 4; lv++ {
		l := (*side)[len(*side)-1]
		fill := min(want, l.qty)
		k := min(1+rng.Int64N(3), fill)
		agg := aggRec{id: s.nextAgg, first: s.nextTrade, price: l.price, qty: fill, ms: ms, buyerMaker: !buy}
		s.nextAgg++
		left := fill
		for j := int64(0); j < k; j++ {
			q := fill / k
			if j == k-1 {
				q = left
			}
			left -= q
			tr := tradeRec{id: s.nextTrade, price: l.price, qty: q, ms: ms, buyerMaker: !buy}
			s.nextTrade++
			mk.recordTrade(s, &tr)
		}
		agg.last = s.nextTrade - 1
		mk.recordAgg(s, &agg)
		s.setLevel(id, ms, bidSide, l.price, l.qty-fill)
		want -= fill
		filled += fill
		notional += fill * l.price
		lastFill, lastPrice = fill, l.price
	}
	mk.refill(s, id, ms, bidSide)
	if mk.m != market.Spot && filled > 0 && rng.Float64() < pLiquidation {
		// A liquidation's limit price lies a few ticks past its fills.
		limit := lastPrice - 3
		if buy {
			limit = lastPrice + 3
		}
		mk.liquidation(s, &forceOrder{sell: !buy, qty: filled, price: limit,
			avg: notional / filled, lastFilled: lastFill, ms: ms})
	}
}

// refill keeps a side at least minLevels deep by adding levels behind its
// worst price.
func (mk *venue) refill(s *symbol, id, ms int64, bid bool) {
	side, _ := s.side(bid)
	for len(*side) < minLevels {
		worst := (*side)[0].price
		p := worst + 1 + mk.rng.Int64N(3)
		if bid {
			p = worst - 1 - mk.rng.Int64N(3)
			if p < 1 {
				return
			}
		}
		s.setLevel(id, ms, bid, p, s.makerQty(mk.rng))
	}
}

// maker rests a limit order: mostly near the top, sometimes inside the
// spread.
func (mk *venue) maker(s *symbol, ms int64) {
	rng := mk.rng
	bid := rng.IntN(2) == 0
	bb, ba := s.bestBid().price, s.bestAsk().price
	var price int64
	if spread := ba - bb; spread > 1 && rng.Float64() < 0.25 {
		off := 1 + rng.Int64N(spread-1)
		price = ba - off
		if bid {
			price = bb + off
		}
	} else {
		d := int64(rng.ExpFloat64() * 8)
		price = ba + d
		if bid {
			price = bb - d
		}
	}
	qty := s.makerQty(rng)
	if price < 1 {
		return
	}
	id := mk.nextID(s, ms)
	s.setLevel(id, ms, bid, price, s.qtyAt(bid, price)+qty)
	side, _ := s.side(bid)
	if len(*side) > maxLevels {
		s.setLevel(id, ms, bid, (*side)[0].price, 0)
	}
}

// cancel shrinks or removes one of the top levels of a side.
func (mk *venue) cancel(s *symbol, ms int64) {
	rng := mk.rng
	bid := rng.IntN(2) == 0
	side, _ := s.side(bid)
	n := len(*side)
	l := (*side)[n-1-rng.IntN(min(n, 25))]
	q := l.qty - int64(float64(l.qty)*rng.Float64()*0.8)
	if n > minLevels && rng.Float64() < 0.5 {
		q = 0
	}
	id := mk.nextID(s, ms)
	s.setLevel(id, ms, bid, l.price, max(q, 0))
}

func (mk *venue) recordTrade(s *symbol, tr *tradeRec) {
	s.trades.push(mk.sim.opts.historyCap(), *tr)
	mk.act.Trades++
	quote := s.quoteOf(tr.price, tr.qty)
	s.stats.add(tr, quote)
	for _, k := range s.klines {
		k.add(s, tr, quote)
	}
	if ss := mk.active(s.names.trade); ss != nil {
		ss.send(s.names.trade, mk.tradeFrame(s, tr))
	}
}

func (mk *venue) recordAgg(s *symbol, a *aggRec) {
	s.aggs.push(mk.sim.opts.historyCap(), *a)
	if ss := mk.active(s.names.aggTrade); ss != nil {
		ss.send(s.names.aggTrade, mk.aggTradeFrame(s, a))
	}
}

// maybeBookTicker sends a bookTicker when the best bid or ask changed: its
// u is the update id that made the change, so a book at that id agrees
// with it.
func (mk *venue) maybeBookTicker(s *symbol) {
	bid, ask := s.bestBid(), s.bestAsk()
	bt := [4]int64{bid.price, bid.qty, ask.price, ask.qty}
	if bt == s.bt {
		return
	}
	s.bt = bt
	mk.act.BookTickers++
	var frame []byte
	for _, name := range []string{s.names.bookTicker, "!bookTicker"} {
		if name == "!bookTicker" && mk.m == market.Spot {
			continue
		}
		if ss := mk.active(name); ss != nil {
			if frame == nil {
				frame = mk.bookTickerFrame(s)
			}
			ss.send(name, frame)
		}
	}
}

// liquidation reports a forced order, at most one a second per symbol as
// Binance's snapshot stream does.
func (mk *venue) liquidation(s *symbol, f *forceOrder) {
	if f.price < 1 || f.ms-s.lastForceMs < 1000 && s.lastForceMs != 0 {
		return
	}
	s.lastForceMs = f.ms
	var frame []byte
	for _, name := range []string{s.names.forceOrder, "!forceOrder@arr"} {
		if ss := mk.active(name); ss != nil {
			if frame == nil {
				frame = mk.forceOrderFrame(s, f)
			}
			ss.send(name, frame)
		}
	}
}

// flushDepth ends the window of depth period i: every symbol's partial
// depth streams get the top of the book, and a symbol whose book changed
// gets its diff event.
func (mk *venue) flushDepth(i int, ms int64) {
	for _, s := range mk.syms {
		a := s.diffs[i]
		for _, pn := range s.names.partial[i] {
			if ss := mk.active(pn.name); ss != nil {
				ss.send(pn.name, mk.partialFrame(s, a, pn.levels, ms))
			}
		}
		if a.first == 0 {
			continue
		}
		if i == 0 {
			mk.act.DepthEvents++
			mk.act.DepthLevels += int64(len(a.bids) + len(a.asks))
		}
		if a.gap {
			a.gap = false // InjectDepthGap: this event is lost
		} else {
			var frame []byte
			for _, name := range s.names.depth[i] {
				if ss := mk.active(name); ss != nil {
					if frame == nil {
						frame = mk.diffFrame(s, a, ms)
					}
					ss.send(name, frame)
				}
			}
		}
		a.reset()
	}
}

// pushKlines sends every subscribed candle; a candle that ended since the
// last push is sent once more, closed (x: true), before its successor.
func (mk *venue) pushKlines(ms int64) {
	for _, s := range mk.syms {
		for iv, k := range s.klines {
			k.roll(ms)
			name := s.names.kline[iv]
			if ss := mk.active(name); ss != nil {
				if k.closed != nil {
					ss.send(name, mk.klineFrame(s, k.closed, ms, true))
				}
				ss.send(name, mk.klineFrame(s, k, ms, false))
			}
			k.closed = nil
		}
	}
}

func (mk *venue) pushTickers(ms int64) {
	var minis, fulls [][]byte
	arrMini := mk.active("!miniTicker@arr") != nil
	arrFull := mk.m != market.Spot && mk.active("!ticker@arr") != nil
	for _, s := range mk.syms {
		if ss := mk.active(s.names.ticker); ss != nil || arrFull {
			f := mk.tickerFrame(s, ms, false)
			if ss != nil {
				ss.send(s.names.ticker, f)
			}
			fulls = append(fulls, f)
		}
		if ss := mk.active(s.names.miniTicker); ss != nil || arrMini {
			f := mk.tickerFrame(s, ms, true)
			if ss != nil {
				ss.send(s.names.miniTicker, f)
			}
			minis = append(minis, f)
		}
	}
	if arrMini {
		mk.active("!miniTicker@arr").send("!miniTicker@arr", joinArray(minis))
	}
	if arrFull {
		mk.active("!ticker@arr").send("!ticker@arr", joinArray(fulls))
	}
}

func (mk *venue) pushMarkPrices(ms int64, oneSecond bool) {
	arrName := "!markPrice@arr"
	if oneSecond {
		arrName += "@1s"
	}
	arr := mk.active(arrName)
	var all [][]byte
	for _, s := range mk.syms {
		name := s.names.markPrice
		if oneSecond {
			name = s.names.markPrice1s
		}
		if ss := mk.active(name); ss != nil || arr != nil {
			f := mk.markPriceFrame(s, ms)
			if ss != nil {
				ss.send(name, f)
			}
			all = append(all, f)
		}
	}
	if arr != nil {
		arr.send(arrName, joinArray(all))
	}
}

func joinArray(items [][]byte) []byte {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// active returns the subscribers of a stream that should get a frame now,
// or nil: nobody listens, or the stream is stalled.
func (mk *venue) active(name string) *streamSubs {
	ss := mk.subs[name]
	if ss == nil || len(ss.conns) == 0 {
		return nil
	}
	if until, ok := mk.stalls[name]; ok {
		if time.Now().Before(until) {
			return nil
		}
		delete(mk.stalls, name)
	}
	return ss
}

// send queues one stream's payload on every subscriber, wrapped in the
// combined-stream envelope for those that want it. The wrapped frame is
// built once.
func (ss *streamSubs) send(name string, payload []byte) {
	var wrapped []byte
	for c := range ss.conns {
		if c.combined.Load() {
			if wrapped == nil {
				wrapped = wrap(name, payload)
			}
			c.send(wrapped)
		} else {
			c.send(payload)
		}
	}
}

func wrap(stream string, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+len(stream)+22)
	b = append(b, `{"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","data":`...)
	b = append(b, payload...)
	return append(b, '}')
}

// subscribe adds c to a stream. A kline stream starts its candle from the
// trade history, so the first frame already aggregates the interval.
func (mk *venue) subscribe(c *conn, name string, nowMs int64) {
	ss := mk.subs[name]
	if ss == nil {
		ss = &streamSubs{conns: map[*conn]struct{}{}}
		mk.subs[name] = ss
	}
	ss.conns[c] = struct{}{}
	if sym, iv, ok := mk.klineStream(name); ok {
		sym.klineFor(iv, nowMs)
	}
}

func (mk *venue) unsubscribe(c *conn, name string) {
	if ss := mk.subs[name]; ss != nil {
		delete(ss.conns, c)
		if len(ss.conns) == 0 {
			delete(mk.subs, name)
		}
	}
}

// klineStream resolves a kline stream name to its symbol and interval.
func (mk *venue) klineStream(name string) (*symbol, string, bool) {
	for _, s := range mk.syms {
		if len(name) > len(s.lower)+7 && name[:len(s.lower)] == s.lower && name[len(s.lower):len(s.lower)+7] == "@kline_" {
			iv := name[len(s.lower)+7:]
			if _, ok := intervalMs[iv]; ok {
				return s, iv, true
			}
		}
	}
	return nil, "", false
}
