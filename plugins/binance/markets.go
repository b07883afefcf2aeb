package binance

import "github.com/sluicehq/sluice/plugins/binance/market"

// Market is market.Market, the venue a feed streams from and a Position
// belongs to. It and the venues are named here too so that code which
// runs the source can name its market without importing package market.
type Market = market.Market

// The venues: see market.Spot, market.USDM and market.COINM.
const (
	Spot  = market.Spot
	USDM  = market.USDM
	COINM = market.COINM
)
