package live

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token errors the server turns into the client protocol's codes.
var (
	// errTokenExpired: the client may get a new token and try again
	// (ErrorTokenExpired, 109, which the client SDKs answer by asking
	// the application for a fresh token).
	errTokenExpired = errors.New("token expired")
	// errTokenInvalid: no new attempt with this token can succeed
	// (DisconnectInvalidToken, 3500; the SDKs do not reconnect).
	errTokenInvalid = errors.New("token invalid")
)

// ConnectionClaims are a connection token's claims (see README.md):
// sub names the user (it may be empty), exp bounds the connection unless
// the client refreshes it, and channels lists the channel patterns the
// connection may subscribe to.
type ConnectionClaims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
}

// SubscriptionClaims are a subscription token's claims: it lets the user
// sub subscribe to one channel until exp, whatever the connection's
// channels claim says.
type SubscriptionClaims struct {
	jwt.RegisteredClaims
	Channel string `json:"channel"`
}

// grant is what a verified token allows.
type grant struct {
	user     string
	channels []string // patterns
	expireAt int64    // Unix seconds; 0: never
}

// allows reports whether a channel matches one of the grant's patterns.
func (g *grant) allows(channel string) bool {
	return slices.ContainsFunc(g.channels, func(p string) bool { return matchChannel(p, channel) })
}

// matchChannel matches a channel against a pattern: the channel itself,
// a prefix followed by '*' (trades:binance:*), or "*" for every channel.
// Channel names never hold '*' (values are escaped), so a pattern cannot
// be mistaken for a name.
func matchChannel(pattern, channel string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(channel, prefix)
	}
	return pattern == channel
}

// checkPattern returns what is wrong with a channel pattern, or "".
func checkPattern(p string) string {
	switch {
	case p == "":
		return "a channel pattern must not be empty"
	case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
		return fmt.Sprintf("%q: '*' may only end a pattern", p)
	case strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q: no spaces or control characters", p)
	}
	return ""
}

// verifier checks tokens against the configured keys.
type verifier struct {
	hmac     []byte
	public   []crypto.PublicKey             // from token_public_key_file: tried in turn
	jwks     map[string]jwt.VerificationKey // by kid
	jwksAll  []jwt.VerificationKey          // for a token without kid
	methods  []string
	audience string
	issuer   string
	now      func() time.Time
}

// newVerifier builds a verifier from the secret and the parsed key files.
func newVerifier(hmacSecret string, public []crypto.PublicKey, jwks map[string]jwt.VerificationKey, audience, issuer string, now func() time.Time) *verifier {
	v := &verifier{public: public, jwks: jwks, audience: audience, issuer: issuer, now: now}
	if hmacSecret != "" {
		v.hmac = []byte(hmacSecret)
	}
	for _, kid := range sortedKeys(jwks) {
		v.jwksAll = append(v.jwksAll, jwks[kid])
	}
	var hasRSA, hasEC, hasOct bool
	for _, k := range append(append([]jwt.VerificationKey{}, v.jwksAll...), toKeys(public)...) {
		switch k.(type) {
		case *rsa.PublicKey:
			hasRSA = true
		case *ecdsa.PublicKey:
			hasEC = true
		case []byte:
			hasOct = true
		}
	}
	if v.hmac != nil || hasOct {
		v.methods = append(v.methods, "HS256", "HS384", "HS512")
	}
	if hasRSA {
		v.methods = append(v.methods, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	}
	if hasEC {
		v.methods = append(v.methods, "ES256", "ES384", "ES512")
	}
	return v
}

func toKeys(public []crypto.PublicKey) []jwt.VerificationKey {
	out := make([]jwt.VerificationKey, len(public))
	for i, k := range public {
		out[i] = k
	}
	return out
}

// keys is the jwt.Keyfunc: the keys a token may be signed with, by its
// algorithm and its kid.
func (v *verifier) keys(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid != "" {
		if k, ok := v.jwks[kid]; ok {
			return k, nil
		}
		if len(v.jwks) > 0 && v.hmac == nil && len(v.public) == 0 {
			return nil, fmt.Errorf("no key with kid %q", kid)
		}
	}
	var set jwt.VerificationKeySet
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.hmac != nil {
			set.Keys = append(set.Keys, v.hmac)
		}
	default:
		set.Keys = append(set.Keys, toKeys(v.public)...)
	}
	if kid == "" {
		set.Keys = append(set.Keys, v.jwksAll...)
	}
	// The parser checks each key's type against the method itself.
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no key for %s", t.Method.Alg())
	}
	return set, nil
}

