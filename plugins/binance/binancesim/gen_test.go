package binancesim

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/book"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// TestTradeIDs checks the ground truth itself: contiguous trade and
// aggregate ids, each aggregate covering the trades of one price, many
// trades per millisecond at a high rate, and determinism by seed.
func TestTradeIDs(t *testing.T) {
	opts := Options{TradeRate: 3000, Seed: 7}
	srv := manual(t, opts)
	srv.Advance(2 * time.Second)
	for _, m := range marketsAll() {
		for _, sym := range srv.Symbols(m) {
			trades, aggs := srv.Trades(m, sym), srv.AggTrades(m, sym)
			if len(trades) < 100 || int64(len(trades)) != srv.TradeCount(m, sym) {
				t.Fatalf("%s %s: %d trades, TradeCount %d", m, sym, len(trades), srv.TradeCount(m, sym))
			}
			perMs := map[time.Time]int{}
			busiest := 0
			for i, tr := range trades {
				if i > 0 && tr.ID != trades[i-1].ID+1 {
					t.Fatalf("%s %s: trade %d after %d", m, sym, tr.ID, trades[i-1].ID)
				}
				perMs[tr.Time]++
				busiest = max(busiest, perMs[tr.Time])
			}
			if busiest < 3 {
				t.Errorf("%s %s: at most %d trades share a millisecond", m, sym, busiest)
			}
			next := trades[0].ID
			for i, a := range aggs {
				if i > 0 && a.ID != aggs[i-1].ID+1 {
					t.Fatalf("%s %s: aggTrade %d after %d", m, sym, a.ID, aggs[i-1].ID)
				}
				if a.FirstTradeID != next || a.LastTradeID < a.FirstTradeID {
					t.Fatalf("%s %s: aggTrade %+v, next trade %d", m, sym, a, next)
				}
				for id := a.FirstTradeID; id <= a.LastTradeID; id++ {
					tr := trades[id-trades[0].ID]
					if tr.Price != a.Price || !tr.Time.Equal(a.Time) || tr.BuyerMaker != a.BuyerMaker {
						t.Fatalf("%s %s: trade %+v in aggTrade %+v", m, sym, tr, a)
					}
				}
				next = a.LastTradeID + 1
			}
			if next != trades[len(trades)-1].ID+1 {
				t.Fatalf("%s %s: aggTrades end at trade %d, trades at %d", m, sym, next-1, trades[len(trades)-1].ID)
			}
		}
	}
	// Same seed, same market.
	again := manual(t, opts)
	again.Advance(2 * time.Second)
	if !reflect.DeepEqual(again.Trades(market.USDM, "ETHUSDT"), srv.Trades(market.USDM, "ETHUSDT")) {
		t.Error("same seed, different trades")
	}
	// The history is bounded; the count is not.
	small := manual(t, Options{TradeRate: 3000, HistoryCap: 100})
	small.Advance(time.Second)
	if n, c := len(small.Trades(market.Spot, "BTCUSDT")), small.TradeCount(market.Spot, "BTCUSDT"); n != 100 || c <= 100 {
		t.Errorf("HistoryCap 100: %d trades kept of %d", n, c)
	}
}

