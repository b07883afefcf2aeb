package rest

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// The requests the source makes: a local book's snapshot and the pages of
// a trade backfill. Their answers are parsed by the wire package, into
// points identical to the streams'.

// Snapshot fetches symbol's depth snapshot with limit levels a side.
func (c *Client) Snapshot(ctx context.Context, symbol string, limit int) (market.DepthSnapshot, error) {
	body, err := c.Get(ctx, Depth, url.Values{"symbol": {symbol}, "limit": {strconv.Itoa(limit)}})
	if err != nil {
		return market.DepthSnapshot{}, err
	}
	return wire.ParseDepthSnapshot(body)
}

// TradesFrom fetches one page of symbol's trades from endpoint
// (HistoricalTrades for the trade stream, AggTrades for the aggTrade
// stream) starting at id fromID, at most PageLimit of them, and returns
// their points, parsed with p, and their ids in order.
func (c *Client) TradesFrom(ctx context.Context, p *wire.Parser, endpoint, symbol string, fromID int64) ([]sluice.Point, []int64, error) {
	return c.trades(ctx, p, endpoint, url.Values{"symbol": {symbol},
		"fromId": {strconv.FormatInt(fromID, 10)}, "limit": {strconv.Itoa(PageLimit(c.market, endpoint))}})
}

// FirstAggTrade fetches symbol's first aggregate trade from start to end
// (both included, to the millisecond): none if nothing traded then. Its
// id, and its first_trade_id, is where a backfill bounded by age starts.
func (c *Client) FirstAggTrade(ctx context.Context, p *wire.Parser, symbol string, start, end time.Time) ([]sluice.Point, []int64, error) {
	return c.trades(ctx, p, AggTrades, url.Values{"symbol": {symbol},
		"startTime": {strconv.FormatInt(start.UnixMilli(), 10)}, "endTime": {strconv.FormatInt(end.UnixMilli(), 10)}, "limit": {"1"}})
}

func (c *Client) trades(ctx context.Context, p *wire.Parser, endpoint string, q url.Values) ([]sluice.Point, []int64, error) {
	body, err := c.Get(ctx, endpoint, q)
	if err != nil {
		return nil, nil, err
	}
	if endpoint == AggTrades {
		return p.ParseAggTrades(q.Get("symbol"), body, c.now(), nil)
	}
	return p.ParseTrades(q.Get("symbol"), body, c.now(), nil)
}
