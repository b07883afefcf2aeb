package binancesim

import "time"

// kline is the candle of one symbol and interval being built from trades.
type kline struct {
	iv         string
	t, T       int64 // open time, close time (ms, inclusive)
	f, L       int64 // first and last trade id; -1 when it has none
	o, h, l, c int64
	v, V       int64 // volume and taker-buy volume, lots
	q, Q       float64
	n          int64
	closed     *kline // the candle that ended, not yet pushed
}

// intervalMs are the fixed-length kline intervals; 1M is calendar months.
var intervalMs = map[string]int64{
	"1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
	"30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
	"6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
	"3d": 259_200_000, "1w": 604_800_000, "1M": 0,
}

// spotIntervals and futuresIntervals are the kline_<interval> streams each
// market offers.
var (
	spotIntervals    = []string{"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
	futuresIntervals = spotIntervals[1:]
)

// openTime returns the bounds of the interval holding ms. Weeks start on
// Monday 00:00 UTC, months on the 1st.
func openTime(iv string, ms int64) (t, T int64) {
	d := intervalMs[iv]
	switch iv {
	case "1M":
		tm := time.UnixMilli(ms).UTC()
		start := time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start.UnixMilli(), start.AddDate(0, 1, 0).UnixMilli() - 1
	case "1w":
		const monday = 4 * 86_400_000 // 1970-01-05 was the first Monday
		t = floorDiv(ms-monday, d)*d + monday
		return t, t + d - 1
	}
	t = floorDiv(ms, d) * d
	return t, t + d - 1
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// newKline opens the candle holding ms at price (the previous close).
func newKline(iv string, ms, price int64) *kline {
	t, T := openTime(iv, ms)
	return &kline{iv: iv, t: t, T: T, f: -1, L: -1, o: price, h: price, l: price, c: price}
}

// roll closes the candle if ms is past it and opens the next one.
func (k *kline) roll(ms int64) {
	if ms <= k.T {
		return
	}
	done := *k
	done.closed = nil
	k.closed = &done
	*k = *newKline(k.iv, ms, k.c)
	k.closed = &done
}

func (k *kline) add(s *symbol, tr *tradeRec, quote float64) {
	k.roll(tr.ms)
	if k.n == 0 {
		k.f, k.o, k.h, k.l = tr.id, tr.price, tr.price, tr.price
	}
	k.L, k.c = tr.id, tr.price
	k.h, k.l = max(k.h, tr.price), min(k.l, tr.price)
	k.v += tr.qty
	k.q += quote
	if !tr.buyerMaker { // the taker bought
		k.V += tr.qty
		k.Q += quote
	}
	k.n++
}

// klineFor returns the symbol's candle for an interval, building it from
// the trade history the first time the interval is asked for.
func (s *symbol) klineFor(iv string, nowMs int64) *kline {
	if k := s.klines[iv]; k != nil {
		return k
	}
	k := newKline(iv, nowMs, s.stats.last)
	for i := range s.trades.len() {
		tr := s.trades.at(i)
		if tr.ms >= k.t {
			k.add(s, &tr, s.quoteOf(tr.price, tr.qty))
		}
	}
	k.closed = nil
	s.klines[iv] = k
	return k
}
