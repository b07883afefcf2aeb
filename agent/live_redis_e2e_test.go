package agent_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

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
	tok := livetest.Token(t, liveSecret, "kim", time.Now().Add(time.Hour), "*")
	onA, onB := livetest.NewClient(t, livetest.URL(addrA), tok, nil), livetest.NewClient(t, livetest.URL(addrB), tok, nil)
	// mover dials a, then b.
	var target atomic.Value
	target.Store(addrA)
	mover := livetest.NewClient(t, "ws://live/connection/websocket", tok, func(cfg *centrifuge.Config) {
		cfg.NetDialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target.Load().(string))
		}
	})
	for _, c := range []*livetest.Client{onA, onB, mover} {
		c.Subscribe(t, btc)
		if err := c.Connect(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(t, "subscribed", func() bool { return c.HasEvent("subscribed: " + btc) })
	}

	m.run()
	mover.WaitFor(t, "trades on a", func() bool { return mover.Count(btc) >= 100 })
	mover.Disconnect()
	mover.WaitFor(t, "disconnected", func() bool { return mover.HasEvent("disconnected") })
	time.Sleep(500 * time.Millisecond)
	target.Store(addrB)
	mover.Connect()
	mover.WaitFor(t, "recovered on b", func() bool { return mover.HasEvent("subscribed: " + btc + " recovered=true") })
	time.Sleep(time.Second)
	m.halt()

	want := m.tradeIDs("BTCUSDT")
	a.WaitForCount(t, `SELECT count(*) FROM trades`, int64(len(want)))
	for name, c := range map[string]*livetest.Client{"client of a": onA, "client of b": onB, "client moved from a to b": mover} {
		c.WaitFor(t, name+": every trade", func() bool { return c.Count(btc) >= len(want) })
	}
	time.Sleep(300 * time.Millisecond)
	for name, c := range map[string]*livetest.Client{"client of a": onA, "client of b": onB, "client moved from a to b": mover} {
		sameIDs(t, name, liveTradeIDs(t, c, btc), want)
	}
	a.Stop(t)
	b.Stop(t)
}
