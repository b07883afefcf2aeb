package binance

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/valyala/fastjson"
)

var restParsers fastjson.ParserPool

// ParseDepthSnapshot parses the body of a REST depth snapshot
// ({"lastUpdateId":..,"bids":[..],"asks":[..]}, plus E, T, symbol and pair
// on futures, which are ignored). The result shares no memory with body.
func ParseDepthSnapshot(body []byte) (DepthSnapshot, error) {
	jp := restParsers.Get()
	defer restParsers.Put(jp)
	var s DepthSnapshot
	v, err := jp.ParseBytes(body)
	if err != nil {
		return s, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, err)
	}
	o, err := v.Object()
	if err != nil {
		return s, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, err)
	}
	if s.LastUpdateID, err = getInt(o, "lastUpdateId"); err == nil {
		if s.Bids, err = getLevels(o, "bids", nil); err == nil {
			s.Asks, err = getLevels(o, "asks", nil)
		}
	}
	if err != nil {
		return DepthSnapshot{}, fmt.Errorf("%w: depth snapshot: %w", ErrFrame, err)
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
			var id, first, last int64
			var err error
			if id, err = getInt(o, "a"); err == nil {
				if first, err = getInt(o, "f"); err == nil {
					last, err = getInt(o, "l")
				}
			}
			if err == nil {
				out, err = p.appendAggTrade(o, sym, id, first, last, received, out)
			}
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
	if !p.market.valid() {
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
	id, err := getInt(o, "id")
	if err != nil {
		return sluice.Point{}, 0, err
	}
	price, err := getDecimal(o, "price")
	if err != nil {
		return sluice.Point{}, 0, err
	}
	qty, err := getDecimal(o, "qty")
	if err != nil {
		return sluice.Point{}, 0, err
	}
	t, err := getTime(o, "time")
	if err != nil {
		return sluice.Point{}, 0, err
	}
	maker, err := getBool(o, "isBuyerMaker")
	if err != nil {
		return sluice.Point{}, 0, err
	}
	side := SideBuy
	if maker {
		side = SideSell
	}
	return sluice.Point{
		Measurement: MeasTrades,
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
