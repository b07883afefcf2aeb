package binance

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// Benchmarks of the hot path; PARSING.md records the figures. Run with
//
//	go test ./plugins/binance/ -run '^$' -bench . -benchmem

func fixtureLine(b *testing.B, file string, n int) []byte {
	b.Helper()
	lines := readLines(b, "testdata/frames/"+file)
	return lines[n-1]
}

func benchParse(b *testing.B, m Market, frame []byte) {
	p := NewParser(m)
	dst := make([]sluice.Point, 0, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, _, err = p.Parse(frame, testReceived, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTrade(b *testing.B) {
	benchParse(b, Spot, fixtureLine(b, "spot_trade.jsonl", 4))
}

func BenchmarkParseAggTrade(b *testing.B) {
	benchParse(b, USDM, fixtureLine(b, "usdm_aggTrade.jsonl", 8))
}

func BenchmarkParseBookTicker(b *testing.B) {
	benchParse(b, USDM, fixtureLine(b, "usdm_bookTicker.jsonl", 7))
}

func BenchmarkParseKline(b *testing.B) {
	benchParse(b, USDM, fixtureLine(b, "usdm_kline.jsonl", 6))
}

func BenchmarkParseTicker(b *testing.B) {
	benchParse(b, Spot, fixtureLine(b, "spot_24hrTicker.jsonl", 1))
}

// A 2025 spot diff-depth frame with 67 levels.
func BenchmarkParseDepthUpdate(b *testing.B) {
	benchParse(b, Spot, fixtureLine(b, "spot_depthUpdate.jsonl", 10))
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
	side := SideBuy
	if tr.Maker {
		side = SideSell
	}
	return append(dst, sluice.Point{
		Measurement: MeasTrades,
		Tags:        tagsSide(Spot, tr.Symbol, side),
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
		if dst, err = parseTradeEncodingJSON(frame, testReceived, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// The two trade parsers must agree, or the comparison means nothing.
func TestEncodingJSONTradeAgrees(t *testing.T) {
	for _, line := range readLines(t, "testdata/frames/spot_trade.jsonl") {
		want, _, err := NewParser(Spot).Parse(line, testReceived, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseTradeEncodingJSON(line, testReceived, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !got[0].Equal(&want[0]) {
			t.Errorf("encoding/json %+v\n fastjson %+v", got[0], want[0])
		}
	}
}

// BenchmarkReplay parses every frame of a recorded session and keeps its
// books: the whole per-message cost of a real mixed stream.
func BenchmarkReplay(b *testing.B) {
	files := sessionFiles(b)
	m, lines := readSession(b, files[0])
	for _, f := range files {
		if fm, fl := readSession(b, f); len(fl) > len(lines) {
			m, lines = fm, fl
		}
	}
	var frames [][]byte
	var bytes int64
	for _, l := range lines {
		if l.Src == "ws" {
			frames = append(frames, []byte(l.Raw))
			bytes += int64(len(l.Raw))
		}
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	p := NewParser(m)
	dst := make([]sluice.Point, 0, 64)
	n := 0
	for b.Loop() {
		books := map[string]*Book{}
		for _, f := range frames {
			var ev Event
			var err error
			dst, ev, err = p.Parse(f, testReceived, dst[:0])
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == EventDepthUpdate {
				bk := books[ev.Symbol]
				if bk == nil {
					bk = NewBook(m, ev.Symbol)
					// Start from an empty snapshot bridged by this event, so
					// the benchmark measures applying, not buffering.
					id := ev.Depth.FirstID
					if !m.futures() {
						id--
					}
					_ = bk.Snapshot(&DepthSnapshot{LastUpdateID: id})
					books[ev.Symbol] = bk
				}
				if err := bk.Apply(&ev.Depth); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
}
