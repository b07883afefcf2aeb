package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

func parseOne(t *testing.T, m market.Market, frame string) ([]sluice.Point, Event) {
	t.Helper()
	pts, ev, err := NewParser(m).Parse([]byte(frame), fixture.Received, nil)
	if err != nil {
		t.Fatalf("Parse(%s): %v", frame, err)
	}
	return pts, ev
}

func field(t *testing.T, pt sluice.Point, key string) sluice.Value {
	t.Helper()
	v, ok := pt.Field(key)
	if !ok {
		t.Fatalf("%s point has no field %s: %v", pt.Measurement, key, pt.Fields)
	}
	return v
}

func tag(t *testing.T, pt sluice.Point, key string) string {
	t.Helper()
	v, ok := pt.Tag(key)
	if !ok {
		t.Fatalf("%s point has no tag %s: %v", pt.Measurement, key, pt.Tags)
	}
	return v
}

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// Keys that differ only by case carry different data. Each case below puts
// the variants in both orders and with values that would show a mix-up.
func TestCaseVariantKeys(t *testing.T) {
	t.Run("trade t/T m/M e/E", func(t *testing.T) {
		for _, frame := range []string{
			`{"e":"trade","E":1000,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","T":2000,"m":true,"M":false}`,
			`{"M":false,"T":2000,"m":true,"t":7,"E":1000,"e":"trade","s":"BTCUSDT","p":"1.5","q":"2"}`,
		} {
			pts, ev := parseOne(t, market.Spot, frame)
			pt := pts[0]
			if ev.Kind != EventTrade || ev.ID != 7 || !ev.Time.Equal(ms(1000)) {
				t.Errorf("%s: event %+v", frame, ev)
			}
			if id := field(t, pt, "trade_id").Int(); id != 7 {
				t.Errorf("%s: trade_id %d, want t=7", frame, id)
			}
			if !pt.Time.Equal(ms(2000)) {
				t.Errorf("%s: time %v, want T=2000", frame, pt.Time)
			}
			if side := tag(t, pt, market.TagSide); side != market.SideSell {
				t.Errorf("%s: side %s, want sell (m=true: the buyer made, the seller took)", frame, side)
			}
		}
		pts, _ := parseOne(t, market.Spot, `{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":false,"M":true}`)
		if side := tag(t, pts[0], market.TagSide); side != market.SideBuy {
			t.Errorf("m=false M=true: side %s, want buy", side)
		}
	})
	t.Run("bookTicker b/B a/A", func(t *testing.T) {
		pts, _ := parseOne(t, market.USDM, `{"e":"bookTicker","u":5,"s":"X","B":"20","b":"1.1","A":"40","a":"1.2","T":1,"E":3}`)
		want := map[string]float64{"bid_price": 1.1, "bid_qty": 20, "ask_price": 1.2, "ask_qty": 40}
		for k, v := range want {
			if got := field(t, pts[0], k).Float(); got != v {
				t.Errorf("%s = %v, want %v", k, got, v)
			}
		}
		if !pts[0].Time.Equal(ms(3)) {
			t.Errorf("time %v, want E=3 (not T=1)", pts[0].Time)
		}
	})
	t.Run("kline t/T v/V q/Q", func(t *testing.T) {
		pts, _ := parseOne(t, market.Spot, `{"e":"kline","E":9,"s":"X","k":{"T":1999,"t":1000,"s":"X","i":"1M","V":"1","v":"2","Q":"3","q":"4","o":"1","c":"1","h":"1","l":"1","n":5,"x":true,"B":"0"}}`)
		pt := pts[0]
		if !pt.Time.Equal(ms(1000)) {
			t.Errorf("time %v, want open time t=1000", pt.Time)
		}
		if v := field(t, pt, "volume").Float(); v != 2 {
			t.Errorf("volume %v, want v=2", v)
		}
		if v := field(t, pt, "quote_volume").Float(); v != 4 {
			t.Errorf("quote_volume %v, want q=4", v)
		}
		if iv := tag(t, pt, market.TagInterval); iv != "1M" {
			t.Errorf("interval %q, want 1M (a month, not 1m)", iv)
		}
	})
	t.Run("markPrice p/P", func(t *testing.T) {
		pts, _ := parseOne(t, market.USDM, `{"e":"markPriceUpdate","E":1,"s":"X","P":"2","p":"1","i":"3","r":"0.1","T":77}`)
		pt := pts[0]
		if v := field(t, pt, "mark_price").Float(); v != 1 {
			t.Errorf("mark_price %v, want p=1", v)
		}
		if v := field(t, pt, "estimated_settle_price").Float(); v != 2 {
			t.Errorf("estimated_settle_price %v, want P=2", v)
		}
		if v := field(t, pt, "next_funding_time").Int(); v != 77 {
			t.Errorf("next_funding_time %v", v)
		}
	})
	t.Run("ticker q/Q p/P", func(t *testing.T) {
		pts, _ := parseOne(t, market.Spot, `{"e":"24hrTicker","E":1,"s":"X","Q":"9","q":"8","P":"7","p":"6","c":"1","o":"1","h":"1","l":"1","v":"1","n":3}`)
		pt := pts[0]
		for k, v := range map[string]float64{"quote_volume": 8, "last_qty": 9, "price_change": 6, "price_change_percent": 7} {
			if got := field(t, pt, k).Float(); got != v {
				t.Errorf("%s = %v, want %v", k, got, v)
			}
		}
	})
	t.Run("depthUpdate U/u", func(t *testing.T) {
		_, ev := parseOne(t, market.USDM, `{"e":"depthUpdate","E":1,"T":1,"s":"X","u":20,"U":10,"pu":9,"b":[],"a":[]}`)
		if d := ev.Depth; d.FirstID != 10 || d.FinalID != 20 || d.PrevFinalID != 9 {
			t.Errorf("depth ids %+v", d)
		}
	})
	t.Run("forceOrder S/s o/o", func(t *testing.T) {
		pts, _ := parseOne(t, market.USDM, `{"e":"forceOrder","E":1,"o":{"S":"SELL","s":"X","o":"LIMIT","f":"IOC","q":"1","p":"2","ap":"3","X":"FILLED","l":"1","z":"1","T":5}}`)
		pt := pts[0]
		if tag(t, pt, market.TagSide) != market.SideSell || tag(t, pt, market.TagSymbol) != "X" || field(t, pt, "order_type").Str() != "LIMIT" {
			t.Errorf("point %+v", pt)
		}
	})
}

