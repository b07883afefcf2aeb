package rest

import (
	"sync"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// The endpoints the source calls, below each market's REST path (Path).
const (
	Depth = "depth"
	// AggTrades backfills the aggTrade stream, and finds ids by time.
	AggTrades = "aggTrades"
	// HistoricalTrades backfills the trade stream; futures require an
	// API key for it.
	HistoricalTrades = "historicalTrades"
)

// Weight is an endpoint's request weight, as Binance documents it
// (depth's depends on the limit asked for).
func Weight(m market.Market, endpoint string, limit int) int {
	switch endpoint {
	case Depth:
		if m.Futures() {
			switch {
			case limit <= 50:
				return 2
			case limit <= 100:
				return 5
			case limit <= 500:
				return 10
			}
			return 20
		}
		switch {
		case limit <= 100:
			return 5
		case limit <= 500:
			return 25
		case limit <= 1000:
			return 50
		}
		return 250
	case AggTrades:
		if m.Futures() {
			return 20
		}
		return 4
	case HistoricalTrades:
		if m.Futures() {
			return 20
		}
		return 25
	}
	return 1
}

// PageLimit is the most rows one request of a trades endpoint returns.
func PageLimit(m market.Market, endpoint string) int {
	if endpoint == HistoricalTrades && m.Futures() {
		return 500
	}
	return 1000
}

// SnapshotLimit is the depth of the REST snapshot a local book starts
// from: deep enough that the emitted levels stay filled when the price
// moves (five times bookDepth), in the cheapest weight tier that holds
// it. Levels past the snapshot are known only once they change.
func SnapshotLimit(bookDepth int) int {
	switch n := 5 * bookDepth; {
	case n <= 100:
		return 100
	case n <= 500:
		return 500
	}
	return 1000
}

// Path is where a market's endpoint lives below the REST base URL.
func Path(m market.Market, endpoint string) string {
	switch m {
	case market.USDM:
		return "/fapi/v1/" + endpoint
	case market.COINM:
		return "/dapi/v1/" + endpoint
	}
	return "/api/v3/" + endpoint
}

// weightGate keeps this feed's REST weight under its limit. Binance counts
// weight per IP in one-minute windows aligned to the minute and reports
// the window's total in X-MBX-USED-WEIGHT-1M; the gate reserves a
// request's weight before sending, takes the header as the truth after,
// and when the next request would pass the limit it waits for the next
// window. A 429 or 418 blocks every request until its Retry-After.
type weightGate struct {
	mu     sync.Mutex
	limit  int
	window int64 // unix minute that used counts
	used   int
	until  time.Time // no request before this (Retry-After)
}

// reserve takes weight w at now, or says how long to wait first.
func (g *weightGate) reserve(now time.Time, w int) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.until) {
		return g.until.Sub(now)
	}
	if m := now.Unix() / 60; m != g.window {
		g.window, g.used = m, 0
	}
	if g.used > 0 && g.used+w > g.limit {
		next := time.Unix((g.window+1)*60, 0)
		return next.Sub(now) + 100*time.Millisecond // past the exchange's clock skew
	}
	g.used += w
	return 0
}

// observe records the used weight an answer reported at now.
func (g *weightGate) observe(now time.Time, used int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Unix()/60 == g.window && used > g.used {
		g.used = used
	}
}

// block refuses requests until now+d.
func (g *weightGate) block(now time.Time, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := now.Add(d); t.After(g.until) {
		g.until = t
	}
}
