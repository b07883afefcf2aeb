package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/internal/capread"
	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/redact"
)

// Client is how to reach a NATS server or cluster. The sink's and the
// source's config both embed it, so they read the same keys.
type Client struct {
	// URL is one server URL or several separated by commas:
	// nats://host:4222, tls://host:4222. The client connects to any of
	// them and learns the rest of the cluster from the server it reaches.
	URL string `json:"url" yaml:"url" koanf:"url"`
	// At most one way of authenticating: User and Password, Token,
	// CredentialsFile (a .creds file: user JWT and NKey seed), or
	// NKeyFile (a file holding an NKey seed).
	User            string `json:"user" yaml:"user" koanf:"user"`
	Password        string `json:"password" yaml:"password" koanf:"password"`
	Token           string `json:"token" yaml:"token" koanf:"token"`
	CredentialsFile string `json:"credentials_file" yaml:"credentials_file" koanf:"credentials_file"`
	NKeyFile        string `json:"nkey_file" yaml:"nkey_file" koanf:"nkey_file"`
	TLS             TLS    `json:"tls" yaml:"tls" koanf:"tls"`
}

// TLS is the client side of TLS to the servers.
type TLS = clienttls.Config

// FieldError is one problem with one key of a config.
type FieldError struct {
	Key string // relative to the config's own section: "url", "tls.ca_file"
	Msg string
}

func (e FieldError) Error() string { return e.Key + ": " + e.Msg }

// URLs splits URL into its servers.
func (c *Client) URLs() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Redacted is URL with each server's password and secret parameters
// masked, for messages.
func (c *Client) Redacted() string {
	urls := c.URLs()
	for i, u := range urls {
		urls[i] = redact.URL(u)
	}
	return strings.Join(urls, ",")
}

// Validate checks the keys without reading any file.
func (c *Client) Validate() []FieldError {
	var errs []FieldError
	if msg := CheckURL(c.URL); msg != "" {
		errs = append(errs, FieldError{"url", msg})
	}
	// The second way set is the one blamed.
	ways := 0
	for _, w := range []struct {
		key string
		set bool
	}{{"user", c.User != "" || c.Password != ""}, {"token", c.Token != ""}, {"credentials_file", c.CredentialsFile != ""}, {"nkey_file", c.NKeyFile != ""}} {
		if w.set {
			if ways++; ways == 2 {
				errs = append(errs, FieldError{w.key, "set only one of user/password, token, credentials_file and nkey_file"})
			}
		}
	}
	if c.Password != "" && c.User == "" {
		errs = append(errs, FieldError{"user", "missing: password is set"})
	}
	for _, e := range c.TLS.Check() {
		errs = append(errs, FieldError{e.Key, e.Err.Error()})
	}
	return errs
}

// CheckURL returns what is wrong with a url value, or "".
func CheckURL(v string) string {
	c := Client{URL: v}
	urls := c.URLs()
	if len(urls) == 0 {
		return "must name at least one server, such as nats://127.0.0.1:4222"
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return "must be nats:// or tls:// URLs separated by commas, got an unparsable URL"
		}
		if (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return fmt.Sprintf("must be nats:// or tls:// URLs separated by commas, got %q", redact.URL(raw))
		}
	}
	return ""
}

// Handlers are told about the connection's life.
type Handlers struct {
	// AsyncError receives errors the server sends outside any request
	// (a permissions violation on publish, a slow consumer).
	AsyncError func(error)
}

// Connect dials the servers, once, with timeout for the dial and the
// handshake. The connection then reconnects on its own, forever, to any
// server of the cluster; the caller closes it. A refused login comes
// back as an error for which IsAuth is true.
func Connect(c *Client, name string, timeout time.Duration, log *slog.Logger, h Handlers) (*nats.Conn, error) {
	opts, err := c.options(name, timeout, log, h)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.Redacted(), redact.Error(err))
	}
	return nc, nil
}

func (c *Client) options(name string, timeout time.Duration, log *slog.Logger, h Handlers) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected; reconnecting", "err", redact.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "server", redact.URL(nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if h.AsyncError != nil {
				h.AsyncError(err)
			}
		}),
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.CredentialsFile != "":
		if _, err := capread.File(c.CredentialsFile, capread.Secret, "a credentials file"); err != nil {
			return nil, fmt.Errorf("credentials_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredentialsFile))
	case c.NKeyFile != "":
		if _, err := capread.File(c.NKeyFile, capread.Secret, "an nkey seed file"); err != nil {
			return nil, fmt.Errorf("nkey_file: %w", err)
		}
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey_file: %w", err)
		}
		opts = append(opts, o)
	}
	tc, errs := c.TLS.Load()
	if err := clienttls.Join(errs); err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// IsAuth reports whether err is the server refusing who we are or what
// we may do: waiting will not help, an operator must.
func IsAuth(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
		nats.ErrAccountAuthExpired, nats.ErrPermissionViolation} {
		if errors.Is(err, e) {
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "authorization violation") || strings.Contains(msg, "permissions violation") ||
		strings.Contains(msg, "authentication expired") || strings.Contains(msg, "authentication revoked")
}