// market.Spot bookTicker and partial depth carry no event time: their points are
// stamped with the receive time.
func TestMissingEventTime(t *testing.T) {
	pts, ev := parseOne(t, market.Spot, `{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}`)
	if !ev.Time.IsZero() || !pts[0].Time.Equal(fixture.Received) {
		t.Errorf("spot bookTicker: event time %v, point time %v, want receive time", ev.Time, pts[0].Time)
	}
	pts, ev = parseOne(t, market.Spot, `{"stream":"ethusdt@depth5@100ms","data":{"lastUpdateId":3,"bids":[["1","1"]],"asks":[["2","1"]]}}`)
	if ev.Kind != EventPartialDepth || ev.Symbol != "ETHUSDT" || len(pts) != 2 {
		t.Fatalf("spot partial depth: %+v %v", ev, pts)
	}
	for _, pt := range pts {
		if !pt.Time.Equal(fixture.Received) {
			t.Errorf("spot partial depth point time %v, want receive time", pt.Time)
		}
	}
	// Futures bookTicker has E, and E wins.
	pts, _ = parseOne(t, market.COINM, `{"u":1,"e":"bookTicker","s":"BTCUSD_PERP","ps":"BTCUSD","b":"1","B":"1","a":"2","A":"1","T":4,"E":5}`)
	if !pts[0].Time.Equal(ms(5)) {
		t.Errorf("futures bookTicker time %v, want E", pts[0].Time)
	}
}

