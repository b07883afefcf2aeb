package live

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// Type is the live sink type: `type: live`.
var Type = sinks.Define("live", DefaultConfig, New)

// Config is a live sink's section of the agent's config (`type: live`;
// see the config package for the tags).
type Config struct {
	Listen string `config:"listen" doc:"host:port the live endpoint serves: the client protocol at /connection/websocket (and /connection/http_stream, /connection/sse), the page at /"`

	TokenHMACSecret     string   `config:"token_hmac_secret,secret" doc:"the secret HS256/384/512 tokens are signed with; better set by token_hmac_secret_file"`
	TokenHMACSecretFile string   `config:"token_hmac_secret_file,path=config_dir,secretfile=token_hmac_secret" doc:"a file holding the HMAC secret (at least 32 bytes)"`
	TokenPublicKeyFile  string   `config:"token_public_key_file,path=config_dir" doc:"a PEM file of RSA or ECDSA public keys (or certificates) that RS*, PS* and ES* tokens may be signed with"`
	TokenJWKSFile       string   `config:"token_jwks_file,path=config_dir" doc:"a JWKS file (RSA, EC and oct keys) tokens may be signed with; a token's kid picks the key"`
	TokenAudience       string   `config:"token_audience,empty" doc:"if set, a token's aud must hold it"`
	TokenIssuer         string   `config:"token_issuer,empty" doc:"if set, a token's iss must be it"`
	AnonymousChannels   []string `config:"anonymous_channels" doc:"channel patterns (trades:binance:*, or * for all) a client without a token may subscribe to; empty: every connection needs a token"`
	AllowedOrigins      []string `config:"allowed_origins" doc:"origins (https://app.example.com, or *) whose pages may connect; pages the live endpoint serves itself always may"`

	Channel    string   `config:"channel" doc:"the channel template: {measurement} and {TAG} placeholders (see sinks/live/README.md)"`
	Channels   []string `config:"channels" doc:"templates of their own for some measurements, as measurement=template: book={measurement}:{exchange}:{market}:{symbol}:{side}"`
	LatestOnly []string `config:"latest_only" doc:"measurements whose channels keep only their latest point: a subscriber gets it at once, and one that reconnects gets the latest rather than every point it missed"`

	HistorySize int           `config:"history_size" doc:"points each channel keeps, so that a client that reconnects gets what it missed"`
	HistoryTTL  time.Duration `config:"history_ttl" doc:"how long a channel keeps them (at least 1s, whole seconds)"`

	ClientQueueBytes   int           `config:"client_queue_bytes" doc:"bytes waiting to be sent to one client past which it is disconnected as slow (code 3008)"`
	ClientChannelLimit int           `config:"client_channel_limit" doc:"channels one client may subscribe to"`
	MaxConnections     int           `config:"max_connections" doc:"clients served at once; more are refused"`
	PingInterval       time.Duration `config:"ping_interval" doc:"how often the server pings each client"`
	PongTimeout        time.Duration `config:"pong_timeout" doc:"a client that has not answered a ping by then is disconnected (code 3012); less than ping_interval"`
	WriteTimeout       time.Duration `config:"write_timeout" doc:"a write to a client's socket that takes longer disconnects it"`

	Redis Redis `config:"redis" doc:"a Redis server shared by several agents, so that a client of any of them gets the points of all (see sinks/live/README.md)"`
}

// Redis configures the broker several agents share.
type Redis struct {
	Address      string        `config:"address,empty" doc:"host:port of the Redis server; unset: no broker, the agent serves the points it ingests itself"`
	User         string        `config:"user,empty" doc:"ACL user name, with password"`
	Password     string        `config:"password,secret" doc:"password; better set by password_file or SLUICE_SINKS__<NAME>__REDIS__PASSWORD"`
	PasswordFile string        `config:"password_file,path=config_dir,secretfile=password" doc:"a file holding the password"`
	DB           int           `config:"db,zero" doc:"database number"`
	Prefix       string        `config:"prefix" doc:"prefix of every Redis key and channel; agents that share channels share it"`
	DedupWindow  time.Duration `config:"dedup_window" doc:"how long a point's uniqueness key is remembered, so that a point sent again (a retried write, or several agents running the same feed) is published once"`
}

// Defaults.
const (
	DefaultListen             = "127.0.0.1:9280"
	DefaultHistorySize        = 1000
	DefaultHistoryTTL         = 10 * time.Minute
	DefaultClientQueueBytes   = 1 << 20
	DefaultClientChannelLimit = 128
	DefaultMaxConnections     = 10_000
	DefaultPingInterval       = 25 * time.Second
	DefaultPongTimeout        = 10 * time.Second
	DefaultWriteTimeout       = time.Second
	DefaultRedisPrefix        = "sluice-live"
	DefaultDedupWindow        = time.Minute

	// DefaultBufferBytes and DefaultWhenFull are the sink type's pipeline
	// defaults: live data that waits is no longer live, so the sink's log
	// stays small and a sink that falls behind skips its oldest points
	// (counted as dropped, buffer_full) instead of holding feeds back.
	DefaultBufferBytes = 8 << 20
	DefaultWhenFull    = "drop_oldest"
)

