package book

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// lv builds levels from "price:qty" pairs.
func lv(t testing.TB, pairs ...string) []market.Level {
	t.Helper()
	var out []market.Level
	for _, pq := range pairs {
		p, q, _ := strings.Cut(pq, ":")
		key, err := wire.ParsePriceKey(p)
		if err != nil {
			t.Fatal(err)
		}
		price, _ := strconv.ParseFloat(p, 64)
		qty, _ := strconv.ParseFloat(q, 64)
		out = append(out, market.Level{Key: key, Price: price, Quantity: qty})
	}
	return out
}

func upd(U, u, pu int64, bids, asks []market.Level) *market.DepthUpdate {
	return &market.DepthUpdate{Symbol: "BTCUSDT", EventTime: time.UnixMilli(u), FirstID: U, FinalID: u, PrevFinalID: pu, Bids: bids, Asks: asks}
}

// top renders the best n levels of each side as "bids | asks".
func top(b *Book, n int) string {
	var bids, asks []string
	for _, pt := range b.AppendPoints(nil, n, time.Time{}, time.Time{}) {
		side, _ := pt.Tag(market.TagSide)
		price, _ := pt.Field("price")
		qty, _ := pt.Field("quantity")
		s := fmt.Sprintf("%g:%g", price.Float(), qty.Float())
		if side == market.SideBid {
			bids = append(bids, s)
		} else {
			asks = append(asks, s)
		}
	}
	return strings.Join(bids, " ") + " | " + strings.Join(asks, " ")
}

func TestBookSpot(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	// Buffered before the snapshot: one stale, one bridging.
	for _, u := range []*market.DepthUpdate{
		upd(90, 100, 0, lv(t, "9:1"), nil),                     // u <= 100: in the snapshot
		upd(95, 105, 0, lv(t, "10:0", "9.5:2"), lv(t, "11:3")), // bridges 101
	} {
		if err := b.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	if b.Synced() {
		t.Fatal("synced before a snapshot")
	}
	snap := market.DepthSnapshot{LastUpdateID: 100, Bids: lv(t, "10:1", "8:1"), Asks: lv(t, "12:1", "11:1")}
	if err := b.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if !b.Synced() || b.LastUpdateID() != 105 {
		t.Fatalf("synced=%v id=%d", b.Synced(), b.LastUpdateID())
	}
	if got, want := top(b, 5), "9.5:2 8:1 | 11:3 12:1"; got != want {
		t.Errorf("book %q, want %q", got, want)
	}
	// Next event must start at 106.
	if err := b.Apply(upd(106, 110, 0, lv(t, "9.5:0"), lv(t, "10.5:1"))); err != nil {
		t.Fatal(err)
	}
	if got, want := top(b, 1), "8:1 | 10.5:1"; got != want {
		t.Errorf("book %q, want %q", got, want)
	}
	// A repeat is dropped quietly.
	if err := b.Apply(upd(106, 110, 0, lv(t, "1:1"), nil)); err != nil || top(b, 1) != "8:1 | 10.5:1" {
		t.Errorf("repeat: %v %s", err, top(b, 1))
	}
	// A hole: 111 missing.
	err := b.Apply(upd(112, 115, 0, nil, nil))
	var gap *GapError
	if !errors.Is(err, ErrGap) || !errors.As(err, &gap) || gap.BookID != 110 || gap.FirstID != 112 || gap.Bridge {
		t.Fatalf("gap: %v", err)
	}
	if b.Synced() || top(b, 1) != " | " {
		t.Errorf("book kept after a gap: %s", top(b, 1))
	}
	// Overlapping (U <= last < u but U != last+1) is a break too once
	// synced, per the documented U == previous u + 1.
	b2 := New(market.Spot, "BTCUSDT")
	_ = b2.Snapshot(&market.DepthSnapshot{LastUpdateID: 10})
	_ = b2.Apply(upd(5, 12, 0, nil, nil))
	if err := b2.Apply(upd(12, 14, 0, nil, nil)); !errors.Is(err, ErrGap) {
		t.Errorf("overlap: %v", err)
	}
	// Resync: the event that broke the sequence was kept, and a new
	// snapshot bridged by it restores the book.
	if n, _ := b.Buffered(); n != 1 {
		t.Fatalf("buffered %d after a gap, want the offending event", n)
	}
	if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 113, Bids: lv(t, "7:7"), Asks: lv(t, "13:1")}); err != nil {
		t.Fatal(err)
	}
	if !b.Synced() || b.LastUpdateID() != 115 {
		t.Errorf("after resync synced=%v id=%d", b.Synced(), b.LastUpdateID())
	}
}