// Futures frames carry keys Binance does not document (st, ps, nq, ap, and
// whatever comes next); they must change nothing.
func TestUnknownFieldsIgnored(t *testing.T) {
	plain := `{"e":"aggTrade","E":1,"a":5,"s":"BTCUSDT","p":"83091.70","q":"0.022","f":8,"l":9,"T":2,"m":false}`
	extra := `{"e":"aggTrade","E":1,"a":5,"s":"BTCUSDT","p":"83091.70","q":"0.022","nq":"0.022","f":8,"l":9,"T":2,"m":false,"st":1,"ps":"BTCUSDT","zz":{"deep":[1,{"a":"x"}]},"A":"nonsense"}`
	want, _ := parseOne(t, market.USDM, plain)
	got, _ := parseOne(t, market.USDM, extra)
	if !got[0].Equal(&want[0]) {
		t.Errorf("extra keys changed the point:\n got %+v\nwant %+v", got[0], want[0])
	}
	_, ev := parseOne(t, market.USDM, `{"e":"contractInfo","E":1,"s":"X"}`)
	if ev.Kind != EventUnknown || ev.Name != "contractInfo" {
		t.Errorf("unknown event type: %+v", ev)
	}
}

func TestEnvelopeAndBareAgree(t *testing.T) {
	bare := `{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","T":2,"m":true}`
	a, evA := parseOne(t, market.Spot, bare)
	b, evB := parseOne(t, market.Spot, `{"stream":"btcusdt@trade","data":`+bare+`}`)
	if !a[0].Equal(&b[0]) || evB.Stream != "btcusdt@trade" || evA.Stream != "" {
		t.Errorf("bare %+v %+v\nenveloped %+v %+v", a[0], evA, b[0], evB)
	}
}

// A futures partial-depth frame says "depthUpdate" like a diff; only the
// stream name tells them apart.
func TestPartialDepthByStream(t *testing.T) {
	data := `{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","1"]],"a":[["2","1"]]}`
	for _, tc := range []struct {
		stream string
		want   EventKind
	}{
		{"btcusdt@depth", EventDepthUpdate},
		{"btcusdt@depth@100ms", EventDepthUpdate},
		{"btcusdt@depth5", EventPartialDepth},
		{"btcusdt@depth20@100ms", EventPartialDepth},
	} {
		_, ev := parseOne(t, market.USDM, `{"stream":"`+tc.stream+`","data":`+data+`}`)
		if ev.Kind != tc.want {
			t.Errorf("%s: %v, want %v", tc.stream, ev.Kind, tc.want)
		}
		p := NewParser(market.USDM)
		p.Stream = tc.stream
		_, ev, err := p.Parse([]byte(data), fixture.Received, nil)
		if err != nil || ev.Kind != tc.want {
			t.Errorf("bare on %s: %v %v, want %v", tc.stream, ev.Kind, err, tc.want)
		}
	}
}

