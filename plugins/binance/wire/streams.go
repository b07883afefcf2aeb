package wire

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/valyala/fastjson"
)

// One parser per event type. Each reads keys by exact name through a
// fields reader, which keeps the first error, and checks it once before
// building its point; the comment on a parser lists the keys that differ
// only by case from a key it reads, the traps that a case-insensitive
// decoder falls into.

// trade: t trade id vs T trade time; m buyer-is-maker vs M (ignore).
func (p *Parser) trade(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventTrade
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.optTime("E")
	id := f.int("t")
	ev.ID = id
	price := f.decimal("p")
	qty := f.decimal("q")
	t := f.time("T")
	side := f.takerSide()
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasTrades,
		Tags:        p.sideTags(sym, side),
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(price)},
			{Key: "quantity", Value: sluice.Float(qty)},
			{Key: "trade_id", Value: sluice.Int(id)},
		},
		Time:     t,
		Received: received,
	}), nil
}

// aggTrade: a aggregate id vs A (absent); T trade time vs t (absent); m vs M.
func (p *Parser) aggTrade(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventAggTrade
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.optTime("E")
	ev.ID = f.int("a")
	ev.FirstTradeID = f.int("f")
	ev.LastTradeID = f.int("l")
	return p.appendAggTrade(&f, sym, ev.ID, ev.FirstTradeID, ev.LastTradeID, received, dst)
}

// appendAggTrade builds an agg_trades point from the keys the stream and
// the REST /aggTrades body share, once f's earlier reads have succeeded.
func (p *Parser) appendAggTrade(f *fields, sym string, id, first, last int64, received time.Time, dst []sluice.Point) ([]sluice.Point, error) {
	price := f.decimal("p")
	qty := f.decimal("q")
	t := f.time("T")
	side := f.takerSide()
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasAggTrades,
		Tags:        p.sideTags(sym, side),
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(price)},
			{Key: "quantity", Value: sluice.Float(qty)},
			{Key: "agg_id", Value: sluice.Int(id)},
			{Key: "first_trade_id", Value: sluice.Int(first)},
			{Key: "last_trade_id", Value: sluice.Int(last)},
		},
		Time:     t,
		Received: received,
	}), nil
}

// kline, inside k: t open time vs T close time; v base volume vs V taker
// buy base volume; q quote volume vs Q taker buy quote volume; "i" is case
// sensitive itself (1m is a minute, 1M a month).
func (p *Parser) kline(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventKline
	f := fields{o: o}
	k := f.object("k")
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.optTime("E")
	f.o, f.in = k, "k."
	iv := f.str("i")
	if f.err == nil && len(iv) == 0 {
		f.fail(errors.New("i: empty interval"))
	}
	t := f.time("t")
	fs := f.decimalFields(klineKeys[:], 8)
	n := f.int("n")
	closed := f.bool("x")
	if f.err != nil {
		return dst, f.err
	}
	fs = append(fs,
		sluice.Field{Key: "trades", Value: sluice.Int(n)},
		sluice.Field{Key: "closed", Value: sluice.Bool(closed)})
	return append(dst, sluice.Point{
		Measurement: market.MeasCandles,
		Tags:        tagsInterval(p.market, sym, p.intern(iv)),
		Fields:      fs,
		Time:        t,
		Received:    received,
	}), nil
}

// bookTicker: b bid price vs B bid quantity; a ask price vs A ask
// quantity; E event time vs e. Spot sends neither "e" nor "E".
func (p *Parser) bookTicker(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventBookTicker
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.optTime("E")
	ev.ID = f.int("u")
	bid, bidQty := f.decimal("b"), f.decimal("B")
	ask, askQty := f.decimal("a"), f.decimal("A")
	if f.err != nil {
		return dst, f.err
	}
	t := ev.Time
	if t.IsZero() {
		t = received
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasBookTicker,
		Tags:        tags3(p.market, sym),
		Fields: []sluice.Field{
			{Key: "bid_price", Value: sluice.Float(bid)},
			{Key: "bid_qty", Value: sluice.Float(bidQty)},
			{Key: "ask_price", Value: sluice.Float(ask)},
			{Key: "ask_qty", Value: sluice.Float(askQty)},
			{Key: "update_id", Value: sluice.Int(ev.ID)},
		},
		Time:     t,
		Received: received,
	}), nil
}

