package live

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice"
)

// testSecret is the HMAC secret of the test sinks.
var testSecret = strings.Repeat("k", 40)

// openSink opens a live sink on a free loopback port with cfg's changes
// over the defaults and the test secret.
func openSink(t *testing.T, change func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TokenHMACSecret = testSecret
	if change != nil {
		change(&cfg)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := New(cfg, log)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func wsURL(s *Sink) string { return "ws://" + s.Addr().String() + "/connection/websocket" }

// token mints an HS256 connection token.
func token(t testing.TB, secret, sub string, exp time.Time, channels ...string) string {
	t.Helper()
	c := ConnectionClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub}, Channels: channels}
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// trade is a trade point of Binance spot.
func trade(symbol string, id int64) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "market", Value: "spot"}, {Key: "side", Value: "buy"}, {Key: "symbol", Value: symbol}},
		Fields:      []sluice.Field{{Key: "price", Value: sluice.Float(100 + float64(id)/100)}, {Key: "quantity", Value: sluice.Float(0.5)}, {Key: "trade_id", Value: sluice.Int(id)}},
		Time:        time.Unix(1_700_000_000, id*1000).UTC(),
	}
}

func trades(symbol string, from, to int64) []sluice.Point {
	var ps []sluice.Point
	for id := from; id <= to; id++ {
		ps = append(ps, trade(symbol, id))
	}
	return ps
}

// client is a centrifuge-go client with what it received.
type client struct {
	*centrifuge.Client
	mu      sync.Mutex
	pubs    map[string][]centrifuge.Publication
	events  []string // connected, disconnected: code, subscribed: channel recovered
	changed chan struct{}
}

func newClient(t *testing.T, s *Sink, tok string) *client {
	t.Helper()
	return newClientWith(t, s, tok, nil)
}

// newClientWith is newClient with change applied to the client's config.
func newClientWith(t *testing.T, s *Sink, tok string, change func(*centrifuge.Config)) *client {
	t.Helper()
	c := &client{pubs: make(map[string][]centrifuge.Publication), changed: make(chan struct{}, 1)}
	cfg := centrifuge.Config{Token: tok, MinReconnectDelay: 50 * time.Millisecond, MaxReconnectDelay: 200 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	c.Client = centrifuge.NewJsonClient(wsURL(s), cfg)
	c.OnConnected(func(centrifuge.ConnectedEvent) { c.event("connected") })
	c.OnDisconnected(func(e centrifuge.DisconnectedEvent) { c.event(fmt.Sprintf("disconnected: %d %s", e.Code, e.Reason)) })
	c.OnConnecting(func(e centrifuge.ConnectingEvent) {
		if e.Code != 0 { // 0: the first connect
			c.event(fmt.Sprintf("reconnecting: %d %s", e.Code, e.Reason))
		}
	})
	c.OnError(func(e centrifuge.ErrorEvent) { c.event("error: " + e.Error.Error()) })
	t.Cleanup(c.Close)
	return c
}

func (c *client) event(e string) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.poke()
}

func (c *client) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// subscribe subscribes to a channel and records its publications.
func (c *client) subscribe(t *testing.T, channel string, cfg centrifuge.SubscriptionConfig) *centrifuge.Subscription {
	t.Helper()
	sub, err := c.NewSubscription(channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub.OnPublication(func(e centrifuge.PublicationEvent) {
		c.mu.Lock()
		c.pubs[channel] = append(c.pubs[channel], e.Publication)
		c.mu.Unlock()
		c.poke()
	})
	sub.OnSubscribed(func(e centrifuge.SubscribedEvent) {
		c.event(fmt.Sprintf("subscribed: %s recovered=%v was_recovering=%v", channel, e.Recovered, e.WasRecovering))
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		c.event(fmt.Sprintf("subscription error: %s %v", channel, e.Error))
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		c.event(fmt.Sprintf("unsubscribed: %s %d %s", channel, e.Code, e.Reason))
	})
	if err := sub.Subscribe(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// waitFor waits until cond holds on what the client received.
func (c *client) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("timed out waiting for %s; events %v", what, c.events)
		}
	}
}

func (c *client) hasEvent(prefix string) bool {
	for _, e := range c.events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}
