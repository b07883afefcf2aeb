package live

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/centrifugal/centrifuge-go"
)

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A client that reads nothing is disconnected once its queue is full, and
// counted; Write never waits for it, and a fast client on the same
// channel gets every point in order.
func TestSlowClientDisconnected(t *testing.T) {
	s := openSink(t, func(c *Config) { c.ClientQueueBytes = 64 << 10 })
	const ch = "trades:binance:spot:BTCUSDT"
	tok := livetest.Token(t, testSecret, "ivan", time.Now().Add(time.Hour), "*")
	livetest.SlowClient(t, wsURL(s), tok, ch)

	fast := livetest.NewClient(t, wsURL(s), tok, nil)
	fast.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	fast.Connect()
	fast.WaitFor(t, "subscribed", func() bool { return fast.HasEvent("subscribed: " + ch) })

	// 20 000 trades at about 20 000/s: far more than the slow client's
	// socket and queue hold, at a pace a client that reads keeps up with.
	const n = 20_000
	for from := int64(1); from <= n; from += 100 {
		if err := s.Write(context.Background(), trades("BTCUSDT", from, from+99)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fast.WaitFor(t, "every trade", func() bool { return fast.Count(ch) >= n })
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := statValues(s.Stats(), "live_disconnects_total")
		if d["slow"]+d["write_error"] >= 1 {
			t.Logf("disconnects: %v", d)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow client was not disconnected: disconnects %v, clients %v", d, s.Stats()[0].Value)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkSequence(t, tradeIDs(t, fast.Pubs(ch)), 1, n)
	if fast.HasEvent("disconnected") || fast.HasEvent("reconnecting") {
		t.Errorf("the fast client was disconnected: %v", fast.Events())
	}
}
