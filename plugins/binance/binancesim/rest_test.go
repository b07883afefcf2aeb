package binancesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

func firstSymbol(srv *Server, m market.Market) string { return srv.Symbols(m)[0] }

// TestRESTBodies checks the depth, aggTrades and trades bodies of every
// market against the real ones, their consistency with the generator, and
// the weight headers.
func TestRESTBodies(t *testing.T) {
	tpl := templates(t)
	srv := manual(t, Options{TradeRate: 500})
	srv.Advance(2 * time.Second)
	for _, m := range marketsAll() {
		t.Run(m.String(), func(t *testing.T) {
			sym := firstSymbol(srv, m)
			base := srv.RESTURL(m) + restPrefix(m)
			used := 0
			check := func(resp *http.Response, w int) {
				t.Helper()
				used += w
				if got := resp.Header.Get("X-MBX-USED-WEIGHT-1M"); got != strconv.Itoa(used) {
					t.Errorf("X-MBX-USED-WEIGHT-1M %q, want %d", got, used)
				}
				if got := resp.Header.Get("X-MBX-USED-WEIGHT"); (m == market.Spot) != (got != "") {
					t.Errorf("X-MBX-USED-WEIGHT %q on %s", got, m)
				}
			}

			resp, body := get(t, base+"depth?symbol="+sym+"&limit=5")
			if resp.StatusCode != 200 {
				t.Fatalf("depth: %d %s", resp.StatusCode, body)
			}
			check(resp, weight(m, "depth", 5))
			if got, want := shape(t, body), shape(t, tpl[m.String()+"/restDepth"]); got != want {
				t.Errorf("depth shape\n got %s\nwant %s", got, want)
			}
			snap, err := wire.ParseDepthSnapshot(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Bids) != 5 || len(snap.Asks) != 5 || snap.Bids[0].Price >= snap.Asks[0].Price ||
				!slices.IsSortedFunc(snap.Bids, func(a, b market.Level) int { return int(b.Key - a.Key) }) ||
				!slices.IsSortedFunc(snap.Asks, func(a, b market.Level) int { return int(a.Key - b.Key) }) {
				t.Errorf("depth levels %+v %+v", snap.Bids, snap.Asks)
			}

			aggs := srv.AggTrades(m, sym)
			from := aggs[len(aggs)/2].ID
			resp, body = get(t, fmt.Sprintf("%saggTrades?symbol=%s&fromId=%d&limit=3", base, sym, from))
			check(resp, weight(m, "aggTrades", 3))
			var gotAggs []struct {
				A int64  `json:"a"`
				P string `json:"p"`
				F int64  `json:"f"`
				L int64  `json:"l"`
			}
			if err := json.Unmarshal(body, &gotAggs); err != nil || len(gotAggs) != 3 {
				t.Fatalf("aggTrades %s: %v", body, err)
			}
			for i, a := range gotAggs {
				w := aggs[len(aggs)/2+i]
				if a.A != w.ID || a.P != w.Price || a.F != w.FirstTradeID || a.L != w.LastTradeID {
					t.Errorf("aggTrades[%d] = %+v, generated %+v", i, a, w)
				}
			}
			if want, ok := tpl[m.String()+"/restAggTrades"]; ok {
				if got, exp := shape(t, body), shape(t, want); got != exp {
					t.Errorf("aggTrades shape\n got %s\nwant %s", got, exp)
				}
			}
			p := wire.NewParser(m)
			if _, ids, err := p.ParseAggTrades(sym, body, time.Now(), nil); err != nil || len(ids) != 3 {
				t.Errorf("parser on aggTrades: %v %v", ids, err)
			}

			trades := srv.Trades(m, sym)
			resp, body = get(t, fmt.Sprintf("%shistoricalTrades?symbol=%s&fromId=%d&limit=2", base, sym, trades[3].ID))
			check(resp, weight(m, "historicalTrades", 2))
			var gotTrades []map[string]any
			if err := json.Unmarshal(body, &gotTrades); err != nil || len(gotTrades) != 2 {
				t.Fatalf("historicalTrades %s: %v", body, err)
			}
			if int64(gotTrades[0]["id"].(float64)) != trades[3].ID || gotTrades[1]["price"] != trades[4].Price {
				t.Errorf("historicalTrades %s, generated %+v", body, trades[3:5])
			}
			resp, body = get(t, base+"trades?symbol="+sym+"&limit=1")
			check(resp, weight(m, "trades", 1))
			if err := json.Unmarshal(body, &gotTrades); err != nil || int64(gotTrades[0]["id"].(float64)) != trades[len(trades)-1].ID {
				t.Errorf("trades %s, newest generated %d", body, trades[len(trades)-1].ID)
			}

			for _, tc := range []struct {
				query, want string
			}{
				{"depth", `{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}`},
				{"depth?symbol=NOPE&limit=5", `{"code":-1121,"msg":"Invalid symbol."}`},
			} {
				resp, body := get(t, base+tc.query)
				if resp.StatusCode != 400 || string(body) != tc.want {
					t.Errorf("%s: %d %s", tc.query, resp.StatusCode, body)
				}
			}
			resp, body = get(t, base+"ping")
			if string(body) != "{}" {
				t.Errorf("ping %s", body)
			}
			resp, body = get(t, base+"exchangeInfo")
			var info struct {
				Symbols []struct{ Symbol string }
			}
			if err := json.Unmarshal(body, &info); err != nil || len(info.Symbols) != 2 || info.Symbols[0].Symbol != sym {
				t.Errorf("exchangeInfo %s", body)
			}
		})
	}
}

// TestRESTWeightLimit runs an IP past its weight: 429 with Retry-After,
// then 418 (banned) for going on.
func TestRESTWeightLimit(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC)
	srv := manual(t, Options{WeightLimit: 12, BanDuration: 2 * time.Minute, Now: func() time.Time { return now }})
	url := srv.RESTURL(market.Spot) + "/api/v3/depth?symbol=BTCUSDT&limit=5" // weight 5
	var codes []int
	var last *http.Response
	for range 4 {
		resp, _ := get(t, url)
		codes = append(codes, resp.StatusCode)
		last = resp
		if resp.StatusCode == 429 {
			if got := resp.Header.Get("Retry-After"); got != "30" {
				t.Errorf("429 Retry-After %q, want 30 (the rest of the minute)", got)
			}
		}
	}
	if !slices.Equal(codes, []int{200, 200, 429, 418}) {
		t.Fatalf("status codes %v", codes)
	}
	if got := last.Header.Get("Retry-After"); got != "120" {
		t.Errorf("418 Retry-After %q, want 120", got)
	}
	// The ban outlives the minute.
	now = now.Add(time.Minute)
	if resp, _ := get(t, url); resp.StatusCode != 418 {
		t.Errorf("banned IP next minute: %d", resp.StatusCode)
	}
	srv.ResetWeights()
	if resp, _ := get(t, url); resp.StatusCode != 200 {
		t.Errorf("after ResetWeights: %d", resp.StatusCode)
	}
	if st := srv.Stats(); st.REST429 != 1 || st.REST418 != 2 {
		t.Errorf("stats %+v", st)
	}
}
