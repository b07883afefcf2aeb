package book

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// ErrGap is matched (errors.Is) by every *GapError: the diff-depth stream
// of one symbol broke its sequence, the book is discarded and the caller
// must fetch a new REST snapshot for that symbol.
var ErrGap = errors.New("binance: depth sequence gap")

// GapError describes a depth event that does not follow the book.
type GapError struct {
	Market market.Market
	Symbol string
	// BookID is the book's last update id when the event arrived: the
	// snapshot's lastUpdateId if the event was to bridge it.
	BookID int64
	// Bridge is set when the event was the first after a snapshot and did
	// not cover it: the snapshot is older than the oldest buffered event.
	Bridge bool
	// The offending event's U, u and pu.
	FirstID, FinalID, PrevFinalID int64
}

func (e *GapError) Error() string {
	what := "does not follow"
	if e.Bridge {
		what = "does not bridge snapshot"
	}
	if e.Market.Futures() {
		return fmt.Sprintf("binance %v %s: depth event U=%d u=%d pu=%d %s book at %d",
			e.Market, e.Symbol, e.FirstID, e.FinalID, e.PrevFinalID, what, e.BookID)
	}
	return fmt.Sprintf("binance %v %s: depth event U=%d u=%d %s book at %d",
		e.Market, e.Symbol, e.FirstID, e.FinalID, what, e.BookID)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// MaxBuffered bounds the diff events a Book holds while it waits for a
// snapshot: 100 s of a 100 ms stream. Past it the oldest are dropped; if the
// snapshot then turns out older than what is left, Snapshot reports a gap
// and the caller fetches a fresher one.
const MaxBuffered = 1000

type bookState uint8

const (
	awaitSnapshot bookState = iota // buffering diffs until Snapshot
	bridging                       // snapshot loaded, next event must cover it
	synced                         // events must follow one another
)

// Book is the local order book of one symbol, kept by Binance's documented
// algorithm:
//
//   - Diff events that arrive before the REST snapshot are buffered (see
//     MaxBuffered).
//   - Snapshot loads the snapshot and replays the buffer. Events the
//     snapshot already covers are dropped (spot: u <= lastUpdateId;
//     futures: u < lastUpdateId). The first event applied must bridge it
//     (spot: U <= lastUpdateId+1 <= u; futures: U <= lastUpdateId <= u).
//   - Each later event must follow the previous one (spot: U == previous
//     u + 1; futures: pu == previous u); an event wholly before the book
//     (u <= the book's id) is a duplicate and is dropped.
//   - A quantity of zero removes the level.
//
// A sequence break returns a *GapError (errors.Is ErrGap): the book empties
// and goes back to buffering, keeping the event that broke the sequence, so
// the caller's only job is to fetch a new snapshot and call Snapshot.
//
// Levels are keyed by their exact integer price (market.Level's Key), never
// by float. Each
// side is a slice sorted so that the best price is last: most updates land
// near the top of the book, where inserting and deleting move few elements.
//
// A Book is not safe for concurrent use.
type Book struct {
	market  market.Market
	symbol  string
	state   bookState
	lastID  int64
	time    time.Time      // event time of the last applied event
	bids    []market.Level // ascending price: best bid last
	asks    []market.Level // descending price: best ask last
	buffer  []market.DepthUpdate
	evicted int // buffered events dropped by MaxBuffered
	applied int // events applied to the levels
	stale   int // events dropped as already in the book
	// changed is the shallowest position from the best (0) of a level
	// set, added or removed on either side since ClearChanged: a change
	// at position p moves what the top n levels show for every n > p.
	changed int
}

// New returns an empty book, waiting for a snapshot.
func New(m market.Market, symbol string) *Book {
	return &Book{market: m, symbol: symbol}
}

// noChange is Book.changed when nothing changed.
const noChange = math.MaxInt

// ChangedWithin reports whether the top n levels of either side may show
// something else than at the last ClearChanged: a level among them was
// set, added or removed, or the book was reloaded. A change deeper in the
// book (most of what a busy symbol's diffs carry) leaves them as they
// were, and a publisher of the top n need not publish them again.
func (b *Book) ChangedWithin(n int) bool { return b.changed < n }

// ClearChanged marks the book's levels as published.
func (b *Book) ClearChanged() { b.changed = noChange }

func (b *Book) touched(pos int) { b.changed = min(b.changed, pos) }

// Symbol returns the book's symbol.
func (b *Book) Symbol() string { return b.symbol }

// Synced reports whether the book follows the stream: a snapshot has been
// loaded and bridged by an event. Before that its levels are not to be
// published.
func (b *Book) Synced() bool { return b.state == synced }

// LastUpdateID returns the update id the book reflects: the u of the last
// applied event, or the snapshot's lastUpdateId before the bridge.
func (b *Book) LastUpdateID() int64 { return b.lastID }

// Time returns the event time of the last applied event.
func (b *Book) Time() time.Time { return b.time }

// Buffered returns how many events wait for a snapshot, and how many were
// dropped from that buffer since the book was made.
func (b *Book) Buffered() (waiting, evicted int) { return len(b.buffer), b.evicted }

// Reset empties the book and makes it wait for a new snapshot, buffering
// events from now on.
func (b *Book) Reset() {
	b.changed = 0
	b.state = awaitSnapshot
	b.lastID = 0
	b.time = time.Time{}
	b.bids = b.bids[:0]
	b.asks = b.asks[:0]
	clear(b.buffer)
	b.buffer = b.buffer[:0]
}

// Apply feeds one diff-depth event. Before a snapshot it is buffered (as a
// copy: u's slices may be reused by the caller). It returns a *GapError if
// the event breaks the sequence.
func (b *Book) Apply(u *market.DepthUpdate) error {
	if u.Symbol != "" && u.Symbol != b.symbol {
		return fmt.Errorf("binance: %s depth event applied to the %s book", u.Symbol, b.symbol)
	}
	if b.state == awaitSnapshot {
		if len(b.buffer) == MaxBuffered {
			clear(b.buffer[:1])
			b.buffer = append(b.buffer[:0], b.buffer[1:]...)
			b.evicted++
		}
		b.buffer = append(b.buffer, u.Clone())
		return nil
	}
	return b.apply(u)
}

// Snapshot loads a REST snapshot and replays the buffered events on it. A
// snapshot older than the buffered events returns a *GapError: fetch a
// newer one. A snapshot newer than every buffered event leaves the book
// bridging: the next event to arrive must cover it.
func (b *Book) Snapshot(s *market.DepthSnapshot) error {
	b.bids = loadSide(b.bids[:0], s.Bids, false)
	b.asks = loadSide(b.asks[:0], s.Asks, true)
	b.changed = 0
	b.lastID = s.LastUpdateID
	b.time = time.Time{}
	b.state = bridging
	buffered := b.buffer
	b.buffer = nil
	for i := range buffered {
		if err := b.apply(&buffered[i]); err != nil {
			// Keep the unapplied events for the next snapshot.
			b.buffer = append(buffered[:0], buffered[i:]...)
			clear(buffered[len(b.buffer):])
			return err
		}
	}
	clear(buffered)
	b.buffer = buffered[:0]
	return nil
}

// loadSide copies snapshot levels into a side, in the side's order. Zero
// quantities (which a snapshot should not have) are left out.
func loadSide(dst, src []market.Level, desc bool) []market.Level {
	for _, l := range src {
		if l.Quantity != 0 {
			dst = append(dst, l)
		}
	}
	slices.SortStableFunc(dst, func(x, y market.Level) int {
		if desc {
			return cmp.Compare(y.Key, x.Key)
		}
		return cmp.Compare(x.Key, y.Key)
	})
	// A snapshot listing a price twice keeps the later entry, as an update
	// would.
	out := dst[:0]
	for _, l := range dst {
		if n := len(out); n > 0 && out[n-1].Key == l.Key {
			out[n-1] = l
			continue
		}
		out = append(out, l)
	}
	return out
}

func (b *Book) apply(u *market.DepthUpdate) error {
	gap := func() error {
		err := &GapError{Market: b.market, Symbol: b.symbol, BookID: b.lastID,
			Bridge: b.state == bridging, FirstID: u.FirstID, FinalID: u.FinalID,
			PrevFinalID: u.PrevFinalID}
		b.Reset()
		b.buffer = append(b.buffer, u.Clone())
		return err
	}
	if b.market.Futures() {
		switch {
		case b.state == bridging && u.FinalID < b.lastID,
			b.state == synced && u.FinalID <= b.lastID:
			b.stale++
			return nil // already in the book
		case b.state == bridging && u.FirstID > b.lastID,
			b.state == synced && u.PrevFinalID != b.lastID:
			return gap()
		}
	} else {
		switch {
		case u.FinalID <= b.lastID:
			b.stale++
			return nil // already in the book
		case b.state == bridging && u.FirstID > b.lastID+1,
			b.state == synced && u.FirstID != b.lastID+1:
			return gap()
		}
	}
	for _, l := range u.Bids {
		var pos int
		b.bids, pos = setLevel(b.bids, l, false)
		b.touched(pos)
	}
	for _, l := range u.Asks {
		var pos int
		b.asks, pos = setLevel(b.asks, l, true)
		b.touched(pos)
	}
	b.lastID = u.FinalID
	b.time = u.EventTime
	b.state = synced
	b.applied++
	return nil
}

// setLevel sets or, for a zero quantity, removes one level of a side
// sorted with the best price last (ascending for bids, descending for
// asks). It returns the side and the position from the best (0) of the
// level it changed, or noChange when it changed none (removing a price
// the side does not hold).
func setLevel(side []market.Level, l market.Level, desc bool) ([]market.Level, int) {
	i, found := slices.BinarySearchFunc(side, l.Key, func(x market.Level, key int64) int {
		switch {
		case x.Key == key:
			return 0
		case (x.Key < key) != desc:
			return -1
		}
		return 1
	})
	// Position from the best: the level at i, or (inserted) the one
	// that goes in before the len(side)-i levels after i.
	pos := len(side) - 1 - i
	switch {
	case l.Quantity == 0 && found:
		return slices.Delete(side, i, i+1), pos
	case l.Quantity == 0:
		return side, noChange
	case found:
		if side[i] == l {
			return side, noChange
		}
		side[i] = l
		return side, pos
	}
	return slices.Insert(side, i, l), pos + 1
}

// BestBid returns the highest bid.
func (b *Book) BestBid() (market.Level, bool) { return best(b.bids) }

// BestAsk returns the lowest ask.
func (b *Book) BestAsk() (market.Level, bool) { return best(b.asks) }

func best(side []market.Level) (market.Level, bool) {
	if len(side) == 0 {
		return market.Level{}, false
	}
	return side[len(side)-1], true
}

// Depth returns how many levels each side holds.
func (b *Book) Depth() (bids, asks int) { return len(b.bids), len(b.asks) }

// AppendPoints appends the top n levels of each side as `book` points
// (tags side and level, 0 = best; fields price and quantity) stamped with
// time t, bids first. Publish only a Synced book.
func (b *Book) AppendPoints(dst []sluice.Point, n int, t, received time.Time) []sluice.Point {
	dst = market.AppendBookSide(dst, b.market, b.symbol, market.SideBid, b.bids[max(0, len(b.bids)-n):], true, t, received)
	return market.AppendBookSide(dst, b.market, b.symbol, market.SideAsk, b.asks[max(0, len(b.asks)-n):], true, t, received)
}
