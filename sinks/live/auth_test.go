package live

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/centrifugal/centrifuge-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/sinks"
)

// A token signed with another secret, an expired token, no token and a
// channel outside the token's claim are refused, each with its code and
// counted; a token whose channels claim allows the channel subscribes.
func TestRefusals(t *testing.T) {
	s := openSink(t, nil)
	const ch = "trades:binance:spot:BTCUSDT"

	wrong := livetest.NewClient(t, wsURL(s), livetest.Token(t, strings.Repeat("x", 40), "mallory", time.Now().Add(time.Hour), "*"), nil)
	wrong.Connect()
	wrong.WaitFor(t, "invalid token", func() bool { return wrong.HasEvent("disconnected: 3500") })

	none := livetest.NewClient(t, wsURL(s), "", nil)
	none.Connect()
	none.WaitFor(t, "no token", func() bool { return none.HasEvent("disconnected: 3500") })

	expired := livetest.NewClient(t, wsURL(s), livetest.Token(t, testSecret, "bob", time.Now().Add(-time.Minute), "*"), nil)
	expired.Connect()
	expired.WaitFor(t, "expired token", func() bool {
		return expired.HasEvent("error: ") && !expired.HasEvent("connected")
	})

	other := livetest.NewClient(t, wsURL(s), livetest.Token(t, testSecret, "carol", time.Now().Add(time.Hour), "trades:binance:spot:ETHUSDT", "book_ticker:*"), nil)
	other.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	other.Subscribe(t, "trades:binance:spot:ETHUSDT", centrifuge.SubscriptionConfig{})
	other.Connect()
	other.WaitFor(t, "refused and allowed", func() bool {
		return other.HasEvent("subscription error: "+ch) && other.HasEvent("subscribed: trades:binance:spot:ETHUSDT")
	})
	s.Write(context.Background(), trades("BTCUSDT", 1, 5))
	time.Sleep(200 * time.Millisecond)
	if n := other.Count(ch); n != 0 {
		t.Errorf("a channel outside the claim delivered %d points", n)
	}

	refused := statValues(s.Stats(), "live_refused_total")
	for reason, want := range map[string]float64{"invalid_token": 1, "no_token": 1, "token_expired": 1, "permission_denied": 1} {
		if refused[reason] < want {
			t.Errorf("refused %s = %v, want at least %v (all: %v)", reason, refused[reason], want, refused)
		}
	}
	if expired.HasEvent("connected") {
		t.Error("an expired token connected")
	}
}

// statValues maps a labeled stat's label values to its values.
func statValues(stats []sinks.Stat, name string) map[string]float64 {
	out := make(map[string]float64)
	for _, st := range stats {
		if st.Name == name {
			out[st.LabelValue] = st.Value
		}
	}
	return out
}

// An expiring token is refreshed through the protocol (the client asks
// for a new one) and the connection goes on; a refresh that gets no new
// token ends it.
func TestTokenRefresh(t *testing.T) {
	s := openSink(t, nil)
	const ch = "trades:binance:spot:BTCUSDT"
	refreshed := make(chan struct{}, 10)
	c := livetest.NewClient(t, wsURL(s), livetest.Token(t, testSecret, "dave", time.Now().Add(2*time.Second), ch), func(cfg *centrifuge.Config) {
		cfg.GetToken = func(centrifuge.ConnectionTokenEvent) (string, error) {
			refreshed <- struct{}{}
			return livetest.Token(t, testSecret, "dave", time.Now().Add(time.Hour), ch), nil
		}
	})
	c.Subscribe(t, ch, centrifuge.SubscriptionConfig{})
	c.Connect()
	select {
	case <-refreshed:
	case <-time.After(20 * time.Second):
		t.Fatal("the client was never asked for a new token")
	}
	time.Sleep(3 * time.Second) // past the first token's expiry
	s.Write(context.Background(), trades("BTCUSDT", 1, 3))
	c.WaitFor(t, "points after the refresh", func() bool { return c.Count(ch) == 3 })
	if c.HasEvent("disconnected") || c.HasEvent("reconnecting") {
		t.Errorf("disconnected across a refresh: %v", c.Events())
	}
}

