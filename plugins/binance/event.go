package binance

import (
	"fmt"
	"time"
)

// EventKind says what a frame was.
type EventKind uint8

// Event kinds. Market-data kinds produce points, except EventDepthUpdate,
// whose levels feed a Book. The control kinds (EventResult, EventError,
// EventServerShutdown) produce no points; they are answers and notices for
// the connection code, not failures of the parser.
const (
	EventInvalid EventKind = iota
	EventTrade
	EventAggTrade
	EventKline
	EventBookTicker
	EventTicker       // 24hrTicker
	EventMiniTicker   // 24hrMiniTicker
	EventPartialDepth // depth5/10/20 top-of-book snapshot
	EventDepthUpdate  // diff depth: see Event.Depth
	EventMarkPrice
	EventForceOrder
	EventIndexPrice
	EventResult         // {"result":..,"id":..}: answer to a request
	EventError          // {"error":{"code":..,"msg":..},"id":..}
	EventServerShutdown // the server will close the connection soon
	EventUnknown        // a well-formed event of a type this package ignores
)

var eventNames = [...]string{
	"invalid", "trade", "aggTrade", "kline", "bookTicker", "24hrTicker",
	"24hrMiniTicker", "partialDepth", "depthUpdate", "markPriceUpdate",
	"forceOrder", "indexPriceUpdate", "result", "error", "serverShutdown",
	"unknown",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// Event describes the frame a Parse call consumed. Fields that do not apply
// to the kind are zero.
type Event struct {
	Kind EventKind
	// Stream is the stream name of a combined-stream envelope, or the
	// Parser's Stream for a bare frame.
	Stream string
	// Symbol is the symbol of a single-symbol event; empty for an array
	// frame (!ticker@arr and the like) carrying several symbols.
	Symbol string
	// Name is the "e" of an EventUnknown.
	Name string
	// Time is the event time "E" where the frame has one.
	Time time.Time
	// ID is the trade id (trade), aggregate trade id (aggTrade), update id
	// (bookTicker, partial depth, depthUpdate's final id) or request id
	// (result, error; -1 when the frame had none).
	ID int64
	// FirstTradeID and LastTradeID are an aggTrade's f and l.
	FirstTradeID, LastTradeID int64
	// Depth holds a depthUpdate's levels. Its slices belong to the Parser
	// and are overwritten by the next Parse: apply it to a Book (which
	// copies what it keeps) before parsing again.
	Depth DepthUpdate
	// Result is the raw JSON of an EventResult's "result" (null, true,
	// ["btcusdt@aggTrade"], ...).
	Result string
	// Err is the error an EventError carries.
	Err *ServerError
}

// ServerError is an error Binance answered a request with.
type ServerError struct {
	Code int64
	Msg  string
	ID   int64 // the request id, -1 when the frame had none
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("binance error %d for request %d: %s", e.Code, e.ID, e.Msg)
}

// Level is one price level of a book side.
type Level struct {
	// Key is the price as an exact integer count of 1/PriceScale units,
	// the book's map key (see ParsePriceKey).
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

// clone returns a copy that shares no memory with u.
func (u *DepthUpdate) clone() DepthUpdate {
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
