package live

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/centrifugal/centrifuge-go"
)

// tradeIDs decodes the trade ids of a client's publications.
func tradeIDs(t *testing.T, pubs []centrifuge.Publication) []int64 {
	t.Helper()
	ids := make([]int64, 0, len(pubs))
	for _, p := range pubs {
		var v struct {
			Fields struct {
				TradeID int64 `json:"trade_id"`
			} `json:"fields"`
		}
		if err := json.Unmarshal(p.Data, &v); err != nil {
			t.Fatalf("publication %q: %v", p.Data, err)
		}
		ids = append(ids, v.Fields.TradeID)
	}
	return ids
}

func checkSequence(t *testing.T, ids []int64, from, to int64) {
	t.Helper()
	if int64(len(ids)) != to-from+1 {
		t.Fatalf("got %d trades, want %d (%d..%d): %v", len(ids), to-from+1, from, to, ids)
	}
	for i, id := range ids {
		if id != from+int64(i) {
			t.Fatalf("trade %d is id %d, want %d: %v", i, id, from+int64(i), ids)
		}
	}
}

// A client with a valid token gets every point of its channel in order,
// and after a reconnect what it missed, once.
func TestPublishAndRecover(t *testing.T) {
	s := openSink(t, nil)
	const ch = "trades:binance:spot:BTCUSDT"
	c := livetest.NewClient(t, wsURL(s), livetest.Token(t, testSecret, "alice", time.Now().Add(time.Hour), "trades:binance:*"), nil)
	c.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "subscribed", func() bool { return c.HasEvent("subscribed: " + ch) })

	ctx := context.Background()
	if err := s.Write(ctx, append(trades("BTCUSDT", 1, 100), trades("ETHUSDT", 1, 50)...)); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "100 trades", func() bool { return c.Count(ch) >= 100 })

	// Away while 100 more trades are published.
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "disconnected", func() bool { return c.HasEvent("disconnected") })
	if err := s.Write(ctx, trades("BTCUSDT", 101, 200)); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "recovered", func() bool { return c.HasEvent("subscribed: " + ch + " recovered=true") })
	if err := s.Write(ctx, trades("BTCUSDT", 201, 210)); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "210 trades", func() bool { return c.Count(ch) >= 210 })
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
	checkSequence(t, tradeIDs(t, c.Pubs(ch)), 1, 210)
}
