package main

import (
	"bytes"
	"compress/gzip"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The ack proxy forwards writes and notes the newest trade id per symbol
// of those influxd acknowledged, and only of those, gzipped or not.
func TestAckProxyNotesAcknowledgedWrites(t *testing.T) {
	var got []string
	influxd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		got = append(got, r.URL.RequestURI())
		if strings.Contains(b.String(), "refuse") {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer influxd.Close()
	p := startAckProxy(influxd.URL)
	defer p.Close()

	write := func(body []byte, gzipped bool) int {
		req, _ := http.NewRequest(http.MethodPost, p.url()+"/api/v2/write?bucket=b&precision=ns", bytes.NewReader(body))
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	lines := "trades,exchange=binance,market=spot,side=buy,symbol=S0001USDT price=1.5,quantity=2,trade_id=41i 1700000000000041000\n" +
		"trades,exchange=binance,market=spot,side=sell,symbol=S0001USDT price=1.5,quantity=2,trade_id=42i 1700000000000042000\n" +
		"feed_events,feed=binance,kind=connect message=\"up\" 1700000000000000000\n" +
		"trades,exchange=binance,market=spot,side=buy,symbol=S0002USDT price=1,quantity=1,trade_id=7i 1700000000000007000\n"
	if code := write([]byte(lines), false); code != http.StatusNoContent {
		t.Fatalf("write answered %d", code)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("trades,exchange=binance,market=spot,side=buy,symbol=S0002USDT price=1,quantity=1,trade_id=9i 1700000000000009000\n"))
	zw.Close()
	if code := write(z.Bytes(), true); code != http.StatusNoContent {
		t.Fatalf("gzipped write answered %d", code)
	}
	refused := "trades,exchange=binance,market=spot,side=buy,symbol=S0001USDT price=1,quantity=1,trade_id=99i 1700000000000099000\nrefuse\n"
	if code := write([]byte(refused), false); code != http.StatusInternalServerError {
		t.Fatalf("refused write answered %d, want influxd's 500", code)
	}

	want := map[string]int64{"S0001USDT": 42, "S0002USDT": 9}
	if ids := p.maxIDs(); !maps.Equal(ids, want) {
		t.Errorf("acknowledged ids %v, want %v", ids, want)
	}
	if len(got) != 3 || got[0] != "/api/v2/write?bucket=b&precision=ns" {
		t.Errorf("influxd saw %q, want 3 writes with the agent's query", got)
	}
}