// keyName maps a Binance JSON key to the field name it becomes.
type keyName struct{ key, name string }

var klineKeys = [...]keyName{
	{"o", "open"}, {"h", "high"}, {"l", "low"}, {"c", "close"},
	{"v", "volume"}, {"q", "quote_volume"},
}

var markPriceKeys = [...]keyName{{"p", "mark_price"}}

var markPriceOptKeys = [...]keyName{
	{"i", "index_price"}, {"P", "estimated_settle_price"}, {"r", "funding_rate"},
}

var forceOrderKeys = [...]keyName{
	{"p", "price"}, {"q", "quantity"}, {"ap", "average_price"},
	{"l", "last_filled_quantity"}, {"z", "filled_quantity"},
}

// forceOrderStrings are the liquidation's string fields.
var forceOrderStrings = [...]keyName{
	{"X", "status"}, {"o", "order_type"}, {"f", "time_in_force"},
}

// tickerCore are the keys the full and the mini ticker share.
var tickerCore = [...]keyName{
	{"c", "last"}, {"o", "open"}, {"h", "high"}, {"l", "low"},
	{"v", "volume"}, {"q", "quote_volume"},
}

// tickerExtra are the full ticker's decimal keys, each sent by some
// markets only (futures have no bid/ask, prev close or spot's x).
var tickerExtra = [...]keyName{
	{"p", "price_change"}, {"P", "price_change_percent"},
	{"w", "weighted_avg_price"}, {"x", "prev_close"}, {"Q", "last_qty"},
	{"b", "bid_price"}, {"B", "bid_qty"}, {"a", "ask_price"}, {"A", "ask_qty"},
}

// 24hrTicker: p change vs P percent; q quote volume vs Q last quantity;
// b/B, a/A as in bookTicker; E event time vs e.
func (p *Parser) ticker(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventTicker
	return p.appendTicker(o, received, dst, ev, true)
}

func (p *Parser) miniTicker(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventMiniTicker
	return p.appendTicker(o, received, dst, ev, false)
}

func (p *Parser) appendTicker(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event, full bool) ([]sluice.Point, error) {
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.time("E")
	size := len(tickerCore)
	if full {
		size += len(tickerExtra) + 1
	}
	fs := f.decimalFields(tickerCore[:], size)
	if full {
		fs = f.appendOptDecimals(fs, tickerExtra[:])
		if n, ok := f.optInt("n"); ok {
			fs = append(fs, sluice.Field{Key: "trades", Value: sluice.Int(n)})
		}
	}
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasTicker,
		Tags:        tags3(p.market, sym),
		Fields:      fs,
		Time:        ev.Time,
		Received:    received,
	}), nil
}

// spotPartialDepth: {"lastUpdateId","bids","asks"}, no symbol and no time.
func (p *Parser) spotPartialDepth(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventPartialDepth
	sym, err := p.streamSymbol(ev.Stream)
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	f := fields{o: o}
	ev.ID = f.int("lastUpdateId")
	p.bids = f.levels("bids", p.bids[:0])
	p.asks = f.levels("asks", p.asks[:0])
	if f.err != nil {
		return dst, f.err
	}
	sortBestFirst(p.bids, p.asks)
	dst = market.AppendBookSide(dst, p.market, sym, market.SideBid, p.bids, false, received, received)
	return market.AppendBookSide(dst, p.market, sym, market.SideAsk, p.asks, false, received, received), nil
}

// futuresPartialDepth: a depthUpdate-shaped frame on a @depth<levels>
// stream; E event time vs e, b bids vs B (absent), a asks vs A (absent).
func (p *Parser) futuresPartialDepth(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventPartialDepth
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.time("E")
	ev.ID = f.int("u")
	p.bids = f.levels("b", p.bids[:0])
	p.asks = f.levels("a", p.asks[:0])
	if f.err != nil {
		return dst, f.err
	}
	sortBestFirst(p.bids, p.asks)
	dst = market.AppendBookSide(dst, p.market, sym, market.SideBid, p.bids, false, ev.Time, received)
	return market.AppendBookSide(dst, p.market, sym, market.SideAsk, p.asks, false, ev.Time, received), nil
}

