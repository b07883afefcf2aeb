package market

import "time"

// PriceScale is the number of key units per unit of price: a Level's Key
// is its price times PriceScale, exactly (the parsers read it digit by
// digit from the decimal string, never through a float; see
// wire.ParsePriceKey). Eight decimals are the finest tick any Binance
// market quotes.
const PriceScale = 100_000_000

// Level is one price level of a book side.
type Level struct {
	// Key is the price as an exact integer count of 1/PriceScale units,
	// the book's map key.
	Key      int64
	Price    float64
	Quantity float64
}

// DepthUpdate is one diff-depth event (e = depthUpdate on an @depth or
// @depth@100ms stream).
type DepthUpdate struct {
	Symbol    string
	EventTime time.Time
	// FirstID (U) and FinalID (u) bound the engine updates folded into
	// this event. PrevFinalID (pu) is the previous event's FinalID on
	// futures; spot does not send it and leaves it 0.
	FirstID, FinalID, PrevFinalID int64
	// Bids and Asks are the new absolute quantities; zero removes a level.
	Bids, Asks []Level
}

// Clone returns a copy that shares no memory with u.
func (u *DepthUpdate) Clone() DepthUpdate {
	c := *u
	c.Bids = append([]Level(nil), u.Bids...)
	c.Asks = append([]Level(nil), u.Asks...)
	return c
}

// DepthSnapshot is a REST depth snapshot (GET /api/v3/depth, /fapi/v1/depth,
// /dapi/v1/depth).
type DepthSnapshot struct {
	LastUpdateID int64
	Bids, Asks   []Level
}
