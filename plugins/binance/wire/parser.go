package wire

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/valyala/fastjson"
)

// Frames are decoded with fastjson rather than encoding/json: it is about
// twice as fast on these small frames with a fraction of the allocations
// (figures in PARSING.md), and its look-ups are exact-case, so "e" and "E",
// "t" and "T", "m" and "M" can never be confused, which encoding/json does
// unless a struct declares every case variant.

// ErrFrame is wrapped by every error about a frame's content, so a caller
// can tell a bad frame (count it, skip it) from a misuse of the API.
var ErrFrame = errors.New("binance: bad frame")

// Parser turns WebSocket frames of one connection into points.
//
// A Parser reuses its buffers between calls, so it is not safe for
// concurrent use: give each connection its own. Make one with NewParser;
// the zero Parser has no market and refuses every frame.
type Parser struct {
	market market.Market
	// Stream is the stream of a raw /ws/<stream> connection, if that is
	// what the frames come from; leave it empty on a combined /stream
	// connection, whose frames name their stream. A bare frame is read as
	// coming from Stream: it gives the symbol to spot partial depth (whose
	// frames carry none) and tells a futures partial-depth frame
	// (<symbol>@depth20) from a diff-depth frame, which both say
	// "depthUpdate". Without it a bare futures depthUpdate is a diff.
	Stream string

	json  fastjson.Parser
	names map[string]string // interned symbols, streams and event names
	// sides holds, per symbol, the tags of its buy and sell trades,
	// shared by every trade and aggTrade point of that symbol and side.
	sides map[string]*[2][]sluice.Tag
	bids  []market.Level
	asks  []market.Level
	upper []byte
}

// maxInterned bounds the interning map, which only frames fill: past the
// bound (thousands more names than Binance lists) it starts over.
const maxInterned = 16384

// NewParser returns a parser for frames of the given market.
func NewParser(m market.Market) *Parser {
	return &Parser{market: m}
}

// Market returns the market the parser tags points with.
func (p *Parser) Market() market.Market { return p.market }

var parsers = [...]sync.Pool{
	market.Spot:  {New: func() any { return NewParser(market.Spot) }},
	market.USDM:  {New: func() any { return NewParser(market.USDM) }},
	market.COINM: {New: func() any { return NewParser(market.COINM) }},
}

// ParseFrame parses one frame with a pooled Parser: see Parser.Parse. It
// suits occasional use; a connection's read loop should own a Parser, which
// is cheaper. A depthUpdate's levels are copied out of the pooled parser, so
// the returned Event stays valid.
func ParseFrame(m market.Market, frame []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, Event, error) {
	if !m.Valid() {
		return dst, Event{}, fmt.Errorf("binance: invalid market %v", m)
	}
	p := parsers[m].Get().(*Parser)
	defer parsers[m].Put(p)
	dst, ev, err := p.Parse(frame, received, dst)
	if ev.Kind == EventDepthUpdate {
		ev.Depth = ev.Depth.Clone()
	}
	return dst, ev, err
}