func TestBookSpotSnapshotTooOld(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	_ = b.Apply(upd(50, 60, 0, nil, nil))
	_ = b.Apply(upd(61, 70, 0, nil, nil))
	err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 40})
	var gap *GapError
	if !errors.As(err, &gap) || !gap.Bridge || gap.BookID != 40 {
		t.Fatalf("old snapshot: %v", err)
	}
	if n, _ := b.Buffered(); n != 2 {
		t.Fatalf("buffered %d, want both events kept for the next snapshot", n)
	}
	if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 65}); err != nil || !b.Synced() || b.LastUpdateID() != 70 {
		t.Errorf("fresh snapshot: %v synced=%v id=%d", err, b.Synced(), b.LastUpdateID())
	}
}

func TestBookSpotSnapshotNewerThanBuffer(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	_ = b.Apply(upd(50, 60, 0, nil, nil))
	if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 64, Bids: lv(t, "1:1")}); err != nil {
		t.Fatal(err)
	}
	if b.Synced() {
		t.Error("synced without a bridging event")
	}
	// The next live event must bridge 65.
	if err := b.Apply(upd(66, 70, 0, nil, nil)); !errors.Is(err, ErrGap) {
		t.Errorf("non-bridging first event: %v", err)
	}
	b = New(market.Spot, "BTCUSDT")
	_ = b.Snapshot(&market.DepthSnapshot{LastUpdateID: 64})
	if err := b.Apply(upd(63, 70, 0, nil, nil)); err != nil || !b.Synced() {
		t.Errorf("bridging event: %v", err)
	}
}

func TestBookFutures(t *testing.T) {
	for _, m := range []market.Market{market.USDM, market.COINM} {
		t.Run(m.String(), func(t *testing.T) {
			b := New(m, "BTCUSDT")
			_ = b.Apply(upd(80, 99, 70, lv(t, "1:1"), nil))     // u < 100: dropped
			_ = b.Apply(upd(95, 100, 99, lv(t, "10:5"), nil))   // U <= 100 <= u: bridges
			_ = b.Apply(upd(101, 104, 100, nil, lv(t, "11:2"))) // pu == 100
			if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 100, Bids: lv(t, "10:1"), Asks: lv(t, "11:1", "12:1")}); err != nil {
				t.Fatal(err)
			}
			if !b.Synced() || b.LastUpdateID() != 104 || top(b, 2) != "10:5 | 11:2 12:1" {
				t.Fatalf("synced=%v id=%d book %s", b.Synced(), b.LastUpdateID(), top(b, 2))
			}
			// Futures ids are not consecutive: only pu links events.
			if err := b.Apply(upd(200, 300, 104, nil, lv(t, "11:0"))); err != nil {
				t.Fatal(err)
			}
			if bid, _ := b.BestBid(); bid.Price != 10 {
				t.Errorf("best bid %v", bid)
			}
			if ask, _ := b.BestAsk(); ask.Price != 12 {
				t.Errorf("best ask %v after removing 11", ask)
			}
			err := b.Apply(upd(301, 310, 299, nil, nil))
			var gap *GapError
			if !errors.As(err, &gap) || gap.PrevFinalID != 299 || gap.BookID != 300 {
				t.Fatalf("pu break: %v", err)
			}
			if !strings.Contains(gap.Error(), "pu=299") {
				t.Errorf("message %q", gap.Error())
			}
			// Bridging on futures: U <= lastUpdateId, not lastUpdateId+1.
			b = New(m, "BTCUSDT")
			_ = b.Snapshot(&market.DepthSnapshot{LastUpdateID: 100})
			if err := b.Apply(upd(101, 105, 100, nil, nil)); !errors.Is(err, ErrGap) {
				t.Errorf("U = lastUpdateId+1 must not bridge a futures snapshot: %v", err)
			}
		})
	}
}

