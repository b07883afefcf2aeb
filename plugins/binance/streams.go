package binance

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/valyala/fastjson"
)

// One parser per event type. Each reads keys by exact name; the comment on
// a parser lists the keys that differ only by case from a key it reads, the
// traps that a case-insensitive decoder falls into.

// trade: t trade id vs T trade time; m buyer-is-maker vs M (ignore).
func (p *Parser) trade(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventTrade
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = optTime(o, "E"); err != nil {
		return dst, err
	}
	id, err := getInt(o, "t")
	if err != nil {
		return dst, err
	}
	ev.ID = id
	price, err := getDecimal(o, "p")
	if err != nil {
		return dst, err
	}
	qty, err := getDecimal(o, "q")
	if err != nil {
		return dst, err
	}
	t, err := getTime(o, "T")
	if err != nil {
		return dst, err
	}
	side, err := takerSide(o)
	if err != nil {
		return dst, err
	}
	return append(dst, sluice.Point{
		Measurement: MeasTrades,
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
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = optTime(o, "E"); err != nil {
		return dst, err
	}
	if ev.ID, err = getInt(o, "a"); err != nil {
		return dst, err
	}
	if ev.FirstTradeID, err = getInt(o, "f"); err != nil {
		return dst, err
	}
	if ev.LastTradeID, err = getInt(o, "l"); err != nil {
		return dst, err
	}
	return p.appendAggTrade(o, sym, ev.ID, ev.FirstTradeID, ev.LastTradeID, received, dst)
}

// appendAggTrade builds an agg_trades point from the keys the stream and
// the REST /aggTrades body share.
func (p *Parser) appendAggTrade(o *fastjson.Object, sym string, id, first, last int64, received time.Time, dst []sluice.Point) ([]sluice.Point, error) {
	price, err := getDecimal(o, "p")
	if err != nil {
		return dst, err
	}
	qty, err := getDecimal(o, "q")
	if err != nil {
		return dst, err
	}
	t, err := getTime(o, "T")
	if err != nil {
		return dst, err
	}
	side, err := takerSide(o)
	if err != nil {
		return dst, err
	}
	return append(dst, sluice.Point{
		Measurement: MeasAggTrades,
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

// takerSide reads "m" (the buyer is the maker), never "M".
func takerSide(o *fastjson.Object) (string, error) {
	maker, err := getBool(o, "m")
	if err != nil {
		return "", err
	}
	if maker {
		return SideSell, nil
	}
	return SideBuy, nil
}

// kline, inside k: t open time vs T close time; v base volume vs V taker
// buy base volume; q quote volume vs Q taker buy quote volume; "i" is case
// sensitive itself (1m is a minute, 1M a month).
func (p *Parser) kline(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventKline
	k, err := getObject(o, "k")
	if err != nil {
		return dst, err
	}
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = optTime(o, "E"); err != nil {
		return dst, err
	}
	iv, err := getString(k, "i")
	if err != nil {
		return dst, err
	}
	if len(iv) == 0 {
		return dst, errors.New("k.i: empty interval")
	}
	interval := p.intern(iv)
	t, err := getTime(k, "t")
	if err != nil {
		return dst, err
	}
	fields := make([]sluice.Field, 0, 8)
	if fields, err = appendDecimals(fields, k, klineKeys[:]); err != nil {
		return dst, fmt.Errorf("k.%w", err)
	}
	n, err := getInt(k, "n")
	if err != nil {
		return dst, fmt.Errorf("k.%w", err)
	}
	closed, err := getBool(k, "x")
	if err != nil {
		return dst, fmt.Errorf("k.%w", err)
	}
	fields = append(fields,
		sluice.Field{Key: "trades", Value: sluice.Int(n)},
		sluice.Field{Key: "closed", Value: sluice.Bool(closed)})
	return append(dst, sluice.Point{
		Measurement: MeasCandles,
		Tags:        tagsInterval(p.market, sym, interval),
		Fields:      fields,
		Time:        t,
		Received:    received,
	}), nil
}

// bookTicker: b bid price vs B bid quantity; a ask price vs A ask
// quantity; E event time vs e. Spot sends neither "e" nor "E".
func (p *Parser) bookTicker(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventBookTicker
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = optTime(o, "E"); err != nil {
		return dst, err
	}
	if ev.ID, err = getInt(o, "u"); err != nil {
		return dst, err
	}
	var x [4]float64
	for i, key := range [...]string{"b", "B", "a", "A"} {
		if x[i], err = getDecimal(o, key); err != nil {
			return dst, err
		}
	}
	t := ev.Time
	if t.IsZero() {
		t = received
	}
	return append(dst, sluice.Point{
		Measurement: MeasBookTicker,
		Tags:        tags3(p.market, sym),
		Fields: []sluice.Field{
			{Key: "bid_price", Value: sluice.Float(x[0])},
			{Key: "bid_qty", Value: sluice.Float(x[1])},
			{Key: "ask_price", Value: sluice.Float(x[2])},
			{Key: "ask_qty", Value: sluice.Float(x[3])},
			{Key: "update_id", Value: sluice.Int(ev.ID)},
		},
		Time:     t,
		Received: received,
	}), nil
}

// keyName maps a Binance JSON key to the field name it becomes.
type keyName struct{ key, name string }

// appendDecimals appends a float field for each key, all of which must be
// present.
func appendDecimals(fields []sluice.Field, o *fastjson.Object, keys []keyName) ([]sluice.Field, error) {
	for _, f := range keys {
		x, err := getDecimal(o, f.key)
		if err != nil {
			return fields, err
		}
		fields = append(fields, sluice.Field{Key: f.name, Value: sluice.Float(x)})
	}
	return fields, nil
}

// appendOptDecimals appends a float field for each key that is present.
func appendOptDecimals(fields []sluice.Field, o *fastjson.Object, keys []keyName) ([]sluice.Field, error) {
	for _, f := range keys {
		x, ok, err := optDecimal(o, f.key)
		if err != nil {
			return fields, err
		}
		if ok {
			fields = append(fields, sluice.Field{Key: f.name, Value: sluice.Float(x)})
		}
	}
	return fields, nil
}

var klineKeys = [...]keyName{
	{"o", "open"}, {"h", "high"}, {"l", "low"}, {"c", "close"},
	{"v", "volume"}, {"q", "quote_volume"},
}

var markPriceOptKeys = [...]keyName{
	{"i", "index_price"}, {"P", "estimated_settle_price"}, {"r", "funding_rate"},
}

var forceOrderKeys = [...]keyName{
	{"p", "price"}, {"q", "quantity"}, {"ap", "average_price"},
	{"l", "last_filled_quantity"}, {"z", "filled_quantity"},
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
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = getTime(o, "E"); err != nil {
		return dst, err
	}
	size := len(tickerCore)
	if full {
		size += len(tickerExtra) + 1
	}
	fields := make([]sluice.Field, 0, size)
	if fields, err = appendDecimals(fields, o, tickerCore[:]); err != nil {
		return dst, err
	}
	if full {
		if fields, err = appendOptDecimals(fields, o, tickerExtra[:]); err != nil {
			return dst, err
		}
		n, ok, err := optInt(o, "n")
		if err != nil {
			return dst, err
		}
		if ok {
			fields = append(fields, sluice.Field{Key: "trades", Value: sluice.Int(n)})
		}
	}
	return append(dst, sluice.Point{
		Measurement: MeasTicker,
		Tags:        tags3(p.market, sym),
		Fields:      fields,
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
	if ev.ID, err = getInt(o, "lastUpdateId"); err != nil {
		return dst, err
	}
	if p.bids, err = getLevels(o, "bids", p.bids[:0]); err != nil {
		return dst, err
	}
	if p.asks, err = getLevels(o, "asks", p.asks[:0]); err != nil {
		return dst, err
	}
	sortBestFirst(p.bids, p.asks)
	dst = appendBookSide(dst, p.market, sym, SideBid, p.bids, false, received, received)
	return appendBookSide(dst, p.market, sym, SideAsk, p.asks, false, received, received), nil
}

// futuresPartialDepth: a depthUpdate-shaped frame on a @depth<levels>
// stream; E event time vs e, b bids vs B (absent), a asks vs A (absent).
func (p *Parser) futuresPartialDepth(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventPartialDepth
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = getTime(o, "E"); err != nil {
		return dst, err
	}
	if ev.ID, err = getInt(o, "u"); err != nil {
		return dst, err
	}
	if p.bids, err = getLevels(o, "b", p.bids[:0]); err != nil {
		return dst, err
	}
	if p.asks, err = getLevels(o, "a", p.asks[:0]); err != nil {
		return dst, err
	}
	sortBestFirst(p.bids, p.asks)
	dst = appendBookSide(dst, p.market, sym, SideBid, p.bids, false, ev.Time, received)
	return appendBookSide(dst, p.market, sym, SideAsk, p.asks, false, ev.Time, received), nil
}

// sortBestFirst orders partial-depth levels best first, which `level` 0
// promises. Binance sends them in that order, but the documentation's own
// USD-M example lists bids ascending, so the order is not trusted.
func sortBestFirst(bids, asks []Level) {
	slices.SortStableFunc(bids, func(x, y Level) int { return cmp.Compare(y.Key, x.Key) })
	slices.SortStableFunc(asks, func(x, y Level) int { return cmp.Compare(x.Key, y.Key) })
}

// depthUpdate (diff depth): U first id vs u final id; b/a levels; E vs e.
func (p *Parser) depthUpdate(o *fastjson.Object, ev *Event) error {
	ev.Kind = EventDepthUpdate
	sym, err := p.symbol(o, "s")
	if err != nil {
		return err
	}
	ev.Symbol = sym
	d := &ev.Depth
	d.Symbol = sym
	if d.EventTime, err = getTime(o, "E"); err != nil {
		return err
	}
	ev.Time = d.EventTime
	if d.FirstID, err = getInt(o, "U"); err != nil {
		return err
	}
	if d.FinalID, err = getInt(o, "u"); err != nil {
		return err
	}
	if d.FirstID > d.FinalID {
		return fmt.Errorf("U %d after u %d", d.FirstID, d.FinalID)
	}
	ev.ID = d.FinalID
	if p.market.futures() {
		if d.PrevFinalID, err = getInt(o, "pu"); err != nil {
			return err
		}
	}
	if p.bids, err = getLevels(o, "b", p.bids[:0]); err != nil {
		return err
	}
	if p.asks, err = getLevels(o, "a", p.asks[:0]); err != nil {
		return err
	}
	d.Bids, d.Asks = p.bids, p.asks
	return nil
}

// markPriceUpdate: p mark price vs P estimated settle price; T next
// funding time vs t (absent); i index price; E vs e. Older frames lack i,
// P, r or T, and futures add undocumented keys (ap, st): both are fine.
func (p *Parser) markPrice(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventMarkPrice
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = getTime(o, "E"); err != nil {
		return dst, err
	}
	mark, err := getDecimal(o, "p")
	if err != nil {
		return dst, err
	}
	fields := make([]sluice.Field, 1, 5)
	fields[0] = sluice.Field{Key: "mark_price", Value: sluice.Float(mark)}
	if fields, err = appendOptDecimals(fields, o, markPriceOptKeys[:]); err != nil {
		return dst, err
	}
	next, ok, err := optInt(o, "T")
	if err != nil {
		return dst, err
	}
	if ok {
		fields = append(fields, sluice.Field{Key: "next_funding_time", Value: sluice.Int(next)})
	}
	return append(dst, sluice.Point{
		Measurement: MeasMarkPrice,
		Tags:        tags3(p.market, sym),
		Fields:      fields,
		Time:        ev.Time,
		Received:    received,
	}), nil
}

// forceOrder, inside o: S side vs s symbol; o order type (and o the outer
// object); q original quantity vs Q (absent); T trade time.
func (p *Parser) forceOrder(outer *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventForceOrder
	var err error
	if ev.Time, err = optTime(outer, "E"); err != nil {
		return dst, err
	}
	o, err := getObject(outer, "o")
	if err != nil {
		return dst, err
	}
	sym, err := p.symbol(o, "s")
	if err != nil {
		return dst, fmt.Errorf("o.%w", err)
	}
	ev.Symbol = sym
	sideRaw, err := getString(o, "S")
	if err != nil {
		return dst, fmt.Errorf("o.%w", err)
	}
	var side string
	switch string(sideRaw) {
	case "BUY":
		side = SideBuy
	case "SELL":
		side = SideSell
	default:
		return dst, fmt.Errorf("o.S: side %q", sideRaw)
	}
	t, err := getTime(o, "T")
	if err != nil {
		return dst, fmt.Errorf("o.%w", err)
	}
	fields := make([]sluice.Field, 0, 8)
	if fields, err = appendDecimals(fields, o, forceOrderKeys[:]); err != nil {
		return dst, fmt.Errorf("o.%w", err)
	}
	for _, f := range [...]keyName{
		{"X", "status"}, {"o", "order_type"}, {"f", "time_in_force"},
	} {
		s, err := getString(o, f.key)
		if err != nil {
			return dst, fmt.Errorf("o.%w", err)
		}
		fields = append(fields, sluice.Field{Key: f.name, Value: sluice.String(p.intern(s))})
	}
	return append(dst, sluice.Point{
		Measurement: MeasLiquidations,
		Tags:        p.sideTags(sym, side),
		Fields:      fields,
		Time:        t,
		Received:    received,
	}), nil
}

// indexPriceUpdate (COIN-M): the pair in "i" is the symbol tag.
func (p *Parser) indexPrice(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	ev.Kind = EventIndexPrice
	sym, err := p.symbol(o, "i")
	if err != nil {
		return dst, err
	}
	ev.Symbol = sym
	if ev.Time, err = getTime(o, "E"); err != nil {
		return dst, err
	}
	x, err := getDecimal(o, "p")
	if err != nil {
		return dst, err
	}
	return append(dst, sluice.Point{
		Measurement: MeasIndexPrice,
		Tags:        tags3(p.market, sym),
		Fields:      []sluice.Field{{Key: "index_price", Value: sluice.Float(x)}},
		Time:        ev.Time,
		Received:    received,
	}), nil
}

// Getters. Each reads one key by exact name and fails on a missing key or
// a value of the wrong JSON type; opt* variants report absence instead.

var errMissing = errors.New("missing")

func getValue(o *fastjson.Object, key string) (*fastjson.Value, error) {
	v := o.Get(key)
	if v == nil {
		return nil, fmt.Errorf("%s: %w", key, errMissing)
	}
	return v, nil
}

func (p *Parser) symbol(o *fastjson.Object, key string) (string, error) {
	b, err := getString(o, key)
	if err != nil {
		return "", fmt.Errorf("symbol: %w", err)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("symbol: %s: empty", key)
	}
	return p.intern(b), nil
}

func getString(o *fastjson.Object, key string) ([]byte, error) {
	v, err := getValue(o, key)
	if err != nil {
		return nil, err
	}
	b, err := v.StringBytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

func getObject(o *fastjson.Object, key string) (*fastjson.Object, error) {
	v, err := getValue(o, key)
	if err != nil {
		return nil, err
	}
	obj, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return obj, nil
}

func getInt(o *fastjson.Object, key string) (int64, error) {
	v, err := getValue(o, key)
	if err != nil {
		return 0, err
	}
	n, err := v.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}

func optInt(o *fastjson.Object, key string) (int64, bool, error) {
	if o.Get(key) == nil {
		return 0, false, nil
	}
	n, err := getInt(o, key)
	return n, err == nil, err
}

func getBool(o *fastjson.Object, key string) (bool, error) {
	v, err := getValue(o, key)
	if err != nil {
		return false, err
	}
	b, err := v.Bool()
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

func getDecimal(o *fastjson.Object, key string) (float64, error) {
	b, err := getString(o, key)
	if err != nil {
		return 0, err
	}
	f, err := parseDecimal(b2s(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return f, nil
}

func optDecimal(o *fastjson.Object, key string) (float64, bool, error) {
	if o.Get(key) == nil {
		return 0, false, nil
	}
	f, err := getDecimal(o, key)
	return f, err == nil, err
}

// getTime reads a unix-millisecond timestamp.
func getTime(o *fastjson.Object, key string) (time.Time, error) {
	ms, err := getInt(o, key)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

func optTime(o *fastjson.Object, key string) (time.Time, error) {
	if o.Get(key) == nil {
		return time.Time{}, nil
	}
	return getTime(o, key)
}

// getLevels appends the [price, quantity] pairs of a depth array to dst.
// Legacy frames carry a third, ignored element per level.
func getLevels(o *fastjson.Object, key string, dst []Level) ([]Level, error) {
	v, err := getValue(o, key)
	if err != nil {
		return dst, err
	}
	items, err := v.Array()
	if err != nil {
		return dst, fmt.Errorf("%s: %w", key, err)
	}
	for i, item := range items {
		l, err := parseLevel(item)
		if err != nil {
			return dst, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		dst = append(dst, l)
	}
	return dst, nil
}

func parseLevel(v *fastjson.Value) (Level, error) {
	pair, err := v.Array()
	if err != nil {
		return Level{}, err
	}
	if len(pair) < 2 {
		return Level{}, fmt.Errorf("level has %d elements, want price and quantity", len(pair))
	}
	pb, err := pair[0].StringBytes()
	if err != nil {
		return Level{}, fmt.Errorf("price: %w", err)
	}
	qb, err := pair[1].StringBytes()
	if err != nil {
		return Level{}, fmt.Errorf("quantity: %w", err)
	}
	key, err := ParsePriceKey(b2s(pb))
	if err != nil {
		return Level{}, fmt.Errorf("price: %w", err)
	}
	price, err := parseDecimal(b2s(pb))
	if err != nil {
		return Level{}, fmt.Errorf("price: %w", err)
	}
	qty, err := parseDecimal(b2s(qb))
	if err != nil {
		return Level{}, fmt.Errorf("quantity: %w", err)
	}
	if qty < 0 {
		return Level{}, fmt.Errorf("quantity %q is negative", qb)
	}
	return Level{Key: key, Price: price, Quantity: qty}, nil
}
