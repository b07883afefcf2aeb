package wire

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Benchmarks of the hot path; PARSING.md records the figures. Run with
//
//	go test ./plugins/binance/ -run '^$' -bench . -benchmem

func fixtureLine(b *testing.B, file string, n int) []byte {
	b.Helper()
	lines := fixture.ReadLines(b, "testdata/frames/"+file)
	return lines[n-1]
}

func benchParse(b *testing.B, m market.Market, frame []byte) {
	p := NewParser(m)
	dst := make([]sluice.Point, 0, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, _, err = p.Parse(frame, fixture.Received, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTrade(b *testing.B) {
	benchParse(b, market.Spot, fixtureLine(b, "spot_trade.jsonl", 4))
}

func BenchmarkParseAggTrade(b *testing.B) {
	benchParse(b, market.USDM, fixtureLine(b, "usdm_aggTrade.jsonl", 8))
}

func BenchmarkParseBookTicker(b *testing.B) {
	benchParse(b, market.USDM, fixtureLine(b, "usdm_bookTicker.jsonl", 7))
}

func BenchmarkParseKline(b *testing.B) {
	benchParse(b, market.USDM, fixtureLine(b, "usdm_kline.jsonl", 6))
}

func BenchmarkParseTicker(b *testing.B) {
	benchParse(b, market.Spot, fixtureLine(b, "spot_24hrTicker.jsonl", 1))
}

// A 2025 spot diff-depth frame with 67 levels.
func BenchmarkParseDepthUpdate(b *testing.B) {
	benchParse(b, market.Spot, fixtureLine(b, "spot_depthUpdate.jsonl", 10))
}

// The alternative considered: encoding/json into structs that declare
// every case variant (without "M", encoding/json would store "M" into the
// field tagged "m": its key match is case-insensitive). It needs one pass
// for the envelope and one for the event.

type ejEnvelope struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

type ejTrade struct {
	Event     string `json:"e"`
	EventTime int64  `json:"E"`
	Symbol    string `json:"s"`
	TradeID   int64  `json:"t"`
	Price     string `json:"p"`
	Qty       string `json:"q"`
	BuyerID   int64  `json:"b"`
	SellerID  int64  `json:"a"`
	TradeTime int64  `json:"T"`
	Maker     bool   `json:"m"`
	Ignore    bool   `json:"M"`
}

func parseTradeEncodingJSON(frame []byte, received time.Time, dst []sluice.Point) ([]sluice.Point, error) {
	var env ejEnvelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return dst, err
	}
	var tr ejTrade
	if err := json.Unmarshal(env.Data, &tr); err != nil {
		return dst, err
	}
	if tr.Event != "trade" || tr.Symbol == "" {
		return dst, errors.New("not a trade")
	}
	price, err := strconv.ParseFloat(tr.Price, 64)
	if err != nil {
		return dst, err
	}
	qty, err := strconv.ParseFloat(tr.Qty, 64)
	if err != nil {
		return dst, err
	}
	side := market.SideBuy
	if tr.Maker {
		side = market.SideSell
	}
	return append(dst, sluice.Point{
		Measurement: market.MeasTrades,
		Tags:        tagsSide(market.Spot, tr.Symbol, side),
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(price)},
			{Key: "quantity", Value: sluice.Float(qty)},
			{Key: "trade_id", Value: sluice.Int(tr.TradeID)},
		},
		Time:     time.UnixMilli(tr.TradeTime).UTC(),
		Received: received,
	}), nil
}

func BenchmarkParseTradeEncodingJSON(b *testing.B) {
	frame := fixtureLine(b, "spot_trade.jsonl", 4)
	dst := make([]sluice.Point, 0, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = parseTradeEncodingJSON(frame, fixture.Received, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// The two trade parsers must agree, or the comparison means nothing.
func TestEncodingJSONTradeAgrees(t *testing.T) {
	for _, line := range fixture.ReadLines(t, "testdata/frames/spot_trade.jsonl") {
		want, _, err := NewParser(market.Spot).Parse(line, fixture.Received, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseTradeEncodingJSON(line, fixture.Received, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !got[0].Equal(&want[0]) {
			t.Errorf("encoding/json %+v\n fastjson %+v", got[0], want[0])
		}
	}
}
