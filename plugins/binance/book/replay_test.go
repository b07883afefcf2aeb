package book

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// pointsPerEvent is how many points one single-symbol event of each kind
// yields on the streams the sessions carry.
var pointsPerEvent = map[wire.EventKind]int{
	wire.EventTrade: 1, wire.EventAggTrade: 1, wire.EventKline: 1, wire.EventBookTicker: 1,
	wire.EventDepthUpdate: 0,
}

// replayStats are one session's counts.
type replayStats struct {
	frames, points, snapshots int
	byKind                    map[wire.EventKind]int
	pointsByMeas              map[string]int
	tickerMatched             int // bookTicker u == book's id at arrival
	tickerMatchedLater        int // bookTicker u reached by the book afterwards
	tickerUnmatched           int // u never equal to the book's id
	depthApplied, depthStale  int
	aggChecked                int
}

func TestReplaySessions(t *testing.T) {
	for _, path := range fixture.SessionFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".replay.jsonl")
		t.Run(name, func(t *testing.T) {
			m, lines := fixture.ReadSession(t, path)
			st := replay(t, m, lines)
			t.Logf("%s: %d frames %v -> %d points %v; %d snapshots, %d depth events applied and %d dropped as older than the snapshot; "+
				"bookTicker checks: %d matched on arrival, %d matched when the book caught up, %d never at the book's id; "+
				"%d aggTrade ids contiguous",
				name, st.frames, kindCounts(st.byKind), st.points, st.pointsByMeas, st.snapshots,
				st.depthApplied, st.depthStale, st.tickerMatched, st.tickerMatchedLater, st.tickerUnmatched, st.aggChecked)
			if st.byKind[wire.EventBookTicker] > 0 && st.tickerMatched+st.tickerMatchedLater == 0 {
				t.Errorf("no bookTicker frame was checked against the book: the test checked nothing")
			}
			if st.byKind[wire.EventDepthUpdate] > 0 && st.depthApplied == 0 {
				t.Errorf("no depth event was applied")
			}
		})
	}
}

func kindCounts(m map[wire.EventKind]int) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%v=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// bookTick is the top of book a bookTicker frame announced.
type bookTick struct {
	line             int
	bid, bidQ        float64
	ask, askQ        float64
	checked, matched bool
}

