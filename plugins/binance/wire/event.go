package wire

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
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
	// and are overwritten by the next Parse: apply it to a book.Book
	// (which copies what it keeps), or Clone it, before parsing again.
	Depth market.DepthUpdate
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
