package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// restTradesBodies are historicalTrades answers in each market's shape:
// spot (Binance's documented example), USD-M and COIN-M (as the simulator
// writes them from the recorded key sets).
var restTradesBodies = map[market.Market]string{
	market.Spot:  `[{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}]`,
	market.USDM:  `[{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"8000.00","time":1499865549590,"isBuyerMaker":true}]`,
	market.COINM: `[{"id":28457,"price":"4.00000100","qty":"12","baseQty":"2.99999925","time":1499865549590,"isBuyerMaker":true}]`,
}

// ParseTrades yields the point the trade stream yields for the same
// trade: same measurement, tags, fields and time.
func TestParseTradesMatchesStream(t *testing.T) {
	stream := `{"e":"trade","E":1499865549591,"s":"BNBBTC","t":28457,"p":"4.00000100","q":"12.00000000","T":1499865549590,"m":true,"M":true}`
	for m, body := range restTradesBodies {
		want, _, err := NewParser(m).Parse([]byte(stream), fixture.Received, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, ids, err := NewParser(m).ParseTrades("BNBBTC", []byte(body), fixture.Received, nil)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if len(got) != 1 || len(ids) != 1 || ids[0] != 28457 {
			t.Fatalf("%v: %d points, ids %v", m, len(got), ids)
		}
		if !got[0].Equal(&want[0]) {
			t.Errorf("%v: REST point\n  %+v\nstream point\n  %+v", m, got[0], want[0])
		}
	}
}

func TestParseTradesErrors(t *testing.T) {
	p := NewParser(market.Spot)
	dst := []sluice.Point{{Measurement: "kept"}}
	for _, body := range []string{
		``, `{}`, `[1]`,
		`[{"price":"1","qty":"1","time":1,"isBuyerMaker":true}]`,
		`[{"id":1,"price":"NaN","qty":"1","time":1,"isBuyerMaker":true}]`,
		`[{"id":1,"price":"1","qty":"1","time":1,"isBuyerMaker":"yes"}]`,
		`[{"id":1,"price":"1","qty":"1","time":1,"isBuyerMaker":true},{"id":2}]`,
	} {
		out, ids, err := p.ParseTrades("X", []byte(body), time.Time{}, dst)
		if !errors.Is(err, ErrFrame) || len(out) != 1 || ids != nil {
			t.Errorf("%s: %d points, ids %v, error %v; want ErrFrame and dst as it came", body, len(out), ids, err)
		}
	}
	if _, _, err := p.ParseTrades("", []byte(restTradesBodies[market.Spot]), time.Time{}, nil); err == nil {
		t.Error("no symbol: no error")
	}
}

// FuzzParseTrades: a REST trades body yields one point per id, or an
// error and nothing.
func FuzzParseTrades(f *testing.F) {
	for _, b := range restTradesBodies {
		f.Add([]byte(b))
	}
	p := NewParser(market.COINM)
	f.Fuzz(func(t *testing.T, body []byte) {
		pts, ids, err := p.ParseTrades("BTCUSD_PERP", body, fixture.Received, nil)
		if err != nil {
			if len(pts) != 0 || ids != nil {
				t.Fatalf("error %v with %d points", err, len(pts))
			}
			return
		}
		if len(pts) != len(ids) {
			t.Fatalf("%d points for %d ids", len(pts), len(ids))
		}
		fixture.CheckPoints(t, market.COINM, pts)
	})
}