func replay(t *testing.T, m market.Market, lines []fixture.ReplayLine) replayStats {
	st := replayStats{byKind: map[wire.EventKind]int{}, pointsByMeas: map[string]int{}}
	p := wire.NewParser(m)
	books := map[string]*Book{}
	book := func(sym string) *Book {
		b := books[sym]
		if b == nil {
			b = New(m, sym)
			books[sym] = b
		}
		return b
	}
	// pending holds, per symbol, bookTicker frames whose u the book had
	// not reached when they arrived (a 100 ms depth stream lags the
	// real-time bookTicker).
	pending := map[string]map[int64]*bookTick{}
	var aggIDs, aggTrades wire.IDTracker
	var pts []sluice.Point

	compare := func(b *Book, bt *bookTick, when string) bool {
		bid, okB := b.BestBid()
		ask, okA := b.BestAsk()
		if !okB || !okA || bid.Price != bt.bid || bid.Quantity != bt.bidQ || ask.Price != bt.ask || ask.Quantity != bt.askQ {
			t.Errorf("line %d %s u=%d (%s): book best %v x %v / %v x %v, bookTicker %v x %v / %v x %v",
				bt.line, b.Symbol(), b.LastUpdateID(), when, bid.Price, bid.Quantity, ask.Price, ask.Quantity,
				bt.bid, bt.bidQ, bt.ask, bt.askQ)
			return false
		}
		return true
	}

	for i, l := range lines {
		lineNo := i + 1
		switch l.Src {
		case "connect":
			continue
		case "rest":
			u, err := url.Parse(l.URL)
			if err != nil {
				t.Fatalf("line %d: %v", lineNo, err)
			}
			sym := u.Query().Get("symbol")
			s, err := wire.ParseDepthSnapshot([]byte(l.Raw))
			if err != nil {
				t.Fatalf("line %d: %v", lineNo, err)
			}
			st.snapshots++
			b := book(sym)
			waiting, _ := b.Buffered()
			if err := b.Snapshot(&s); err != nil {
				t.Errorf("line %d: snapshot %d of %s with %d buffered events: %v", lineNo, s.LastUpdateID, sym, waiting, err)
			}
			continue
		case "ws":
		default:
			t.Fatalf("line %d: unknown src %q", lineNo, l.Src)
		}

		st.frames++
		var ev wire.Event
		var err error
		pts, ev, err = p.Parse([]byte(l.Raw), l.Received(), pts[:0])
		if err != nil {
			t.Errorf("line %d: %v", lineNo, err)
			continue
		}
		st.byKind[ev.Kind]++
		st.points += len(pts)
		for _, pt := range pts {
			st.pointsByMeas[pt.Measurement]++
		}
		want, ok := pointsPerEvent[ev.Kind]
		if !ok {
			t.Errorf("line %d: unexpected %v in a recorded session", lineNo, ev.Kind)
			continue
		}
		if len(pts) != want {
			t.Errorf("line %d: %v gave %d points, want %d", lineNo, ev.Kind, len(pts), want)
		}
		streamSym, _, _ := strings.Cut(ev.Stream, "@")
		if strings.ToUpper(streamSym) != ev.Symbol {
			t.Errorf("line %d: symbol %q on stream %q", lineNo, ev.Symbol, ev.Stream)
		}
		for _, pt := range pts {
			if got, _ := pt.Tag(market.TagSymbol); got != ev.Symbol {
				t.Errorf("line %d: point symbol %q, event symbol %q", lineNo, got, ev.Symbol)
			}
		}
		fixture.CheckPoints(t, m, pts)

		switch ev.Kind {
		case wire.EventDepthUpdate:
			b := book(ev.Symbol)
			if err := b.Apply(&ev.Depth); err != nil {
				t.Errorf("line %d: %v", lineNo, err)
				continue
			}
			if bt := pending[ev.Symbol][b.LastUpdateID()]; bt != nil && b.Synced() {
				bt.checked = true
				bt.matched = compare(b, bt, "book caught up")
				st.tickerMatchedLater++
				delete(pending[ev.Symbol], b.LastUpdateID())
			}
		case wire.EventBookTicker:
			bt := tickFromPoint(t, lineNo, &pts[0])
			b := book(ev.Symbol)
			switch {
			case b.Synced() && b.LastUpdateID() == ev.ID:
				compare(b, bt, "on arrival")
				st.tickerMatched++
			case b.Synced() && b.LastUpdateID() > ev.ID:
				st.tickerUnmatched++ // the book moved past u without stopping at it
			default:
				if pending[ev.Symbol] == nil {
					pending[ev.Symbol] = map[int64]*bookTick{}
				}
				pending[ev.Symbol][ev.ID] = bt
			}
		case wire.EventAggTrade:
			if c := aggIDs.Observe(ev.Symbol, ev.ID); c.Status != wire.IDNext {
				t.Errorf("line %d: %s aggTrade id %d: %v %d..%d", lineNo, ev.Symbol, ev.ID, c.Status, c.From, c.To)
			}
			// The trades an aggregate covers follow on from the previous
			// aggregate's.
			if last, ok := aggTrades.Last(ev.Symbol); ok && ev.FirstTradeID != last+1 {
				t.Errorf("line %d: %s aggTrade covers trades %d..%d after %d", lineNo, ev.Symbol, ev.FirstTradeID, ev.LastTradeID, last)
			}
			aggTrades.Set(ev.Symbol, ev.LastTradeID)
			st.aggChecked++
		}
	}
	for sym, b := range books {
		st.depthApplied += b.applied
		st.depthStale += b.stale
		if !b.Synced() {
			waiting, _ := b.Buffered()
			t.Errorf("%s: book never synced (%d events waiting for a snapshot)", sym, waiting)
		}
	}
	for _, bySym := range pending {
		st.tickerUnmatched += len(bySym)
	}
	return st
}

func tickFromPoint(t *testing.T, line int, pt *sluice.Point) *bookTick {
	t.Helper()
	bt := &bookTick{line: line}
	get := func(key string) float64 {
		v, ok := pt.Field(key)
		if !ok {
			t.Fatalf("line %d: book_ticker without %s", line, key)
		}
		return v.Float()
	}
	bt.bid, bt.bidQ, bt.ask, bt.askQ = get("bid_price"), get("bid_qty"), get("ask_price"), get("ask_qty")
	return bt
}