// TestStreamsMatchGroundTruth: every generated trade and aggregate trade
// reaches a subscriber once, in order, as generated.
func TestStreamsMatchGroundTruth(t *testing.T) {
	for _, m := range marketsAll() {
		srv := manual(t, Options{Markets: []market.Market{m}, TradeRate: 2000})
		sym := firstSymbol(srv, m)
		lower := strings.ToLower(sym)
		c := dial(t, srv.WSURL(m)+"/stream?streams="+lower+"@trade/"+lower+"@aggTrade")
		srv.Advance(1500 * time.Millisecond)
		var ids, aggIDs []int64
		var prices []string
		for _, f := range c.drain() {
			_, ev, err := wire.ParseFrame(m, f, time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			switch ev.Kind {
			case wire.EventTrade:
				ids = append(ids, ev.ID)
				var d struct {
					Data struct{ P string } `json:"data"`
				}
				json.Unmarshal(f, &d)
				prices = append(prices, d.Data.P)
			case wire.EventAggTrade:
				aggIDs = append(aggIDs, ev.ID)
			}
		}
		trades, aggs := srv.Trades(m, sym), srv.AggTrades(m, sym)
		if len(ids) != len(trades) || len(aggIDs) != len(aggs) {
			t.Fatalf("%s: streamed %d trades %d aggTrades, generated %d %d", m, len(ids), len(aggIDs), len(trades), len(aggs))
		}
		for i, tr := range trades {
			if ids[i] != tr.ID || prices[i] != tr.Price {
				t.Fatalf("%s: streamed trade %d %s, generated %+v", m, ids[i], prices[i], tr)
			}
		}
		for i, a := range aggs {
			if aggIDs[i] != a.ID {
				t.Fatalf("%s: streamed aggTrade %d, generated %d", m, aggIDs[i], a.ID)
			}
		}
	}
}

// bookTick is the top of the book a bookTicker frame reports.
type bookTick struct{ b, bq, a, aq float64 }

func parseBookTicker(t *testing.T, data []byte) (int64, bookTick) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	f := func(k string) float64 {
		x, err := strconv.ParseFloat(raw[k].(string), 64)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	return int64(raw["u"].(float64)), bookTick{f("b"), f("B"), f("a"), f("A")}
}

// TestDepthRebuildsBook rebuilds each market's book from a REST snapshot
// and the diff stream with the binance package's Book: the stream is
// continuous (spot U == u+1, futures pu == u) at both speeds, the
// snapshot bridges, and the book agrees with every bookTicker of the same
// update id.
func TestDepthRebuildsBook(t *testing.T) {
	for _, m := range marketsAll() {
		t.Run(m.String(), func(t *testing.T) {
			srv := manual(t, Options{Markets: []market.Market{m}, TradeRate: 300})
			sym := firstSymbol(srv, m)
			lower := strings.ToLower(sym)
			slow := lower + "@depth"
			if m != market.Spot {
				slow = lower + "@depth@500ms"
			}
			c := dial(t, srv.WSURL(m)+"/stream?streams="+lower+"@depth@100ms/"+slow+"/"+lower+"@bookTicker")
			srv.Advance(350 * time.Millisecond)
			_, body := get(t, srv.RESTURL(m)+restPrefix(m)+"depth?symbol="+sym+"&limit=1000")
			snap, err := wire.ParseDepthSnapshot(body)
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(5 * time.Second)

			b := book.New(m, sym)
			if err := b.Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			ticks := map[int64]bookTick{}
			prev := map[string]int64{}
			matched, events := 0, 0
			for _, f := range c.drain() {
				env := unwrap(t, f)
				if strings.HasSuffix(env.Stream, "@bookTicker") {
					u, bt := parseBookTicker(t, env.Data)
					ticks[u] = bt
					continue
				}
				_, ev, err := wire.ParseFrame(m, f, time.Now(), nil)
				if err != nil || ev.Kind != wire.EventDepthUpdate {
					t.Fatalf("%s: %v %v", f, ev.Kind, err)
				}
				d := ev.Depth
				if p, ok := prev[env.Stream]; ok {
					if m == market.Spot && d.FirstID != p+1 || m != market.Spot && d.PrevFinalID != p {
						t.Fatalf("%s: U=%d u=%d pu=%d after u=%d", env.Stream, d.FirstID, d.FinalID, d.PrevFinalID, p)
					}
				}
				prev[env.Stream] = d.FinalID
				if env.Stream == slow {
					continue
				}
				events++
				if err := b.Apply(&d); err != nil {
					t.Fatal(err)
				}
				if !b.Synced() {
					continue
				}
				if bt, ok := ticks[b.LastUpdateID()]; ok {
					bid, _ := b.BestBid()
					ask, _ := b.BestAsk()
					if got := (bookTick{bid.Price, bid.Quantity, ask.Price, ask.Quantity}); got != bt {
						t.Fatalf("book at %d: %+v, bookTicker %+v", b.LastUpdateID(), got, bt)
					}
					matched++
				}
			}
			if events < 30 || matched < 10 || len(prev) != 2 {
				t.Fatalf("%d diff events, %d bookTicker matches, streams %v", events, matched, prev)
			}
		})
	}
}

// TestInjectDepthGap loses one diff event: the stream breaks once and the
// Book reports ErrGap.
func TestInjectDepthGap(t *testing.T) {
	for _, m := range []market.Market{market.Spot, market.COINM} {
		srv := manual(t, Options{Markets: []market.Market{m}, TradeRate: 300})
		sym := firstSymbol(srv, m)
		c := dial(t, srv.WSURL(m)+"/ws/"+strings.ToLower(sym)+"@depth@100ms")
		srv.Advance(time.Second)
		_, body := get(t, srv.RESTURL(m)+restPrefix(m)+"depth?symbol="+sym+"&limit=1000")
		snap, _ := wire.ParseDepthSnapshot(body)
		if !srv.InjectDepthGap(m, sym) {
			t.Fatal("InjectDepthGap: no such symbol")
		}
		srv.Advance(time.Second)
		b := book.New(m, sym)
		b.Snapshot(&snap)
		gaps := 0
		for _, f := range c.drain() {
			_, ev, err := wire.ParseFrame(m, f, time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Apply(&ev.Depth); errors.Is(err, book.ErrGap) {
				gaps++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if gaps != 1 {
			t.Fatalf("%s: %d gaps, want 1", m, gaps)
		}
	}
}

// TestKlinesAggregateTrades checks every closed 1s candle against the
// trades generated in its second.
func TestKlinesAggregateTrades(t *testing.T) {
	srv := manual(t, Options{Markets: []market.Market{market.Spot}, TradeRate: 400})
	c := dial(t, srv.WSURL(market.Spot)+"/ws/btcusdt@kline_1s")
	srv.Advance(4500 * time.Millisecond)
	trades := srv.Trades(market.Spot, "BTCUSDT")
	closed := 0
	for _, f := range c.drain() {
		// A map, not a struct: encoding/json would match "l" (low) to a
		// field for "L" (last trade id).
		var raw struct {
			K map[string]any `json:"k"`
		}
		if err := json.Unmarshal(f, &raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		num := func(key string) int64 { return int64(raw.K[key].(float64)) }
		k := struct{ T0, T1, F, L, N int64 }{num("t"), num("T"), num("f"), num("L"), num("n")}
		if raw.K["x"] != true {
			continue
		}
		closed++
		var in []Trade
		vol := 0.0
		for _, tr := range trades {
			if ms := tr.Time.UnixMilli(); ms >= k.T0 && ms <= k.T1 {
				in = append(in, tr)
				q, _ := strconv.ParseFloat(tr.Qty, 64)
				vol += q
			}
		}
		if len(in) == 0 || k.N != int64(len(in)) || k.F != in[0].ID || k.L != in[len(in)-1].ID ||
			raw.K["o"] != in[0].Price || raw.K["c"] != in[len(in)-1].Price {
			t.Fatalf("candle %s, %d trades in it from %+v", f, len(in), in)
		}
		hi, lo := in[0].Price, in[0].Price
		for _, tr := range in {
			p, _ := strconv.ParseFloat(tr.Price, 64)
			if h, _ := strconv.ParseFloat(hi, 64); p > h {
				hi = tr.Price
			}
			if l, _ := strconv.ParseFloat(lo, 64); p < l {
				lo = tr.Price
			}
		}
		v, _ := strconv.ParseFloat(raw.K["v"].(string), 64)
		if raw.K["h"] != hi || raw.K["l"] != lo || v < vol*(1-1e-9) || v > vol*(1+1e-9) {
			t.Fatalf("candle %s: high %s low %s volume %v", f, hi, lo, vol)
		}
	}
	if closed != 4 {
		t.Fatalf("%d closed candles in 4.5 s, want 4", closed)
	}
}

// TestRealTime runs the generator on the wall clock (Run) and reads live
// trades.
func TestRealTime(t *testing.T) {
	srv := Start(t, Options{Markets: []market.Market{market.USDM}, TradeRate: 500, Tick: 5 * time.Millisecond})
	c := dial(t, srv.WSURL(market.USDM)+"/ws/btcusdt@trade")
	var last int64
	for i := range 20 {
		_, ev, err := wire.ParseFrame(market.USDM, c.read(), time.Now(), nil)
		if err != nil || ev.Kind != wire.EventTrade || (i > 0 && ev.ID != last+1) {
			t.Fatalf("frame %d: %v %v id %d after %d", i, ev.Kind, err, ev.ID, last)
		}
		last = ev.ID
	}
}