func TestMalformedFrames(t *testing.T) {
	trade := `{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","T":2,"m":true}`
	cases := map[string]string{
		"empty":              ``,
		"truncated":          trade[:len(trade)/2],
		"trailing garbage":   trade + `x`,
		"not an object":      `"trade"`,
		"number":             `42`,
		"no e":               `{"s":"BTCUSDT"}`,
		"missing symbol":     strings.Replace(trade, `"s":"BTCUSDT",`, ``, 1),
		"empty symbol":       strings.Replace(trade, `"BTCUSDT"`, `""`, 1),
		"symbol not string":  strings.Replace(trade, `"BTCUSDT"`, `7`, 1),
		"price not string":   strings.Replace(trade, `"1.5"`, `1.5`, 1),
		"price empty":        strings.Replace(trade, `"1.5"`, `""`, 1),
		"price garbage":      strings.Replace(trade, `"1.5"`, `"1.5x"`, 1),
		"price NaN":          strings.Replace(trade, `"1.5"`, `"NaN"`, 1),
		"price Inf":          strings.Replace(trade, `"1.5"`, `"Inf"`, 1),
		"price hex":          strings.Replace(trade, `"1.5"`, `"0x1p3"`, 1),
		"price exponent":     strings.Replace(trade, `"1.5"`, `"1e5"`, 1),
		"price dot only":     strings.Replace(trade, `"1.5"`, `"."`, 1),
		"price trailing dot": strings.Replace(trade, `"1.5"`, `"1."`, 1),
		"id fractional":      strings.Replace(trade, `"t":7`, `"t":7.5`, 1),
		"id string":          strings.Replace(trade, `"t":7`, `"t":"7"`, 1),
		"id overflow":        strings.Replace(trade, `"t":7`, `"t":99999999999999999999`, 1),
		"m not bool":         strings.Replace(trade, `"m":true`, `"m":1`, 1),
		"no trade time":      strings.Replace(trade, `"T":2,`, ``, 1),
		"envelope no data":   `{"stream":"btcusdt@trade"}`,
		"envelope bad data":  `{"stream":"btcusdt@trade","data":"x"}`,
		"stream not string":  `{"stream":1,"data":` + trade + `}`,
		"array of junk":      `[1,2]`,
		"array mixed":        `[` + trade + `,{"e":"24hrMiniTicker","E":1,"s":"X","c":"1","o":"1","h":"1","l":"1","v":"1","q":"1"}]`,
		"kline without k":    `{"e":"kline","E":1,"s":"X"}`,
		"kline bad open":     `{"e":"kline","E":1,"s":"X","k":{"t":1,"i":"1m","o":"x","c":"1","h":"1","l":"1","v":"1","q":"1","n":1,"x":true}}`,
		"depth bad level":    `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}`,
		"depth level object": `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[{"p":"1"}],"a":[]}`,
		"depth negative qty": `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","-1"]],"a":[]}`,
		"depth negative px":  `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["-1","1"]],"a":[]}`,
		"depth fine price":   `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["0.000000001","1"]],"a":[]}`,
		"depth U after u":    `{"e":"depthUpdate","E":1,"s":"X","U":3,"u":2,"b":[],"a":[]}`,
		"spot partial bare":  `{"lastUpdateId":1,"bids":[],"asks":[]}`,
		"forceOrder side":    `{"e":"forceOrder","E":1,"o":{"s":"X","S":"buy","o":"LIMIT","f":"IOC","q":"1","p":"1","ap":"1","X":"FILLED","l":"1","z":"1","T":1}}`,
		"error without code": `{"error":{"msg":"x"},"id":1}`,
		"result bad id":      `{"result":null,"id":"x"}`,
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			p := NewParser(market.Spot)
			dst := make([]sluice.Point, 1, 8)
			pts, _, err := p.Parse([]byte(frame), fixture.Received, dst)
			if err == nil {
				t.Fatalf("Parse(%s) = %v, want an error", frame, pts)
			}
			if !errors.Is(err, ErrFrame) {
				t.Errorf("error %v does not wrap ErrFrame", err)
			}
			if len(pts) != 1 {
				t.Errorf("on error dst grew to %d points", len(pts))
			}
			if full := pts[:cap(pts)]; full[1].Measurement != "" {
				t.Errorf("half-built point left in dst's spare capacity: %+v", full[1])
			}
			// The parser stays usable.
			if _, _, err := p.Parse([]byte(trade), fixture.Received, nil); err != nil {
				t.Errorf("parser broken after a bad frame: %v", err)
			}
		})
	}
	if _, _, err := NewParser(market.USDM).Parse([]byte(strings.Replace(trade, `"T":2`, `"T":2,"pu":1`, 1)), fixture.Received, nil); err != nil {
		t.Errorf("control: %v", err)
	}
	if _, _, err := ParseFrame(market.MarketInvalid, []byte(trade), fixture.Received, nil); err == nil {
		t.Error("ParseFrame accepted an invalid market")
	}
}