func TestBookLevels(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	_ = b.Snapshot(&market.DepthSnapshot{LastUpdateID: 1,
		Bids: lv(t, "1:1", "3:3", "2:2", "2.0:9", "4:0"), // out of order, a repeat, a zero
		Asks: lv(t, "7:7", "5:5", "6:6")})
	if got, want := top(b, 10), "3:3 2:9 1:1 | 5:5 6:6 7:7"; got != want {
		t.Errorf("book %q, want %q", got, want)
	}
	_ = b.Apply(upd(2, 2, 0, lv(t, "2.00000000:0", "0.5:1", "3.5:1", "9:0"), lv(t, "5.5:1", "7:0")))
	if got, want := top(b, 10), "3.5:1 3:3 1:1 0.5:1 | 5:5 5.5:1 6:6"; got != want {
		t.Errorf("book %q, want %q", got, want)
	}
	if got, want := top(b, 2), "3.5:1 3:3 | 5:5 5.5:1"; got != want {
		t.Errorf("top 2 %q, want %q", got, want)
	}
	pts := b.AppendPoints(nil, 1, time.UnixMilli(5), time.UnixMilli(6))
	if len(pts) != 2 {
		t.Fatalf("%d points", len(pts))
	}
	fixture.CheckPoints(t, market.Spot, pts)
	if lvl, _ := pts[1].Tag(market.TagLevel); lvl != "0" || !pts[1].Time.Equal(time.UnixMilli(5)) {
		t.Errorf("point %+v", pts[1])
	}
	if d1, d2 := b.Depth(); d1 != 4 || d2 != 3 {
		t.Errorf("depth %d/%d", d1, d2)
	}
}

func TestBookBufferBound(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	for i := range int64(MaxBuffered + 10) {
		_ = b.Apply(upd(i*2+1, i*2+2, 0, nil, nil))
	}
	if waiting, evicted := b.Buffered(); waiting != MaxBuffered || evicted != 10 {
		t.Errorf("buffered %d evicted %d", waiting, evicted)
	}
	// The snapshot predates the oldest kept event: resync needed.
	if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 2}); !errors.Is(err, ErrGap) {
		t.Errorf("snapshot older than the buffer: %v", err)
	}
}

func TestBookBufferCopies(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	bids := lv(t, "1:1")
	_ = b.Apply(upd(1, 2, 0, bids, nil))
	bids[0] = lv(t, "9:9")[0] // the parser reuses its slices
	_ = b.Snapshot(&market.DepthSnapshot{LastUpdateID: 1})
	if got := top(b, 1); got != "1:1 | " {
		t.Errorf("book %q: the buffered event shared the caller's slice", got)
	}
}

func TestBookWrongSymbol(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	u := upd(1, 2, 0, nil, nil)
	u.Symbol = "ETHUSDT"
	if err := b.Apply(u); err == nil || errors.Is(err, ErrGap) {
		t.Errorf("applying another symbol's event: %v", err)
	}
}

