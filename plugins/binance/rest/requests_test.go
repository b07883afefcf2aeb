package rest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// exchangeREST answers the three endpoints the source calls, as Binance
// does, and records each request's path and query.
type exchangeREST struct {
	mu       sync.Mutex
	requests []string
}

func (e *exchangeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r.URL.Path+"?"+r.URL.RawQuery)
	e.mu.Unlock()
	switch endpoint := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]; endpoint {
	case Depth:
		fmt.Fprint(w, `{"lastUpdateId":5,"bids":[["1.5","2"]],"asks":[["1.6","3"],["1.7","4"]]}`)
	case AggTrades:
		fmt.Fprint(w, `[{"a":7,"p":"1.5","q":"2","f":10,"l":11,"T":1000,"m":true}]`)
	case HistoricalTrades:
		fmt.Fprint(w, `[{"id":9,"price":"1.5","qty":"2","time":1000,"isBuyerMaker":false},{"id":10,"price":"1.6","qty":"1","time":1001,"isBuyerMaker":true}]`)
	default:
		http.NotFound(w, r)
	}
}

// Each request asks the market's endpoint for what the source needs, and
// parses the answer into what the source keeps.
func TestRequests(t *testing.T) {
	ctx := context.Background()
	e := &exchangeREST{}
	spot, _ := newTestREST(t, e, market.Spot)
	usdm, _ := newTestREST(t, e, market.USDM)

	snap, err := spot.Snapshot(ctx, "BTCUSDT", 500)
	if err != nil || snap.LastUpdateID != 5 || len(snap.Bids) != 1 || len(snap.Asks) != 2 {
		t.Fatalf("Snapshot: %+v, %v", snap, err)
	}

	pts, ids, err := usdm.TradesFrom(ctx, wire.NewParser(market.USDM), HistoricalTrades, "BTCUSDT", 9)
	if err != nil || len(pts) != 2 || len(ids) != 2 || ids[0] != 9 || ids[1] != 10 {
		t.Fatalf("TradesFrom: %d points, ids %v, %v", len(pts), ids, err)
	}
	if pts[0].Measurement != market.MeasTrades || !pts[0].Received.Equal(usdm.now()) {
		t.Errorf("TradesFrom: point %+v, want a trades point received at the client's now", pts[0])
	}

	start := time.UnixMilli(1_700_000_000_123)
	pts, ids, err = spot.FirstAggTrade(ctx, wire.NewParser(market.Spot), "ETHUSDT", start, start.Add(time.Hour-time.Millisecond))
	if err != nil || len(pts) != 1 || len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("FirstAggTrade: %d points, ids %v, %v", len(pts), ids, err)
	}
	if v, _ := pts[0].Field("first_trade_id"); pts[0].Measurement != market.MeasAggTrades || v.Int() != 10 {
		t.Errorf("FirstAggTrade: point %+v", pts[0])
	}

	want := []string{
		"/api/v3/depth?limit=500&symbol=BTCUSDT",
		"/fapi/v1/historicalTrades?fromId=9&limit=500&symbol=BTCUSDT",
		"/api/v3/aggTrades?endTime=1700003600122&limit=1&startTime=1700000000123&symbol=ETHUSDT",
	}
	if strings.Join(e.requests, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(e.requests, "\n"), strings.Join(want, "\n"))
	}
}
