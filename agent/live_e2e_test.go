package agent_test

// The live sink in the real agent, fed by the real binance plugin from
// the simulated exchange, asserted on what real clients receive.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
)

// A client with a valid token gets every trade the exchange generated for
// its symbol, in order and once, across a reconnect in the middle; a
// wrong signature, an expired token and a channel outside the claim are
// refused; a client that reads nothing is disconnected as slow while the
// fast client and SQLite miss nothing; /metrics and status show it.
func TestLiveEndToEnd(t *testing.T) {
	m := startMarket(t, 1000, "BTCUSDT", "ETHUSDT")
	dir := t.TempDir()
	addr := testagent.FreeAddr(t)
	a := testagent.Launch(t, testagent.WriteConfig(t, dir, "sinks:\n  db: {type: sqlite}\n"+
		liveSinkConfig(t, dir, "live", addr)+
		"feeds:\n"+m.feed("spot", "db", "live")))
	a.WaitFor(t, "live sink open", func(st agent.Status) bool { return testagent.Sink(st, "live").Name == "live" })

	const btc, eth = "trades:binance:spot:BTCUSDT", "trades:binance:spot:ETHUSDT"
	fast := livetest.NewClient(t, livetest.URL(addr), livetest.Token(t, liveSecret, "alice", time.Now().Add(time.Hour), "trades:binance:spot:*"), nil)
	fast.Subscribe(t, btc)
	if err := fast.Connect(); err != nil {
		t.Fatal(err)
	}
	fast.WaitFor(t, "subscribed", func() bool { return fast.HasEvent("subscribed: " + btc) })

	// Refused: another secret, an expired token, a channel outside the claim.
	wrong := livetest.NewClient(t, livetest.URL(addr), livetest.Token(t, strings.Repeat("x", 64), "mallory", time.Now().Add(time.Hour), "*"), nil)
	wrong.Subscribe(t, btc)
	wrong.Connect()
	expired := livetest.NewClient(t, livetest.URL(addr), livetest.Token(t, liveSecret, "bob", time.Now().Add(-time.Minute), "*"), nil)
	expired.Subscribe(t, btc)
	expired.Connect()
	narrow := livetest.NewClient(t, livetest.URL(addr), livetest.Token(t, liveSecret, "carol", time.Now().Add(time.Hour), eth), nil)
	narrow.Subscribe(t, btc)
	narrow.Subscribe(t, eth)
	narrow.Connect()
	wrong.WaitFor(t, "a wrong signature refused", func() bool { return wrong.HasEvent("disconnected: 3500") })
	expired.WaitFor(t, "an expired token refused", func() bool { return expired.HasEvent("error: ") })
	narrow.WaitFor(t, "a channel outside the claim refused", func() bool {
		return narrow.HasEvent("subscription error: "+btc) && narrow.HasEvent("subscribed: "+eth)
	})

	slow := livetest.SlowClient(t, livetest.URL(addr), livetest.Token(t, liveSecret, "dan", time.Now().Add(time.Hour), "*"), btc)

	m.run()
	fast.WaitFor(t, "the first trades", func() bool { return fast.Count(btc) >= 200 })
	// A forced reconnect while trades flow: the client gets what it
	// missed from the channel's history, then the live trades.
	if err := fast.Disconnect(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := fast.Connect(); err != nil {
		t.Fatal(err)
	}
	fast.WaitFor(t, "recovered", func() bool { return fast.HasEvent("subscribed: " + btc + " recovered=true") })
	// The slow client's socket and queue fill while trades flow.
	a.WaitFor(t, "the slow client disconnected", func(st agent.Status) bool {
		return liveStat(st, "live", "live_disconnects_total", "slow")+liveStat(st, "live", "live_disconnects_total", "write_error") >= 1
	})
	slow.Close()
	time.Sleep(time.Second)
	m.halt()

	want := m.tradeIDs("BTCUSDT")
	total := int64(len(want) + len(m.tradeIDs("ETHUSDT")))
	a.WaitForCount(t, `SELECT count(*) FROM trades`, total)
	fast.WaitFor(t, "every BTCUSDT trade", func() bool { return fast.Count(btc) >= len(want) })
	time.Sleep(300 * time.Millisecond) // a duplicate would have arrived by now
	sameIDs(t, "fast client", liveTradeIDs(t, fast, btc), want)
	db := testagent.OpenDB(t, a.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(DISTINCT trade_id) FROM trades WHERE symbol = 'BTCUSDT'`); n != int64(len(want)) {
		t.Errorf("SQLite holds %d BTCUSDT trades, want %d", n, len(want))
	}
	if n := narrow.Count(btc); n != 0 {
		t.Errorf("a channel outside the claim delivered %d trades", n)
	}
	if fast.HasEvent("reconnecting") {
		t.Errorf("the fast client was disconnected by the server: %v", fast.Events())
	}

	st, _ := a.Status(t)
	for reason, min := range map[string]float64{"invalid_token": 1, "token_expired": 1, "permission_denied": 1} {
		if got := liveStat(st, "live", "live_refused_total", reason); got < min {
			t.Errorf("refused %s = %v, want at least %v", reason, got, min)
		}
	}
	if got := liveStat(st, "live", "live_publications_total", ""); got < float64(total) {
		t.Errorf("publications = %v, want at least %d", got, total)
	}
	if s := testagent.Sink(st, "live"); s.MaxBytes != 8<<20 || s.Dropped["buffer_full"] != 0 {
		t.Errorf("live sink's buffer: max %d bytes, dropped %v; want 8 MiB (the type's default), none dropped", s.MaxBytes, s.Dropped)
	}

	resp, err := http.Get(a.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sluice_sink_live_clients{sink="live"}`,
		`sluice_sink_live_subscriptions{sink="live"}`,
		`sluice_sink_live_history_points{sink="live"}`,
		`sluice_sink_live_publications_total{sink="live"}`,
		`sluice_sink_live_sent_bytes_total{sink="live"}`,
		`sluice_sink_live_disconnects_total{reason="slow",sink="live"}`,
		`sluice_sink_live_refused_total{reason="invalid_token",sink="live"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	a.Stop(t)
}