// Dropping one depth frame of a recorded session must surface as a gap on
// that symbol, and only there: the replay test's "no gaps" is only worth
// something if a real gap is caught.
func TestReplayDetectsDroppedFrame(t *testing.T) {
	for _, path := range fixture.SessionFiles(t) {
		m, lines := fixture.ReadSession(t, path)
		t.Run(strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".replay.jsonl"), func(t *testing.T) {
			p := wire.NewParser(m)
			books := map[string]*Book{}
			var victim string
			dropped, gaps := false, 0
			for _, l := range lines {
				switch l.Src {
				case "rest":
					sym := l.URL[strings.Index(l.URL, "symbol=")+len("symbol=") : strings.Index(l.URL, "&limit")]
					s, err := wire.ParseDepthSnapshot([]byte(l.Raw))
					if err != nil {
						t.Fatal(err)
					}
					if books[sym] == nil {
						books[sym] = New(m, sym)
					}
					if err := books[sym].Snapshot(&s); err != nil {
						t.Fatal(err)
					}
				case "ws":
					_, ev, err := p.Parse([]byte(l.Raw), l.Received(), nil)
					if err != nil || ev.Kind != wire.EventDepthUpdate {
						continue
					}
					b := books[ev.Symbol]
					if b == nil {
						b = New(m, ev.Symbol)
						books[ev.Symbol] = b
					}
					if !dropped && b.Synced() {
						victim, dropped = ev.Symbol, true
						continue
					}
					if err := b.Apply(&ev.Depth); err != nil {
						if !errors.Is(err, ErrGap) || ev.Symbol != victim {
							t.Errorf("unexpected %v", err)
						}
						gaps++
					}
				}
			}
			if !dropped || gaps != 1 {
				t.Errorf("dropped a %s frame: %d gaps reported, want 1", victim, gaps)
			}
		})
	}
}

// TestChangedWithin: a change is reported for the top n levels exactly
// when it is among them (so a deep change does not publish the top
// again), and never missed when the top n render differently.
func TestChangedWithin(t *testing.T) {
	b := New(market.Spot, "BTCUSDT")
	if err := b.Apply(upd(101, 101, 0, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(&market.DepthSnapshot{LastUpdateID: 100,
		Bids: lv(t, "10:1", "9:1", "8:1", "7:1"), Asks: lv(t, "11:1", "12:1", "13:1", "14:1")}); err != nil {
		t.Fatal(err)
	}
	if !b.Synced() || !b.ChangedWithin(1) {
		t.Fatal("a loaded book is not reported changed")
	}
	b.ClearChanged()
	id := int64(101)
	for _, tc := range []struct {
		name       string
		bids, asks []market.Level
		shallowest int // first n with ChangedWithin(n); 0: none
	}{
		{"4th bid's quantity", lv(t, "7:2"), nil, 4},
		{"a bid behind the worst", lv(t, "6:1"), nil, 5},
		{"a new best bid", lv(t, "10.5:1"), nil, 1},
		{"the 2nd bid removed", lv(t, "10:0"), nil, 2},
		{"a price not in the book removed", lv(t, "3:0"), nil, 0},
		{"the best ask's same quantity", nil, lv(t, "11:1"), 0},
		{"3rd ask and 5th bid", lv(t, "6:0"), lv(t, "13:5"), 3},
		{"the best ask removed", nil, lv(t, "11:0"), 1},
	} {
		before := map[int]string{}
		for n := 1; n <= 6; n++ {
			before[n] = top(b, n)
		}
		id++
		if err := b.Apply(upd(id, id, 0, tc.bids, tc.asks)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := 1; n <= 6; n++ {
			want := tc.shallowest != 0 && n >= tc.shallowest
			if got := b.ChangedWithin(n); got != want {
				t.Errorf("%s: ChangedWithin(%d) = %v, want %v", tc.name, n, got, want)
			}
			if top(b, n) != before[n] && !b.ChangedWithin(n) {
				t.Errorf("%s: the top %d changed (%s -> %s) unreported", tc.name, n, before[n], top(b, n))
			}
		}
		b.ClearChanged()
	}
	// A gap empties the book: changed until a new snapshot is published.
	if err := b.Apply(upd(id+5, id+5, 0, nil, nil)); !errors.Is(err, ErrGap) {
		t.Fatalf("no gap: %v", err)
	}
	if !b.ChangedWithin(1) {
		t.Error("a reset book is not reported changed")
	}
}
