package binancesim

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

func TestDrop(t *testing.T) {
	srv := manual(t, Options{})
	var cs []*client
	for range 4 {
		cs = append(cs, dial(t, srv.WSURL(market.Spot)+"/ws/btcusdt@trade"))
	}
	if !srv.DropConn(1, Close{Code: 1001, Reason: "bye"}) || srv.DropConn(99, Abrupt) {
		t.Fatal("DropConn")
	}
	var ce *websocket.CloseError
	if err := cs[0].closeErr(); !errors.As(err, &ce) || ce.Code != 1001 || ce.Text != "bye" {
		t.Fatalf("DropConn: %v", err)
	}
	ids := srv.DropRandom(1, ClosePolicy)
	if len(ids) != 1 || ids[0] == 1 {
		t.Fatalf("DropRandom dropped %v", ids)
	}
	if err := cs[ids[0]-1].closeErr(); closeCode(err) != 1008 {
		t.Fatalf("DropRandom: %v", err)
	}
	if n := srv.DropAll(Abrupt); n < 2 {
		t.Fatalf("DropAll dropped %d", n)
	}
	for i, c := range cs {
		if uint64(i+1) == ids[0] || i == 0 {
			continue
		}
		if err := c.closeErr(); closeCode(err) != websocket.CloseAbnormalClosure {
			t.Fatalf("DropAll: %v", err)
		}
	}
	if st := srv.Stats(); st.Dropped < 4 || st.Accepted != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerShutdown(t *testing.T) {
	srv := manual(t, Options{})
	raw := dial(t, srv.WSURL(market.Spot)+"/ws")
	comb := dial(t, srv.WSURL(market.USDM)+"/stream?streams=btcusdt@trade")
	if n := srv.ServerShutdown(100 * time.Millisecond); n != 2 {
		t.Fatalf("told %d connections", n)
	}
	ms := epoch.UnixMilli()
	for _, tc := range []struct {
		c    *client
		m    market.Market
		want string
	}{
		{raw, market.Spot, `{"e":"serverShutdown","E":` + itoa(ms) + `}`},
		{comb, market.USDM, `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":` + itoa(ms) + `}}`},
	} {
		f := tc.c.read()
		if string(f) != tc.want {
			t.Errorf("got %s, want %s", f, tc.want)
		}
		if _, ev, err := wire.ParseFrame(tc.m, f, time.Now(), nil); err != nil || ev.Kind != wire.EventServerShutdown {
			t.Errorf("parser: %v %v", ev.Kind, err)
		}
		if err := tc.c.closeErr(); closeCode(err) != 1001 {
			t.Errorf("after shutdown: %v", err)
		}
	}
}

func TestStall(t *testing.T) {
	srv := manual(t, Options{Markets: []market.Market{market.Spot}, TradeRate: 500})
	c := dial(t, srv.WSURL(market.Spot)+"/stream?streams=btcusdt@trade/btcusdt@aggTrade")
	count := func() (trades, aggs int, lastTrade int64) {
		for _, f := range c.drain() {
			_, ev, err := wire.ParseFrame(market.Spot, f, time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == wire.EventTrade {
				trades++
				lastTrade = ev.ID
			} else {
				aggs++
			}
		}
		return
	}
	srv.Advance(time.Second)
	tr, ag, last := count()
	if tr == 0 || ag == 0 {
		t.Fatalf("before the stall: %d trades %d aggTrades", tr, ag)
	}
	srv.Stall(market.Spot, "btcusdt@trade", time.Hour)
	srv.Advance(time.Second)
	if tr, ag, _ := count(); tr != 0 || ag == 0 {
		t.Fatalf("stalled: %d trades %d aggTrades", tr, ag)
	}
	srv.Stall(market.Spot, "btcusdt@trade", 0) // resume
	srv.Advance(time.Second)
	c.write(`{"method":"LIST_SUBSCRIPTIONS","id":100}`)
	var first int64
	for f := c.read(); !isControl(f); f = c.read() {
		_, ev, _ := wire.ParseFrame(market.Spot, f, time.Now(), nil)
		if ev.Kind == wire.EventTrade && first == 0 {
			first = ev.ID
		}
	}
	if first <= last+1 {
		t.Fatalf("after the stall the trades resume at %d, last before %d: no frames were lost", first, last)
	}
}

func TestRefuseHandshakes(t *testing.T) {
	srv := manual(t, Options{})
	url := srv.WSURL(market.COINM) + "/ws/btcusd_perp@trade"
	srv.RefuseHandshakes(2, 429, 5*time.Second)
	for range 2 {
		_, resp, err := websocketDial(url)
		if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5" {
			t.Fatalf("refused handshake: %v %+v", err, resp)
		}
	}
	srv.RefuseHandshakes(1, 403, 0)
	if _, resp, _ := websocketDial(url); resp == nil || resp.StatusCode != 403 {
		t.Fatalf("403: %+v", resp)
	}
	dial(t, url)
	if st := srv.Stats(); st.Handshakes != 4 || st.Refused != 3 || st.Accepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExpireConns(t *testing.T) {
	srv := manual(t, Options{})
	c := dial(t, srv.WSURL(market.Spot)+"/ws")
	if n := srv.ExpireConns(); n != 1 {
		t.Fatalf("expired %d", n)
	}
	if err := c.closeErr(); closeCode(err) != 1001 {
		t.Fatalf("got %v", err)
	}
	if st := srv.Stats(); st.Expired != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReplay serves a recorded session: the frames byte for byte on the
// combined endpoint, unwrapped on a raw one, and the recorded snapshots at
// the REST depth path.
func TestReplay(t *testing.T) {
	path := filepath.Join(sharedDir, "recorded", "spot_2021-10-12_cryptofeed.replay.jsonl")
	rp, err := LoadReplay(path)
	if err != nil {
		if strings.Contains(err.Error(), "no such file") {
			t.Skipf("recorded session absent: %v", err)
		}
		t.Fatal(err)
	}
	frames := rp.Frames()
	if rp.Market != market.Spot || len(frames) != 265 || len(rp.Streams) != 16 {
		t.Fatalf("loaded %v, %d frames, %d streams", rp.Market, len(frames), len(rp.Streams))
	}
	srv := manual(t, Options{Replay: rp, ReplaySpeed: 0})
	_, body := get(t, srv.RESTURL(market.Spot)+"/api/v3/depth?symbol=NKNUSDT&limit=1000")
	if string(body) != string(rp.Snapshots("NKNUSDT")[0]) {
		t.Fatalf("first snapshot %.100s", body)
	}
	c := dial(t, srv.WSURL(market.Spot)+"/stream?streams="+strings.Join(rp.Streams, "/"))
	for i, want := range frames {
		if got := c.read(); string(got) != string(want) {
			t.Fatalf("frame %d:\n got %s\nwant %s", i, got, want)
		}
	}
	snaps := rp.Snapshots("NKNUSDT")
	_, body = get(t, srv.RESTURL(market.Spot)+"/api/v3/depth?symbol=NKNUSDT&limit=1000")
	if string(body) != string(snaps[len(snaps)-1]) {
		t.Fatalf("snapshot after the replay %.100s", body)
	}
	raw := dial(t, srv.WSURL(market.Spot)+"/ws/nknusdt@depth@100ms")
	var want [][]byte
	for _, f := range frames {
		if strings.HasPrefix(string(f), `{"stream":"nknusdt@depth@100ms"`) {
			want = append(want, f[len(`{"stream":"nknusdt@depth@100ms","data":`):len(f)-1])
		}
	}
	for i, w := range want {
		if got := raw.read(); string(got) != string(w) {
			t.Fatalf("raw frame %d: %s", i, got)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