func (v *verifier) parse(token string, claims jwt.Claims) error {
	if len(v.methods) == 0 {
		return fmt.Errorf("%w: no token keys are configured", errTokenInvalid)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithTimeFunc(v.now)}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, v.keys)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %v", errTokenExpired, err)
	}
	return fmt.Errorf("%w: %v", errTokenInvalid, err)
}

// connection verifies a connection token.
func (v *verifier) connection(token string) (*grant, error) {
	var c ConnectionClaims
	if err := v.parse(token, &c); err != nil {
		return nil, err
	}
	for _, p := range c.Channels {
		if msg := checkPattern(p); msg != "" {
			return nil, fmt.Errorf("%w: channels claim: %s", errTokenInvalid, msg)
		}
	}
	g := &grant{user: c.Subject, channels: c.Channels}
	if c.ExpiresAt != nil {
		g.expireAt = c.ExpiresAt.Unix()
	}
	return g, nil
}

// subscription verifies a subscription token for channel, held by user.
func (v *verifier) subscription(token, user, channel string) (expireAt int64, err error) {
	var c SubscriptionClaims
	if err := v.parse(token, &c); err != nil {
		return 0, err
	}
	switch {
	case c.Channel != channel:
		return 0, fmt.Errorf("%w: the token is for channel %q, not %q", errTokenInvalid, c.Channel, channel)
	case c.Subject != user:
		return 0, fmt.Errorf("%w: the token is for user %q, not the connection's %q", errTokenInvalid, c.Subject, user)
	}
	if c.ExpiresAt != nil {
		expireAt = c.ExpiresAt.Unix()
	}
	return expireAt, nil
}

// parsePublicKeys reads the RSA and ECDSA public keys of a PEM file:
// PUBLIC KEY (PKIX), RSA PUBLIC KEY (PKCS #1) and CERTIFICATE blocks.
func parsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				k = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %d is a %q, want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("PEM block %d holds a %T key; want RSA or ECDSA", n, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key in it")
	}
	return keys, nil
}

// jwk is one key of a JWKS file (RFC 7517), the members we use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWKS reads a JWKS document ({"keys": [...]}) into keys by kid:
// RSA, EC (P-256, P-384, P-521) and oct (HMAC) keys. Keys whose use is
// not "sig" are skipped; a key without kid gets its index as one.
func parseJWKS(data []byte) (map[string]jwt.VerificationKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	out := make(map[string]jwt.VerificationKey, len(doc.Keys))
	for i, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.key()
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		kid := k.Kid
		if kid == "" {
			kid = fmt.Sprintf("#%d", i)
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("key %d: kid %q is used twice", i, kid)
		}
		out[kid] = key
	}
	if len(out) == 0 {
		return nil, errors.New("no signing key in it")
	}
	return out, nil
}

func b64(name, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url", name)
	}
	return b, nil
}

func (k jwk) key() (jwt.VerificationKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64("e", k.E)
		if err != nil {
			return nil, err
		}
		if len(e) > 4 {
			return nil, errors.New("e is too large")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("e must be an odd number of at least 3")
		}
		pk := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if pk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits is too weak: at least 2048", pk.N.BitLen())
		}
		return pk, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("curve %q: want P-256, P-384 or P-521", k.Crv)
		}
		x, err := b64("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64("y", k.Y)
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d bytes each for %s", size, k.Crv)
		}
		// The uncompressed point form lets crypto/ecdh check that the
		// point is on the curve.
		raw := append(append([]byte{4}, x...), y...)
		pk, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("x, y: %w", err)
		}
		return pk, nil
	case "oct":
		secret, err := b64("k", k.K)
		if err != nil {
			return nil, err
		}
		if len(secret) < 32 {
			return nil, fmt.Errorf("an HMAC key of %d bytes is too short: at least 32", len(secret))
		}
		return secret, nil
	}
	return nil, fmt.Errorf("kty %q: want RSA, EC or oct", k.Kty)
}
