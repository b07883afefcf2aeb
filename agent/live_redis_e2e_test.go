package agent_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testredis"
)

// Two agents share a real Redis: agent a ingests the feed, agent b only
// serves. A client of b gets every trade a ingested, as a client of a
// does, in order and once; a client that moves from a to b in the middle
// recovers on b what it missed.
func TestLiveRedisTwoAgents(t *testing.T) {
	r := testredis.Start(t)
	m := startMarket(t, 300, "BTCUSDT")
	redis := "redis: {address: " + r.Addr + "}"
	dirA, dirB := t.TempDir(), t.TempDir()
	addrA, addrB := testagent.FreeAddr(t), testagent.FreeAddr(t)
	a := testagent.Launch(t, testagent.WriteConfig(t, dirA, "sinks:\n  db: {type: sqlite}\n"+
		liveSinkConfig(t, dirA, "live", addrA, redis)+"feeds:\n"+m.feed("spot", "db", "live")))
	b := testagent.Launch(t, testagent.WriteConfig(t, dirB, "sinks:\n"+liveSinkConfig(t, dirB, "live", addrB, redis)+"feeds: {}\n"))
	for _, ag := range []*testagent.Agent{a, b} {
		ag.WaitFor(t, "live sink open", func(st agent.Status) bool { return testagent.Sink(st, "live").Name == "live" })
	}

	const btc = "trades:binance:spot:BTCUSDT"
	tok := liveToken(t, liveSecret, "kim", time.Now().Add(time.Hour), "*")
	onA, onB := newLiveClient(t, addrA, tok), newLiveClient(t, addrB, tok)
	// mover dials a, then b.
	var target atomic.Value
	target.Store(addrA)
	mover := newLiveClient(t, addrA, tok)
	mover.Client.Close()
	mover.Client = centrifuge.NewJsonClient("ws://live/connection/websocket", centrifuge.Config{
		Token: tok,
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target.Load().(string))
		},
	})
	t.Cleanup(mover.Client.Close)
	mover.OnDisconnected(func(e centrifuge.DisconnectedEvent) { mover.event("disconnected") })
	for _, c := range []*liveClient{onA, onB, mover} {
		c.subscribe(t, btc)
		if err := c.Connect(); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, "subscribed", func() bool { return c.has("subscribed: " + btc) })
	}

	m.run()
	mover.waitFor(t, "trades on a", func() bool { return len(mover.pubs[btc]) >= 100 })
	mover.Disconnect()
	mover.waitFor(t, "disconnected", func() bool { return mover.has("disconnected") })
	time.Sleep(500 * time.Millisecond)
	target.Store(addrB)
	mover.Connect()
	mover.waitFor(t, "recovered on b", func() bool { return mover.has("subscribed: " + btc + " recovered=true") })
	time.Sleep(time.Second)
	m.halt()

	want := m.tradeIDs("BTCUSDT")
	a.WaitForCount(t, `SELECT count(*) FROM trades`, int64(len(want)))
	for name, c := range map[string]*liveClient{"client of a": onA, "client of b": onB, "client moved from a to b": mover} {
		c.waitFor(t, name+": every trade", func() bool { return len(c.pubs[btc]) >= len(want) })
	}
	time.Sleep(300 * time.Millisecond)
	for name, c := range map[string]*liveClient{"client of a": onA, "client of b": onB, "client moved from a to b": mover} {
		sameIDs(t, name, c.tradeIDs(t, btc), want)
	}
	a.Stop(t)
	b.Stop(t)
}
