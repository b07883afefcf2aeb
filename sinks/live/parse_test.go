package live

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestMatchChannel(t *testing.T) {
	for _, c := range []struct {
		pattern, channel string
		want             bool
	}{
		{"*", "trades:binance:spot:BTCUSDT", true},
		{"trades:binance:*", "trades:binance:spot:BTCUSDT", true},
		{"trades:binance:*", "trades:bybit:spot:BTCUSDT", false},
		{"trades:binance:spot:BTCUSDT", "trades:binance:spot:BTCUSDT", true},
		{"trades:binance:spot:BTCUSDT", "trades:binance:spot:BTCUSDTX", false},
		{"trades:binance:spot:BTC", "trades:binance:spot:BTCUSDT", false},
	} {
		if got := matchChannel(c.pattern, c.channel); got != c.want {
			t.Errorf("%q ~ %q = %v", c.pattern, c.channel, got)
		}
	}
	for p, bad := range map[string]bool{"*": false, "a:*": false, "a*b": true, "**": true, "": true, "a b": true} {
		if got := checkPattern(p) != ""; got != bad {
			t.Errorf("checkPattern(%q) = %q", p, checkPattern(p))
		}
	}
}

func TestParseJWKS(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	raw, _ := ek.PublicKey.Bytes()
	rsaJWK := fmt.Sprintf(`{"kty":"RSA","kid":"r","n":%q,"e":"AQAB"}`, enc(rk.N.Bytes()))
	ecJWK := fmt.Sprintf(`{"kty":"EC","kid":"e","crv":"P-384","x":%q,"y":%q}`, enc(raw[1:49]), enc(raw[49:]))
	keys, err := parseJWKS([]byte(`{"keys":[` + rsaJWK + `,` + ecJWK + `,{"kty":"oct","k":"` + enc([]byte(strings.Repeat("s", 32))) + `"},{"kty":"RSA","use":"enc","n":"x","e":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := keys["r"].(*rsa.PublicKey); !ok || k.N.Cmp(rk.N) != 0 || k.E != 65537 {
		t.Errorf("rsa key: %v", keys["r"])
	}
	if k, ok := keys["e"].(*ecdsa.PublicKey); !ok || !k.Equal(&ek.PublicKey) {
		t.Errorf("ec key: %v", keys["e"])
	}
	if k, ok := keys["#2"].([]byte); !ok || len(k) != 32 {
		t.Errorf("oct key: %v", keys["#2"])
	}
	if len(keys) != 3 {
		t.Errorf("%d keys: the enc key was not skipped", len(keys))
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for doc, want := range map[string]string{
		`nope`:        "not a JWKS document",
		`{"keys":[]}`: "no signing key",
		`{"keys":[{"kty":"RSA","n":"` + enc(small.N.Bytes()) + `","e":"AQAB"}]}`:                                 "too weak",
		`{"keys":[{"kty":"RSA","n":"` + enc(rk.N.Bytes()) + `","e":"Ag"}]}`:                                      "odd number",
		`{"keys":[{"kty":"EC","crv":"P-192","x":"AA","y":"AA"}]}`:                                                "curve",
		`{"keys":[{"kty":"EC","crv":"P-384","x":"` + enc(raw[1:49]) + `","y":"` + enc(make([]byte, 48)) + `"}]}`: "x, y",
		`{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}`:                                                                 "too short",
		`{"keys":[{"kty":"OKP"}]}`:                                                                               `kty "OKP"`,
		`{"keys":[` + rsaJWK + `,` + rsaJWK + `]}`:                                                               "used twice",
	} {
		_, err := parseJWKS([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60s: %v, want %q", doc, err, want)
		}
	}
}

func TestParsePublicKeys(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkix, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	cert, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rk.PublicKey, rk)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)})...)
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})...)
	keys, err := parsePublicKeys(data)
	if err != nil || len(keys) != 3 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(ek)
	for name, data := range map[string][]byte{
		"empty":       nil,
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
		"garbage":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}),
	} {
		if _, err := parsePublicKeys(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	c := DefaultConfig()
	c.Listen = "nope"
	c.TokenHMACSecret = "short"
	c.AnonymousChannels = []string{"a*b"}
	c.AllowedOrigins = []string{"example.com"}
	c.Channels = []string{"x"}
	c.HistoryTTL = 0
	c.PongTimeout = c.PingInterval
	c.Redis = Redis{Address: "redis", User: "u", Prefix: "a b", DedupWindow: 0}
	var got []string
	for _, e := range c.problems() {
		got = append(got, e.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"listen: must be host:port", "token_hmac_secret: the HMAC secret is 5 bytes", "anonymous_channels[0]: ",
		"allowed_origins[0]: must be an origin", "channels[0]: must be measurement=template", "history_ttl: must be at least 1s",
		"pong_timeout: must be less than ping_interval", "redis.address: must be host:port", "redis.user: needs a password",
		"redis.prefix: ", "redis.dedup_window: ",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "short") {
		t.Error("a problem quotes the secret")
	}
	d := DefaultConfig()
	if errs := d.problems(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no way to connect") {
		t.Errorf("defaults without a key: %v", errs)
	}
	d.AnonymousChannels = []string{"*"}
	if errs := d.problems(); len(errs) != 0 {
		t.Errorf("anonymous defaults: %v", errs)
	}
}