func TestZeroParser(t *testing.T) {
	var p Parser
	frame := []byte(`{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","T":2,"m":true}`)
	if _, _, err := p.Parse(frame, fixture.Received, nil); err == nil || errors.Is(err, ErrFrame) {
		t.Errorf("zero Parser: %v, want a usage error", err)
	}
	if _, _, err := p.ParseAggTrades("X", []byte(`[]`), fixture.Received, nil); err == nil {
		t.Error("zero Parser accepted a REST body")
	}
}

func TestParseFrameKeepsDepth(t *testing.T) {
	a := `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1"]],"a":[]}`
	b := `{"e":"depthUpdate","E":1,"s":"X","U":3,"u":4,"b":[["5","5"]],"a":[]}`
	_, evA, errA := ParseFrame(market.Spot, []byte(a), fixture.Received, nil)
	_, _, errB := ParseFrame(market.Spot, []byte(b), fixture.Received, nil)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if evA.Depth.Bids[0].Price != 1 {
		t.Errorf("a later ParseFrame overwrote an earlier event's levels: %+v", evA.Depth.Bids)
	}
}

func TestControlFrames(t *testing.T) {
	_, ev := parseOne(t, market.Spot, `{"result":["btcusdt@aggTrade"],"id":3}`)
	if ev.Kind != EventResult || ev.ID != 3 || ev.Result != `["btcusdt@aggTrade"]` {
		t.Errorf("result: %+v", ev)
	}
	_, ev = parseOne(t, market.Spot, `{"error":{"code":2,"msg":"Invalid request"},"id":2}`)
	if ev.Kind != EventError || ev.Err == nil || ev.Err.Code != 2 || ev.Err.ID != 2 || ev.Err.Msg != "Invalid request" {
		t.Errorf("error: %+v", ev)
	}
	_, ev = parseOne(t, market.Spot, `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}`)
	if ev.Kind != EventServerShutdown || !ev.Time.Equal(ms(1770123456789)) {
		t.Errorf("serverShutdown: %+v", ev)
	}
}

func TestParsePriceKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1e8, true},
		{"0.00000001", 1, true},
		{"0.35210000", 35210000, true},
		{"102571.17000000", 10257117000000, true},
		{"0.1", 1e7, true},
		{"0.10000000000", 1e7, true},
		{"92233720368.54775807", 9223372036854775807, true},
		{"92233720368.54775808", 0, false},
		{"0.000000001", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"1.2.3", 0, false},
		{" 1", 0, false},
	} {
		got, err := ParsePriceKey(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePriceKey(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMeasurements(t *testing.T) {
	names := map[string]bool{}
	for _, m := range market.Measurements() {
		if names[m.Name] {
			t.Errorf("%s declared twice", m.Name)
		}
		names[m.Name] = true
		if m.Name == market.MeasLiquidations {
			continue
		}
		for _, k := range []string{market.TagExchange, market.TagMarket, market.TagSymbol} {
			if !strings.Contains(" "+strings.Join(m.Unique, " ")+" ", " "+k+" ") {
				t.Errorf("%s: key %v lacks %s", m.Name, m.Unique, k)
			}
		}
	}
	want := map[string][]string{
		market.MeasTrades:    {"exchange", "market", "symbol", "trade_id", "time"},
		market.MeasAggTrades: {"exchange", "market", "symbol", "agg_id", "time"},
		market.MeasCandles:   {"exchange", "market", "symbol", "interval", "time"},
		market.MeasBook:      {"exchange", "market", "symbol", "side", "level", "time"},
	}
	for _, m := range market.Measurements() {
		if w, ok := want[m.Name]; ok && strings.Join(w, ",") != strings.Join(m.Unique, ",") {
			t.Errorf("%s: unique %v, want %v", m.Name, m.Unique, w)
		}
	}
}
