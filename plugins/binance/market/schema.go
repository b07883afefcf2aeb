package market

import (
	"strconv"
	"time"

	"github.com/sluicehq/sluice"
)

// Measurement names of the normalized schema. Dashboards query these
// names, tags and fields verbatim: change them only with a migration.
const (
	MeasTrades       = "trades"
	MeasAggTrades    = "agg_trades"
	MeasCandles      = "candles"
	MeasBookTicker   = "book_ticker"
	MeasTicker       = "ticker"
	MeasBook         = "book"
	MeasMarkPrice    = "mark_price"
	MeasLiquidations = "liquidations"
	MeasIndexPrice   = "index_price"
)

// Tag keys and the constant exchange tag value.
const (
	TagExchange = "exchange"
	TagMarket   = "market"
	TagSymbol   = "symbol"
	TagSide     = "side"
	TagInterval = "interval"
	TagLevel    = "level"

	Exchange = "binance"
)

// Side tag values. Trades carry the taker's side; book levels carry bid or
// ask.
const (
	SideBuy  = "buy"
	SideSell = "sell"
	SideBid  = "bid"
	SideAsk  = "ask"
)

// UniqueTime is the name that, in a Measurement's Unique list, stands for
// the point's timestamp rather than a tag or field. It lets series without
// an id on the wire (candles, tickers, book snapshots) declare "one point
// per series per instant". No tag or field of this schema is called
// "time", so the name cannot clash.
const UniqueTime = "time"

// Measurements declares every measurement the Binance source emits and the tags,
// fields (and UniqueTime) that identify a point. `market` is part of every
// key because the same symbol trades on spot and on futures with
// independent ids.
//
// Trades and aggregate trades are keyed by their id and their time, as a
// time-series store keys what it deduplicates (TimescaleDB's unique
// indexes and QuestDB's upsert keys must hold the timestamp too). The
// exchange never changes a trade's time, so a trade replayed by a resume
// or a backfill has both and lands on itself; and a sink can keep one
// index, time first, growing at its end, where a key of (…, symbol, id)
// is one more index written in as many places as there are symbols
// (SQLite: 22–31 % less agent CPU a trade at 10 000–80 000 trades/s,
// BENCHMARKS.md).
//
// Candles are keyed by open time, so every update of a still-open candle
// has the same key as the final one: a sink must treat a repeat of the key
// as a replacement (last write wins), or it keeps a half-built candle.
// Liquidations carry no id and two can share a millisecond, so they have no
// key and every point is new.
func Measurements() []sluice.Measurement {
	base := []string{TagExchange, TagMarket, TagSymbol}
	key := func(extra ...string) []string {
		return append(append([]string(nil), base...), extra...)
	}
	return []sluice.Measurement{
		{Name: MeasTrades, Unique: key("trade_id", UniqueTime)},
		{Name: MeasAggTrades, Unique: key("agg_id", UniqueTime)},
		{Name: MeasCandles, Unique: key(TagInterval, UniqueTime)},
		{Name: MeasBookTicker, Unique: key("update_id")},
		{Name: MeasTicker, Unique: key(UniqueTime)},
		{Name: MeasBook, Unique: key(TagSide, TagLevel, UniqueTime)},
		{Name: MeasMarkPrice, Unique: key(UniqueTime)},
		{Name: MeasLiquidations},
		{Name: MeasIndexPrice, Unique: key(UniqueTime)},
	}
}

// levelNames caches the `level` tag values so that emitting a book does not
// format an integer per point.
var levelNames = func() [maxLevelName]string {
	var a [maxLevelName]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

const maxLevelName = 1000

func levelName(i int) string {
	if i < maxLevelName {
		return levelNames[i]
	}
	return strconv.Itoa(i)
}

// AppendBookSide appends one `book` point per level of one side of
// symbol's book, best first: levels run best first, or best last when
// bestLast is set. level counts from 0, the best. The points are stamped
// with time t and received. All the points of a call share one tag and
// one field allocation; their tags are in key order, as every tag list of
// this schema is (exchange < interval < level < market < side < symbol),
// which sinks rely on.
func AppendBookSide(dst []sluice.Point, m Market, symbol, side string, levels []Level, bestLast bool, t, received time.Time) []sluice.Point {
	n := len(levels)
	if n == 0 {
		return dst
	}
	tags := make([]sluice.Tag, 5*n)
	fields := make([]sluice.Field, 2*n)
	for i := range n {
		l := levels[i]
		if bestLast {
			l = levels[n-1-i]
		}
		tg := tags[5*i : 5*i+5 : 5*i+5]
		tg[0] = sluice.Tag{Key: TagExchange, Value: Exchange}
		tg[1] = sluice.Tag{Key: TagLevel, Value: levelName(i)}
		tg[2] = sluice.Tag{Key: TagMarket, Value: m.String()}
		tg[3] = sluice.Tag{Key: TagSide, Value: side}
		tg[4] = sluice.Tag{Key: TagSymbol, Value: symbol}
		fs := fields[2*i : 2*i+2 : 2*i+2]
		fs[0] = sluice.Field{Key: "price", Value: sluice.Float(l.Price)}
		fs[1] = sluice.Field{Key: "quantity", Value: sluice.Float(l.Quantity)}
		dst = append(dst, sluice.Point{Measurement: MeasBook, Tags: tg, Fields: fs, Time: t, Received: received})
	}
	return dst
}
