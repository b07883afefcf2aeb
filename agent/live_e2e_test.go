package agent_test

// The live sink in the real agent, fed by the real binance plugin from
// the simulated exchange, asserted on what real clients receive.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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
	fast := newLiveClient(t, addr, liveToken(t, liveSecret, "alice", time.Now().Add(time.Hour), "trades:binance:spot:*"))
	fast.subscribe(t, btc)
	if err := fast.Connect(); err != nil {
		t.Fatal(err)
	}
	fast.waitFor(t, "subscribed", func() bool { return fast.has("subscribed: " + btc) })

	// Refused: another secret, an expired token, a channel outside the claim.
	wrong := newLiveClient(t, addr, liveToken(t, strings.Repeat("x", 64), "mallory", time.Now().Add(time.Hour), "*"))
	wrong.subscribe(t, btc)
	wrong.Connect()
	expired := newLiveClient(t, addr, liveToken(t, liveSecret, "bob", time.Now().Add(-time.Minute), "*"))
	expired.subscribe(t, btc)
	expired.Connect()
	narrow := newLiveClient(t, addr, liveToken(t, liveSecret, "carol", time.Now().Add(time.Hour), eth))
	narrow.subscribe(t, btc)
	narrow.subscribe(t, eth)
	narrow.Connect()
	wrong.waitFor(t, "a wrong signature refused", func() bool { return wrong.has("disconnected: 3500") })
	expired.waitFor(t, "an expired token refused", func() bool { return expired.has("error: ") })
	narrow.waitFor(t, "a channel outside the claim refused", func() bool {
		return narrow.has("subscription error: "+btc) && narrow.has("subscribed: "+eth)
	})

	slow := liveSlowClient(t, addr, liveToken(t, liveSecret, "dan", time.Now().Add(time.Hour), "*"), btc)

	m.run()
	fast.waitFor(t, "the first trades", func() bool { return len(fast.pubs[btc]) >= 200 })
	// A forced reconnect while trades flow: the client gets what it
	// missed from the channel's history, then the live trades.
	if err := fast.Disconnect(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := fast.Connect(); err != nil {
		t.Fatal(err)
	}
	fast.waitFor(t, "recovered", func() bool { return fast.has("subscribed: " + btc + " recovered=true") })
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
	fast.waitFor(t, "every BTCUSDT trade", func() bool { return len(fast.pubs[btc]) >= len(want) })
	time.Sleep(300 * time.Millisecond) // a duplicate would have arrived by now
	sameIDs(t, "fast client", fast.tradeIDs(t, btc), want)
	db := testagent.OpenDB(t, a.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(DISTINCT trade_id) FROM trades WHERE symbol = 'BTCUSDT'`); n != int64(len(want)) {
		t.Errorf("SQLite holds %d BTCUSDT trades, want %d", n, len(want))
	}
	if n := narrow.count(btc); n != 0 {
		t.Errorf("a channel outside the claim delivered %d trades", n)
	}
	if fast.has("reconnecting") {
		t.Errorf("the fast client was disconnected by the server: %v", fast.events)
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

// liveSlowClient connects over a raw WebSocket with a tiny receive
// buffer, subscribes, and reads nothing more.
func liveSlowClient(t *testing.T, addr, tok, channel string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}).DialContext}
	conn, _, err := d.Dial("ws://"+addr+"/connection/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for i, cmd := range []string{
		fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, tok),
		fmt.Sprintf(`{"id":2,"subscribe":{"channel":%q}}`, channel),
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := conn.ReadMessage()
		if err != nil || !strings.Contains(string(msg), fmt.Sprintf(`"id":%d`, i+1)) || strings.Contains(string(msg), `"error"`) {
			t.Fatalf("reply %d: %s %v", i+1, msg, err)
		}
	}
	return conn
}
