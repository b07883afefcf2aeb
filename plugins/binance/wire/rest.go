package wire

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/valyala/fastjson"
)

// The bodies of Binance's REST market-data answers: what a depth snapshot
// and a trade backfill fetch (the rest package makes the requests).

var restParsers fastjson.ParserPool

// ParseDepthSnapshot parses the body of a REST depth snapshot
// ({"lastUpdateId":..,"bids":[..],"asks":[..]}, plus E, T, symbol and pair
// on futures, which are ignored). The result shares no memory with body.
func ParseDepthSnapshot(body []byte) (market.DepthSnapshot, error) {
	jp := restParsers.Get()
	defer restParsers.Put(jp)
	v, err := jp.ParseBytes(body)
	if err != nil {
		return market.DepthSnapshot{}, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, err)
	}
	o, err := v.Object()
	if err != nil {
		return market.DepthSnapshot{}, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, err)
	}
	f := fields{o: o}
	s := market.DepthSnapshot{
		LastUpdateID: f.int("lastUpdateId"),
		Bids:         f.levels("bids", nil),
		Asks:         f.levels("asks", nil),
	}
	if f.err != nil {
		return market.DepthSnapshot{}, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, f.err)
	}
	return s, nil
}

// ParseAggTrades parses the body of a REST aggregate-trades answer
// (GET /api/v3/aggTrades and the futures equivalents), a JSON array of
// {a,p,q,f,l,T,m}, into agg_trades points identical to the stream's, for
// backfilling a gap. The body does not name the symbol, so the caller
// does. It returns the ids seen, in order, for the gap bookkeeping.
func (p *Parser) ParseAggTrades(symbol string, body []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, []int64, error) {
	return p.parseRESTArray("aggTrades", symbol, body, dst,
		func(o *fastjson.Object, sym string, out []sluice.Point) ([]sluice.Point, int64, error) {
			f := fields{o: o}
			id, first, last := f.int("a"), f.int("f"), f.int("l")
			out, err := p.appendAggTrade(&f, sym, id, first, last, received, out)
			return out, id, err
		})
}

// ParseTrades parses the body of a REST trades answer (GET
// /api/v3/historicalTrades, /api/v3/trades and the futures equivalents), a
// JSON array of {id,price,qty,time,isBuyerMaker,...}, into trades points
// identical to the trade stream's, for backfilling a gap. The body does
// not name the symbol, so the caller does. It returns the ids seen, in
// order.
func (p *Parser) ParseTrades(symbol string, body []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, []int64, error) {
	return p.parseRESTArray("trades", symbol, body, dst,
		func(o *fastjson.Object, sym string, out []sluice.Point) ([]sluice.Point, int64, error) {
			pt, id, err := p.restTrade(o, sym, received)
			if err != nil {
				return out, 0, err
			}
			return append(out, pt), id, nil
		})
}

// parseRESTArray walks a REST answer that is a JSON array of objects,
// appending each item's points with item and collecting the ids in order.
// On any error it leaves dst as it was and names the item.
func (p *Parser) parseRESTArray(kind, symbol string, body []byte, dst []sluice.Point,
	item func(o *fastjson.Object, sym string, out []sluice.Point) ([]sluice.Point, int64, error),
) ([]sluice.Point, []int64, error) {
	n := len(dst)
	out := dst
	fail := func(err error) ([]sluice.Point, []int64, error) {
		clear(out[n:]) // drop references held by half-built points
		return dst[:n], nil, fmt.Errorf("%w: %s: %w", ErrFrame, kind, err)
	}
	if !p.market.Valid() {
		return dst, nil, fmt.Errorf("binance: parser for invalid market %v: use NewParser", p.market)
	}
	if symbol == "" {
		return fail(fmt.Errorf("missing symbol"))
	}
	v, err := p.json.ParseBytes(body)
	if err != nil {
		return fail(err)
	}
	items, err := v.Array()
	if err != nil {
		return fail(err)
	}
	sym := p.intern([]byte(symbol))
	ids := make([]int64, 0, len(items))
	for i, it := range items {
		o, err := it.Object()
		if err != nil {
			return fail(fmt.Errorf("item %d: %w", i, err))
		}
		var id int64
		if out, id, err = item(o, sym, out); err != nil {
			return fail(fmt.Errorf("item %d: %w", i, err))
		}
		ids = append(ids, id)
	}
	return out, ids, nil
}

// restTrade reads one REST trade: id, price, qty, time, isBuyerMaker.
func (p *Parser) restTrade(o *fastjson.Object, sym string, received time.Time) (sluice.Point, int64, error) {
	f := fields{o: o}
	id := f.int("id")
	price := f.decimal("price")
	qty := f.decimal("qty")
	t := f.time("time")
	side := market.SideBuy
	if f.bool("isBuyerMaker") {
		side = market.SideSell
	}
	if f.err != nil {
		return sluice.Point{}, 0, f.err
	}
	return sluice.Point{
		Measurement: market.MeasTrades,
		Tags:        tagsSide(p.market, sym, side),
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(price)},
			{Key: "quantity", Value: sluice.Float(qty)},
			{Key: "trade_id", Value: sluice.Int(id)},
		},
		Time:     t,
		Received: received,
	}, id, nil
}