// A subscription token lets a connection whose claim does not list the
// channel subscribe to it; one for another channel or user does not.
func TestSubscriptionToken(t *testing.T) {
	s := openSink(t, nil)
	const ch = "trades:binance:spot:BTCUSDT"
	subTok := func(sub, channel string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, SubscriptionClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
			Channel:          channel,
		}).SignedString([]byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	c := livetest.NewClient(t, wsURL(s), livetest.Token(t, testSecret, "erin", time.Now().Add(time.Hour)), nil)
	c.Subscribe(t, ch, centrifuge.SubscriptionConfig{Token: subTok("erin", ch)})
	c.Subscribe(t, "trades:binance:spot:ETHUSDT", centrifuge.SubscriptionConfig{Token: subTok("erin", ch)})
	c.Subscribe(t, "trades:binance:spot:BNBUSDT", centrifuge.SubscriptionConfig{Token: subTok("frank", "trades:binance:spot:BNBUSDT")})
	c.Connect()
	c.WaitFor(t, "one allowed", func() bool { return c.HasEvent("subscribed: " + ch) })
	s.Write(context.Background(), append(append(trades("BTCUSDT", 1, 3), trades("ETHUSDT", 1, 3)...), trades("BNBUSDT", 1, 3)...))
	c.WaitFor(t, "points", func() bool { return c.Count(ch) == 3 })
	time.Sleep(200 * time.Millisecond)
	if c.Count("trades:binance:spot:ETHUSDT")+c.Count("trades:binance:spot:BNBUSDT") != 0 || c.HasEvent("subscribed: trades:binance:spot:ETHUSDT") || c.HasEvent("subscribed: trades:binance:spot:BNBUSDT") {
		t.Errorf("a token for another channel or user subscribed: %v", c.Events())
	}
}

// Tokens signed with an ECDSA key from a PEM file, or from a JWKS file by
// kid, connect; one signed with a key not listed does not.
func TestPublicKeys(t *testing.T) {
	dir := t.TempDir()
	key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key1.PublicKey)
	pemFile := filepath.Join(dir, "keys.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	enc := base64.RawURLEncoding.EncodeToString
	raw, _ := key2.PublicKey.Bytes() // 0x04 || X || Y
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "kid": "k2", "crv": "P-256", "x": enc(raw[1:33]), "y": enc(raw[33:])}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)

	s := openSink(t, func(c *Config) {
		c.TokenHMACSecret = ""
		c.TokenPublicKeyFile = pemFile
		c.TokenJWKSFile = jwksFile
	})
	sign := func(k *ecdsa.PrivateKey, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, ConnectionClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "gina"}, Channels: []string{"*"}})
		if kid != "" {
			tok.Header["kid"] = kid
		}
		str, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return str
	}
	for name, c := range map[string]struct {
		tok string
		ok  bool
	}{
		"pem":           {sign(key1, ""), true},
		"jwks by kid":   {sign(key2, "k2"), true},
		"jwks, no kid":  {sign(key2, ""), true},
		"unknown key":   {sign(stranger, ""), false},
		"unknown kid":   {sign(stranger, "k9"), false},
		"hmac, not set": {livetest.Token(t, testSecret, "gina", time.Time{}, "*"), false},
	} {
		cl := livetest.NewClient(t, wsURL(s), c.tok, nil)
		cl.Connect()
		if c.ok {
			cl.WaitFor(t, name+" connects", func() bool { return cl.HasEvent("connected") })
		} else {
			cl.WaitFor(t, name+" refused", func() bool { return cl.HasEvent("disconnected: 3500") })
		}
		cl.Close()
	}
}
