package wire

import (
	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Tag builders. Each writes the tags already in key order (exchange <
// interval < level < market < side < symbol), which sinks rely on, so no
// sort is needed on the hot path.

func tags3(m market.Market, symbol string) []sluice.Tag {
	return []sluice.Tag{
		{Key: market.TagExchange, Value: market.Exchange},
		{Key: market.TagMarket, Value: m.String()},
		{Key: market.TagSymbol, Value: symbol},
	}
}

func tagsSide(m market.Market, symbol, side string) []sluice.Tag {
	return []sluice.Tag{
		{Key: market.TagExchange, Value: market.Exchange},
		{Key: market.TagMarket, Value: m.String()},
		{Key: market.TagSide, Value: side},
		{Key: market.TagSymbol, Value: symbol},
	}
}

func tagsInterval(m market.Market, symbol, interval string) []sluice.Tag {
	return []sluice.Tag{
		{Key: market.TagExchange, Value: market.Exchange},
		{Key: market.TagInterval, Value: interval},
		{Key: market.TagMarket, Value: m.String()},
		{Key: market.TagSymbol, Value: symbol},
	}
}
