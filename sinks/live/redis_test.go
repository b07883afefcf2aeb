package live

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/testredis"
)

// Two sinks sharing a real Redis: a client of either gets what the other
// publishes, recovers on one what it missed while away from the other,
// and a point published twice (a retry, or two agents running one feed)
// reaches it once.
func TestRedisBroker(t *testing.T) {
	r := testredis.Start(t)
	withRedis := func(c *Config) { c.Redis.Address = r.Addr; c.Redis.Prefix = "t" + t.Name() }
	a, b := openSink(t, withRedis), openSink(t, withRedis)
	for _, s := range []*Sink{a, b} {
		s.Declare(context.Background(), []sluice.Measurement{{Name: "trades", Unique: []string{"exchange", "market", "symbol", "trade_id"}}})
	}
	const ch = "trades:binance:spot:BTCUSDT"
	tok := token(t, testSecret, "judy", time.Now().Add(time.Hour), "*")

	// One client, whose dialer picks the node: a first, then b.
	var node atomic.Pointer[Sink]
	node.Store(a)
	c := newClient(t, a, tok)
	c.Client.Close()
	c.Client = centrifuge.NewJsonClient("ws://live/connection/websocket", centrifuge.Config{
		Token: tok,
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, node.Load().Addr().String())
		},
	})
	t.Cleanup(c.Client.Close)
	c.OnConnected(func(centrifuge.ConnectedEvent) { c.event("connected") })
	c.OnDisconnected(func(e centrifuge.DisconnectedEvent) { c.event("disconnected") })
	onB := newClient(t, b, tok)
	c.subscribe(t, ch, centrifuge.SubscriptionConfig{})
	onB.subscribe(t, ch, centrifuge.SubscriptionConfig{})
	c.Connect()
	onB.Connect()
	c.waitFor(t, "subscribed on a", func() bool { return c.hasEvent("subscribed: " + ch) })
	onB.waitFor(t, "subscribed on b", func() bool { return onB.hasEvent("subscribed: " + ch) })

	ctx := context.Background()
	if err := a.Write(ctx, trades("BTCUSDT", 1, 100)); err != nil {
		t.Fatal(err)
	}
	onB.waitFor(t, "a's points on b", func() bool { return len(onB.pubs[ch]) >= 100 })
	c.waitFor(t, "a's points on a", func() bool { return len(c.pubs[ch]) >= 100 })

	c.Disconnect()
	c.waitFor(t, "disconnected", func() bool { return c.hasEvent("disconnected") })
	if err := a.Write(ctx, trades("BTCUSDT", 101, 150)); err != nil {
		t.Fatal(err)
	}
	// b publishes what a did (a second agent on the same feed) and more.
	if err := b.Write(ctx, trades("BTCUSDT", 121, 200)); err != nil {
		t.Fatal(err)
	}
	node.Store(b)
	c.Connect()
	c.waitFor(t, "recovered on b", func() bool { return c.hasEvent("subscribed: " + ch + " recovered=true") })
	c.waitFor(t, "every point", func() bool { return len(c.pubs[ch]) >= 200 })
	onB.waitFor(t, "every point on b", func() bool { return len(onB.pubs[ch]) >= 200 })
	time.Sleep(200 * time.Millisecond)
	c.mu.Lock()
	checkSequence(t, tradeIDs(t, c.pubs[ch]), 1, 200)
	c.mu.Unlock()
	onB.mu.Lock()
	checkSequence(t, tradeIDs(t, onB.pubs[ch]), 1, 200)
	onB.mu.Unlock()
	if d := statValues(b.Stats(), "live_duplicates_total")[""]; d != 30 {
		t.Errorf("b's duplicates = %v, want 30", d)
	}
}
