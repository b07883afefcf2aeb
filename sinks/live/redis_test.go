package live

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/centrifugal/centrifuge-go"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/testredis"
	"github.com/sluicehq/sluice/sinks"
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
	tok := livetest.Token(t, testSecret, "judy", time.Now().Add(time.Hour), "*")

	// One client, whose dialer picks the node: a first, then b.
	var node atomic.Pointer[Sink]
	node.Store(a)
	c := livetest.NewClient(t, "ws://live/connection/websocket", tok, func(cfg *centrifuge.Config) {
		cfg.NetDialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, node.Load().Addr().String())
		}
	})
	onB := livetest.NewClient(t, wsURL(b), tok, nil)
	c.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	onB.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	c.Connect()
	onB.Connect()
	c.WaitFor(t, "subscribed on a", func() bool { return c.HasEvent("subscribed: " + ch) })
	onB.WaitFor(t, "subscribed on b", func() bool { return onB.HasEvent("subscribed: " + ch) })

	ctx := context.Background()
	if err := a.Write(ctx, trades("BTCUSDT", 1, 100)); err != nil {
		t.Fatal(err)
	}
	onB.WaitFor(t, "a's points on b", func() bool { return onB.Count(ch) >= 100 })
	c.WaitFor(t, "a's points on a", func() bool { return c.Count(ch) >= 100 })

	c.Disconnect()
	c.WaitFor(t, "disconnected", func() bool { return c.HasEvent("disconnected") })
	if err := a.Write(ctx, trades("BTCUSDT", 101, 150)); err != nil {
		t.Fatal(err)
	}
	// b publishes what a did (a second agent on the same feed) and more.
	if err := b.Write(ctx, trades("BTCUSDT", 121, 200)); err != nil {
		t.Fatal(err)
	}
	node.Store(b)
	c.Connect()
	c.WaitFor(t, "recovered on b", func() bool { return c.HasEvent("subscribed: " + ch + " recovered=true") })
	c.WaitFor(t, "every point", func() bool { return c.Count(ch) >= 200 })
	onB.WaitFor(t, "every point on b", func() bool { return onB.Count(ch) >= 200 })
	time.Sleep(200 * time.Millisecond)
	checkSequence(t, tradeIDs(t, c.Pubs(ch)), 1, 200)
	checkSequence(t, tradeIDs(t, onB.Pubs(ch)), 1, 200)
	if d := statValues(b.Stats(), "live_duplicates_total")[""]; d != 30 {
		t.Errorf("b's duplicates = %v, want 30", d)
	}
}