// Parse parses one WebSocket text frame, bare or in the combined-stream
// envelope {"stream":..,"data":..}, appends its normalized points to dst
// and says what the frame was. received is when the frame arrived: it is
// every point's Received and the Time of points whose frame has no event
// time (spot bookTicker and partial depth).
//
// A diff-depth frame yields no points but an Event whose Depth feeds a
// Book. Control frames (request results, errors, serverShutdown) yield no
// points and a nil error: they are news for the connection, not parse
// failures. An event of a type this package does not normalize yields
// EventUnknown. On error dst is returned as it came, and the error wraps
// ErrFrame.
func (p *Parser) Parse(frame []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, Event, error) {
	if !p.market.Valid() {
		return dst, Event{}, fmt.Errorf("binance: parser for invalid market %v: use NewParser", p.market)
	}
	n := len(dst)
	out, ev, err := p.parse(frame, received, dst)
	if err != nil {
		clear(out[n:]) // drop references held by half-built points
		return dst[:n], ev, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	return out, ev, nil
}

func (p *Parser) parse(frame []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, Event, error) {
	var ev Event
	v, err := p.json.ParseBytes(frame)
	if err != nil {
		return dst, ev, err
	}
	ev.Stream = p.Stream
	if o, _ := v.Object(); o != nil {
		if s := o.Get("stream"); s != nil {
			sb, err := s.StringBytes()
			if err != nil {
				return dst, ev, fmt.Errorf("stream: %w", err)
			}
			ev.Stream = p.intern(sb)
			if v = o.Get("data"); v == nil {
				return dst, ev, errors.New("envelope without data")
			}
		} else if o.Get("e") == nil {
			if k := controlKind(o); k != EventInvalid {
				return dst, ev, p.control(o, k, &ev)
			}
		}
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst, err = p.event(o, received, dst, &ev)
		return dst, ev, err
	case fastjson.TypeArray:
		// The all-market streams (!ticker@arr, !markPrice@arr, ...)
		// send an array of events of one type.
		items, _ := v.Array()
		if len(items) == 0 {
			ev.Kind = EventUnknown
			return dst, ev, nil
		}
		for i, item := range items {
			o, err := item.Object()
			if err != nil {
				return dst, ev, fmt.Errorf("array item %d: %w", i, err)
			}
			var one Event
			one.Stream = ev.Stream
			if dst, err = p.event(o, received, dst, &one); err != nil {
				return dst, one, fmt.Errorf("array item %d: %w", i, err)
			}
			if one.Kind == EventDepthUpdate {
				return dst, one, fmt.Errorf("array item %d: depthUpdate in an array", i)
			}
			if i == 0 {
				ev = one
			} else if one.Kind != ev.Kind {
				return dst, one, fmt.Errorf("array item %d: %v among %v", i, one.Kind, ev.Kind)
			}
		}
		if len(items) > 1 {
			ev.Symbol, ev.ID, ev.Time = "", 0, time.Time{}
		}
		return dst, ev, nil
	}
	return dst, ev, fmt.Errorf("frame is a JSON %v, not an object or array", v.Type())
}

// controlKind recognizes a bare frame without "e" as a request result or
// an error. Binance documents {"error":{"code","msg"},"id"}; a bare
// {"code","msg"} has been seen as well.
func controlKind(o *fastjson.Object) EventKind {
	switch {
	case o.Get("result") != nil:
		return EventResult
	case o.Get("error") != nil:
		return EventError
	case o.Get("code") != nil && o.Get("msg") != nil:
		return EventError
	}
	return EventInvalid
}

func (p *Parser) control(o *fastjson.Object, k EventKind, ev *Event) error {
	ev.Kind = k
	ev.ID = -1
	if id := o.Get("id"); id != nil && id.Type() != fastjson.TypeNull {
		n, err := id.Int64()
		if err != nil {
			return fmt.Errorf("id: %w", err)
		}
		ev.ID = n
	}
	if k == EventResult {
		ev.Result = o.Get("result").String()
		return nil
	}
	f := fields{o: o}
	if o.Get("error") != nil {
		f.o = f.object("error")
	}
	code := f.int("code")
	msg := f.str("msg")
	if f.err != nil {
		return f.err
	}
	ev.Err = &ServerError{Code: code, Msg: string(msg), ID: ev.ID}
	return nil
}

// event dispatches one event object on its "e".
func (p *Parser) event(o *fastjson.Object, received time.Time, dst []sluice.Point, ev *Event) ([]sluice.Point, error) {
	e := o.Get("e")
	if e == nil {
		// Spot sends two payloads without "e": bookTicker and the
		// partial book depth.
		switch {
		case o.Get("lastUpdateId") != nil:
			return p.spotPartialDepth(o, received, dst, ev)
		case o.Get("u") != nil && o.Get("b") != nil && o.Get("a") != nil:
			return p.bookTicker(o, received, dst, ev)
		}
		return dst, errors.New(`event without "e"`)
	}
	name, err := e.StringBytes()
	if err != nil {
		return dst, fmt.Errorf("e: %w", err)
	}
	switch string(name) {
	case "trade":
		return p.trade(o, received, dst, ev)
	case "aggTrade":
		return p.aggTrade(o, received, dst, ev)
	case "kline":
		return p.kline(o, received, dst, ev)
	case "bookTicker":
		return p.bookTicker(o, received, dst, ev)
	case "24hrTicker":
		return p.ticker(o, received, dst, ev)
	case "24hrMiniTicker":
		return p.miniTicker(o, received, dst, ev)
	case "depthUpdate":
		if isPartialDepthStream(ev.Stream) {
			return p.futuresPartialDepth(o, received, dst, ev)
		}
		return dst, p.depthUpdate(o, ev)
	case "markPriceUpdate":
		return p.markPrice(o, received, dst, ev)
	case "forceOrder":
		return p.forceOrder(o, received, dst, ev)
	case "indexPriceUpdate":
		return p.indexPrice(o, received, dst, ev)
	case "serverShutdown":
		ev.Kind = EventServerShutdown
		f := fields{o: o}
		ev.Time = f.time("E")
		return dst, f.err
	}
	ev.Kind = EventUnknown
	ev.Name = p.intern(name)
	return dst, nil
}

// isPartialDepthStream reports whether a stream name is a partial book
// depth stream: <symbol>@depth<levels>[@<speed>] with levels 5, 10 or 20.
// The diff stream is <symbol>@depth[@<speed>].
func isPartialDepthStream(stream string) bool {
	_, rest, ok := strings.Cut(stream, "@depth")
	return ok && len(rest) > 0 && isDigit(rest[0])
}

// intern returns b as a string, allocating only the first time a given
// name is seen.
func (p *Parser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	if p.names == nil {
		p.names = make(map[string]string)
	}
	if len(p.names) >= maxInterned {
		clear(p.names)
	}
	s := string(b)
	p.names[s] = s
	return s
}

// sideTags returns the tags of sym's trades on side. The slice is shared
// by every such point (nothing writes to a point's tags once parsed), so
// a trade allocates no tags; its capacity is its length, so an append
// copies it.
func (p *Parser) sideTags(sym, side string) []sluice.Tag {
	var i int
	switch side {
	case market.SideBuy:
	case market.SideSell:
		i = 1
	default:
		return tagsSide(p.market, sym, side)
	}
	e := p.sides[sym]
	if e == nil {
		if p.sides == nil || len(p.sides) >= maxInterned {
			p.sides = make(map[string]*[2][]sluice.Tag)
		}
		e = new([2][]sluice.Tag)
		p.sides[sym] = e
	}
	if e[i] == nil {
		e[i] = tagsSide(p.market, sym, side)
	}
	return e[i]
}

// streamSymbol returns the upper-cased symbol part of a stream name, which is
// the only place spot partial depth names its symbol.
func (p *Parser) streamSymbol(stream string) (string, error) {
	sym, _, _ := strings.Cut(stream, "@")
	if sym == "" || sym[0] == '!' {
		return "", fmt.Errorf("missing symbol: stream %q names none", stream)
	}
	p.upper = append(p.upper[:0], sym...)
	for i, c := range p.upper {
		if 'a' <= c && c <= 'z' {
			p.upper[i] = c - 'a' + 'A'
		}
	}
	return p.intern(p.upper), nil
}