// sortBestFirst orders partial-depth levels best first, which `level` 0
// promises. Binance sends them in that order, but the documentation's own
// USD-M example lists bids ascending, so the order is not trusted.
func sortBestFirst(bids, asks []market.Level) {
	slices.SortStableFunc(bids, func(x, y market.Level) int { return cmp.Compare(y.Key, x.Key) })
	slices.SortStableFunc(asks, func(x, y market.Level) int { return cmp.Compare(x.Key, y.Key) })
}

// depthUpdate (diff depth): U first id vs u final id; b/a levels; E vs e.
func (p *Parser) depthUpdate(o *fastjson.Object, ev *Event) error {
	ev.Kind = EventDepthUpdate
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	d := &ev.Depth
	d.Symbol = sym
	d.EventTime = f.time("E")
	ev.Time = d.EventTime
	d.FirstID = f.int("U")
	d.FinalID = f.int("u")
	if f.err == nil && d.FirstID > d.FinalID {
		f.fail(fmt.Errorf("U %d after u %d", d.FirstID, d.FinalID))
	}
	if f.err == nil {
		ev.ID = d.FinalID
	}
	if p.market.Futures() {
		d.PrevFinalID = f.int("pu")
	}
	p.bids = f.levels("b", p.bids[:0])
	p.asks = f.levels("a", p.asks[:0])
	if f.err != nil {
		return f.err
	}
	d.Bids, d.Asks = p.bids, p.asks
	return nil
}

// markPriceUpdate: p mark price vs P estimated settle price; T next
// funding time vs t (absent); i index price; E vs e. Older frames lack i,
// P, r or T, and futures add undocumented keys (ap, st): both are fine.
func (p *Parser) markPrice(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventMarkPrice
	f := fields{o: o}
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	ev.Time = f.time("E")
	fs := f.decimalFields(markPriceKeys[:], 1+len(markPriceOptKeys)+1)
	fs = f.appendOptDecimals(fs, markPriceOptKeys[:])
	if next, ok := f.optInt("T"); ok {
		fs = append(fs, sluice.Field{Key: "next_funding_time", Value: sluice.Int(next)})
	}
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasMarkPrice,
		Tags:        tags3(p.market, sym),
		Fields:      fs,
		Time:        ev.Time,
		Received:    received,
	}), nil
}

// forceOrder, inside o: S side vs s symbol; o order type (and o the outer
// object); q original quantity vs Q (absent); T trade time.
func (p *Parser) forceOrder(outer *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventForceOrder
	f := fields{o: outer}
	ev.Time = f.optTime("E")
	f.o, f.in = f.object("o"), "o."
	sym := p.symbol(&f, "s")
	ev.Symbol = sym
	var side string
	switch s := f.str("S"); {
	case string(s) == "BUY":
		side = market.SideBuy
	case string(s) == "SELL":
		side = market.SideSell
	case f.err == nil:
		f.fail(fmt.Errorf("S: side %q", s))
	}
	t := f.time("T")
	fs := f.decimalFields(forceOrderKeys[:], 8)
	for _, k := range forceOrderStrings {
		if s := f.str(k.key); f.err == nil {
			fs = append(fs, sluice.Field{Key: k.name, Value: sluice.String(p.intern(s))})
		}
	}
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasLiquidations,
		Tags:        p.sideTags(sym, side),
		Fields:      fs,
		Time:        t,
		Received:    received,
	}), nil
}

// indexPriceUpdate (COIN-M): the pair in "i" is the symbol tag.
func (p *Parser) indexPrice(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventIndexPrice
	f := fields{o: o}
	sym := p.symbol(&f, "i")
	ev.Symbol = sym
	ev.Time = f.time("E")
	x := f.decimal("p")
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasIndexPrice,
		Tags:        tags3(p.market, sym),
		Fields:      []sluice.Field{{Key: "index_price", Value: sluice.Float(x)}},
		Time:        ev.Time,
		Received:    received,
	}), nil
}