// A sink whose Redis is down when it opens opens anyway: it says so in
// Health, serves the page, answers clients 503, and skips what it is
// given without waiting (counted). Once Redis answers it serves; when
// Redis is killed and started again (empty), it skips meanwhile and
// serves again after, and its clients get what it publishes then.
func TestRedisDownAndBack(t *testing.T) {
	r := testredis.New(t, testredis.FreeAddr(t))
	s := openSink(t, func(c *Config) { c.Redis.Address = r.Addr; c.Redis.Prefix = "t" + t.Name() })
	s.Declare(context.Background(), []sluice.Measurement{{Name: "trades", Unique: []string{"exchange", "market", "symbol", "trade_id"}}})
	ctx := context.Background()
	const ch = "trades:binance:spot:BTCUSDT"
	skipped := func() float64 { return statValues(s.Stats(), "live_skipped_total")[""] }
	connected := func() float64 { return statValues(s.Stats(), "live_redis_connected")[""] }

	err := s.Health()
	if err == nil || !strings.Contains(err.Error(), "not connected to Redis at "+r.Addr+" since ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("health with Redis down: %v", err)
	}
	if code := httpStatus(t, "http://"+s.Addr().String()+"/connection/websocket"); code != http.StatusServiceUnavailable {
		t.Errorf("the client endpoint answered %d before Redis, want 503", code)
	}
	if code := httpStatus(t, "http://"+s.Addr().String()+"/"); code != http.StatusOK {
		t.Errorf("the page answered %d before Redis, want 200", code)
	}
	// A client that connects meanwhile is refused with 503 and tries
	// again on its own.
	tok := livetest.Token(t, testSecret, "ann", time.Now().Add(time.Hour), "*")
	early := livetest.NewClient(t, wsURL(s), tok, nil)
	early.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	early.Connect()
	wantSkipped(t, "write with Redis down", s.Write(ctx, trades("BTCUSDT", 1, 100)), 100)
	if got := skipped(); got != 100 {
		t.Errorf("skipped = %v, want 100", got)
	}

	r.Start()
	waitHealthy(t, s)
	if connected() != 1 {
		t.Errorf("live_redis_connected = %v once Redis answers", connected())
	}
	early.WaitFor(t, "the early client subscribed", func() bool { return early.HasEvent("subscribed: " + ch) })
	c := livetest.NewClient(t, wsURL(s), tok, nil)
	c.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	c.Connect()
	c.WaitFor(t, "subscribed", func() bool { return c.HasEvent("subscribed: " + ch) })
	if err := s.Write(ctx, trades("BTCUSDT", 101, 150)); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*livetest.Client{early, c} {
		cl.WaitFor(t, "101..150", func() bool { return cl.Count(ch) >= 50 })
		checkSequence(t, tradeIDs(t, cl.Pubs(ch)), 101, 150)
	}
	early.Close()

	r.Kill()
	// At once, before the keeper's next PING: the publishes fail, and
	// the rest of the batch, on every channel, is skipped.
	before := skipped()
	var skip *sinks.SkippedError
	mixed := append(append(trades("BTCUSDT", 151, 160), trades("ETHUSDT", 1, 10)...), trades("BNBUSDT", 1, 10)...)
	if err := s.Write(ctx, mixed); !errors.As(err, &skip) || skip.Skipped != 30 {
		t.Fatalf("write just after Redis was killed: %v, want a SkippedError for 30 points", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Health() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Health is still nil 20s after Redis was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A client that subscribes meanwhile is disconnected (3004, internal
	// server error: centrifuge cannot read the channel's position), and
	// reconnects until it can. Its requests sent while reconnecting wait
	// for their ReadTimeout in the SDK: a short one, for goleak.
	late := livetest.NewClient(t, wsURL(s), tok, func(c *centrifuge.Config) { c.ReadTimeout = 500 * time.Millisecond })
	late.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	late.Connect()
	late.WaitFor(t, "a disconnect", func() bool { return late.HasEvent("reconnecting: 3004 ") })
	wantSkipped(t, "write with Redis killed", s.Write(ctx, trades("BTCUSDT", 151, 200)), 50)
	if got := skipped(); got != before+30+50 {
		t.Errorf("skipped = %v after writes of 30 and 50 with Redis killed, want %v", got, before+30+50)
	}
	if connected() != 0 {
		t.Errorf("live_redis_connected = %v with Redis killed", connected())
	}

	r.Start()
	waitHealthy(t, s)
	late.WaitFor(t, "the late client subscribed", func() bool { return late.HasEvent("subscribed: " + ch) })
	late.Close()
	// The new Redis is empty: a new epoch, which the client learns from
	// the first publication and resubscribes for; what it gets after
	// that comes in order, once.
	next := int64(201)
	for deadline := time.Now().Add(20 * time.Second); ; {
		// Redis may answer PING before the node's own connections are
		// back: a publish that fails meanwhile skips.
		if err := s.Write(ctx, trades("BTCUSDT", next, next+9)); err != nil && !errors.As(err, &skip) {
			t.Fatal(err)
		}
		next += 10
		time.Sleep(100 * time.Millisecond)
		ids := tradeIDs(t, c.Pubs(ch))
		got, events := ids[len(ids)-1], c.Events()
		if got > 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client got nothing published after Redis came back; events %v", events)
		}
	}
	from := c.Count(ch)
	if err := s.Write(ctx, trades("BTCUSDT", next, next+49)); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, "the last 50", func() bool { return c.Count(ch) >= from+50 })
	time.Sleep(200 * time.Millisecond)
	checkSequence(t, tradeIDs(t, c.Pubs(ch)[from:]), next, next+49)
	if err := s.Health(); err != nil {
		t.Errorf("health at the end: %v", err)
	}
}

// wantSkipped checks that err is a *sinks.SkippedError for n points,
// saying why.
func wantSkipped(t *testing.T, what string, err error, n int) {
	t.Helper()
	var skip *sinks.SkippedError
	if !errors.As(err, &skip) || skip.Skipped != n || !strings.Contains(err.Error(), "not connected to Redis at ") {
		t.Fatalf("%s: %v, want a SkippedError for %d points naming Redis", what, err, n)
	}
}

func waitHealthy(t *testing.T, s *Sink) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.Health()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unhealthy 20s after Redis started: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
