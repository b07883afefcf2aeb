// Package livetest is what tests of the live sink connect with: tokens
// signed with a test secret, a centrifuge-go client that records what it
// receives, and a client that reads nothing. The sink's own tests and
// the agent's end-to-end tests use it.
package livetest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// WaitTimeout bounds Client.WaitFor.
const WaitTimeout = time.Minute

// URL is the client endpoint of a live sink listening on addr.
func URL(addr string) string { return "ws://" + addr + "/connection/websocket" }

// Token mints an HS256 connection token for sub, expiring at exp (never
// when zero), limited to channels when any are given: the claims the
// live sink reads (sub, exp, channels).
func Token(t testing.TB, secret, sub string, exp time.Time, channels ...string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub}
	if !exp.IsZero() {
		c["exp"] = jwt.NewNumericDate(exp)
	}
	if len(channels) > 0 {
		c["channels"] = channels
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Client is a centrifuge-go client that records its publications by
// channel and its events as text ("connected", "disconnected: CODE
// REASON", "reconnecting: CODE REASON", "subscribed: CHANNEL
// recovered=B was_recovering=B", "subscription error: ...",
// "unsubscribed: ...", "error: ..."). Its methods are safe for
// concurrent use.
type Client struct {
	*centrifuge.Client
	mu      sync.Mutex
	pubs    map[string][]centrifuge.Publication
	events  []string
	changed chan struct{}
}

// NewClient connects (once Connect is called) to url with tok, reconnecting
// quickly; change, when not nil, adjusts the client's config. The client
// is closed when the test ends.
func NewClient(t *testing.T, url, tok string, change func(*centrifuge.Config)) *Client {
	t.Helper()
	c := &Client{pubs: make(map[string][]centrifuge.Publication), changed: make(chan struct{}, 1)}
	cfg := centrifuge.Config{Token: tok, MinReconnectDelay: 50 * time.Millisecond, MaxReconnectDelay: 200 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	c.Client = centrifuge.NewJsonClient(url, cfg)
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

func (c *Client) event(e string) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.poke()
}

func (c *Client) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Subscribe subscribes to channel (with cfg, when given) and records its
// publications and events.
func (c *Client) Subscribe(t *testing.T, channel string, cfg ...centrifuge.SubscriptionConfig) *centrifuge.Subscription {
	t.Helper()
	sub, err := c.NewSubscription(channel, cfg...)
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

// Pubs is a copy of what arrived on channel, in order.
func (c *Client) Pubs(channel string) []centrifuge.Publication {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]centrifuge.Publication(nil), c.pubs[channel]...)
}

// Count is how many publications arrived on channel.
func (c *Client) Count(channel string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pubs[channel])
}

// Events is a copy of the client's events so far.
func (c *Client) Events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.events...)
}

// HasEvent reports an event starting with prefix.
func (c *Client) HasEvent(prefix string) bool {
	for _, e := range c.Events() {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// WaitFor waits until cond holds, checking it whenever the client
// records something and every 50 ms, and fails the test with the
// client's events after WaitTimeout.
func (c *Client) WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(WaitTimeout)
	for !cond() {
		select {
		case <-c.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; events %v", what, c.Events())
		}
	}
}

// SlowClient connects to url over a raw WebSocket with a tiny receive
// buffer, connects with tok, subscribes to channel, and then reads
// nothing: a client that cannot keep up. It is closed when the test ends.
func SlowClient(t *testing.T, url, tok, channel string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}).DialContext}
	conn, _, err := d.Dial(url, nil)
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