// DefaultLatestOnly are the measurements that keep their latest point
// only unless latest_only says otherwise: a ticker's or a book top's
// latest value supersedes the ones before it.
var DefaultLatestOnly = []string{"book_ticker", "ticker", "mark_price"}

// DefaultConfig is a sink's config before its section is read.
func DefaultConfig() Config {
	return Config{
		Listen:             DefaultListen,
		Channel:            DefaultChannel,
		LatestOnly:         slices.Clone(DefaultLatestOnly),
		HistorySize:        DefaultHistorySize,
		HistoryTTL:         DefaultHistoryTTL,
		ClientQueueBytes:   DefaultClientQueueBytes,
		ClientChannelLimit: DefaultClientChannelLimit,
		MaxConnections:     DefaultMaxConnections,
		PingInterval:       DefaultPingInterval,
		PongTimeout:        DefaultPongTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		Redis:              Redis{Prefix: DefaultRedisPrefix, DedupWindow: DefaultDedupWindow},
	}
}

// PipelineDefaults are the sink type's own pipeline defaults (see the
// config package): a small log, drop_oldest when it is full, and every
// batch sent as soon as the sink is free (flush_interval 0s: a browser
// sees a trade when it lands, not up to a flush interval later).
func (c *Config) PipelineDefaults() map[string]any {
	return map[string]any{"max_buffer_bytes": DefaultBufferBytes, "when_full": DefaultWhenFull, "flush_interval": time.Duration(0)}
}

// minHMACSecret is the shortest HMAC secret accepted: as long as the
// HS256 hash, as RFC 7518 asks.
const minHMACSecret = 32

// Validate returns every problem with c, each a *sinks.FieldError naming
// its key, joined.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

func fieldErr(key, format string, args ...any) error {
	return sinks.FieldErrorf(key, format, args...)
}

func (c *Config) problems() []error {
	var errs []error
	add := func(key, format string, args ...any) { errs = append(errs, fieldErr(key, format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "must be host:port such as %q, got %q", DefaultListen, c.Listen)
	}
	switch {
	case c.TokenHMACSecret != "" && len(c.TokenHMACSecret) < minHMACSecret:
		// The length only: the secret is never quoted.
		key := "token_hmac_secret"
		if c.TokenHMACSecretFile != "" {
			key = "token_hmac_secret_file"
		}
		add(key, "the HMAC secret is %d bytes; it must be at least %d (openssl rand -hex 32)", len(c.TokenHMACSecret), minHMACSecret)
	}
	if c.TokenHMACSecret == "" && c.TokenPublicKeyFile == "" && c.TokenJWKSFile == "" && len(c.AnonymousChannels) == 0 {
		add("token_hmac_secret_file", "no way to connect: set token_hmac_secret_file, token_public_key_file or token_jwks_file, or anonymous_channels for access without a token")
	}
	for i, p := range c.AnonymousChannels {
		if msg := checkPattern(p); msg != "" {
			add(fmt.Sprintf("anonymous_channels[%d]", i), "%s", msg)
		}
	}
	for i, o := range c.AllowedOrigins {
		if msg := checkOrigin(o); msg != "" {
			add(fmt.Sprintf("allowed_origins[%d]", i), "%s", msg)
		}
	}
	_, rerrs := newRouter(c.Channel, c.Channels)
	errs = append(errs, rerrs...)
	for i, m := range c.LatestOnly {
		if strings.TrimSpace(m) == "" {
			add(fmt.Sprintf("latest_only[%d]", i), "must name a measurement")
		}
	}
	if c.HistorySize < 1 {
		add("history_size", "must be positive")
	}
	if c.HistoryTTL < time.Second {
		add("history_ttl", "must be at least 1s, got %s", c.HistoryTTL)
	}
	if c.ClientQueueBytes < 4096 {
		add("client_queue_bytes", "must be at least 4096, got %d", c.ClientQueueBytes)
	}
	if c.ClientChannelLimit < 1 {
		add("client_channel_limit", "must be positive")
	}
	if c.MaxConnections < 1 {
		add("max_connections", "must be positive")
	}
	if c.PongTimeout >= c.PingInterval {
		add("pong_timeout", "must be less than ping_interval (%s), got %s", c.PingInterval, c.PongTimeout)
	}
	if c.Redis.Address != "" {
		if _, _, err := net.SplitHostPort(c.Redis.Address); err != nil {
			add("redis.address", "must be host:port such as \"127.0.0.1:6379\", got %q", c.Redis.Address)
		}
	}
	if c.Redis.User != "" && c.Redis.Password == "" {
		add("redis.user", "needs a password (redis.password_file)")
	}
	if c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, " \t\r\n{}") {
		add("redis.prefix", "must be a word without spaces or braces, got %q", c.Redis.Prefix)
	}
	if c.Redis.DedupWindow < time.Second {
		add("redis.dedup_window", "must be at least 1s, got %s", c.Redis.DedupWindow)
	}
	return errs
}

// checkOrigin returns what is wrong with an allowed origin, or "".
func checkOrigin(o string) string {
	if o == "*" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Sprintf("must be an origin such as \"https://app.example.com\" or \"http://localhost:3000\", or *, got %q", o)
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
