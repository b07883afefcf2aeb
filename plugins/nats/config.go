package nats

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/internal/secret"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Config is the feed's `config:` block.
type Config struct {
	// url, user, password, token, credentials_file, nkey_file, tls: as
	// for the nats sink. password and token may be ${env:NAME} or
	// ${file:PATH}.
	natsbus.Client
	// Stream is the JetStream stream to read (required).
	Stream string `json:"stream"`
	// Subjects filter what is read (several, with wildcards, e.g.
	// ["sluice.trades.>"]); empty: everything in the stream.
	Subjects []string `json:"subjects"`
	// Deliver is where a feed without a position starts: "all" (the
	// oldest message the stream holds) or "new" (what arrives from now).
	Deliver string `json:"deliver"`
	// Timeout bounds connecting and each JetStream request.
	Timeout sdk.Duration `json:"timeout"`
}

// Defaults.
const (
	DefaultDeliver = "all"
	DefaultTimeout = 10 * time.Second
)

func defaultConfig() Config {
	return Config{Deliver: DefaultDeliver, Timeout: sdk.Duration(DefaultTimeout)}
}

// validate returns every problem at once.
func (c *Config) validate() sdk.ConfigErrors {
	var errs sdk.ConfigErrors
	for _, e := range c.Client.Validate() {
		errs = append(errs, sdk.ConfigError{Key: e.Key, Msg: e.Msg})
	}
	if c.Stream == "" {
		errs = append(errs, sdk.ConfigError{Key: "stream", Msg: "missing: the JetStream stream to read"})
	} else if strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") {
		errs = append(errs, sdk.ConfigError{Key: "stream", Msg: fmt.Sprintf("stream name %q may not hold '.', '*', '>', '/', '\\' or whitespace", c.Stream)})
	}
	for i, s := range c.Subjects {
		if msg := natsbus.CheckFilter(s); msg != "" {
			errs = append(errs, sdk.ConfigError{Key: fmt.Sprintf("subjects[%d]", i), Msg: msg})
		}
	}
	if c.Deliver != "all" && c.Deliver != "new" {
		errs = append(errs, sdk.ConfigError{Key: "deliver", Msg: fmt.Sprintf("must be all or new, got %q", c.Deliver)})
	}
	if c.Timeout <= 0 {
		errs = append(errs, sdk.ConfigError{Key: "timeout", Msg: "must be positive"})
	}
	for key, v := range map[string]string{"password": c.Password, "token": c.Token} {
		if _, err := secret.Parse(v); err != nil {
			errs = append(errs, sdk.ConfigError{Key: key, Msg: err.Error()})
		}
	}
	return errs
}

// render resolves the ${env:}/${file:} references of the secrets.
func (c *Config) render() (natsbus.Client, error) {
	out := c.Client
	for key, p := range map[string]*string{"password": &out.Password, "token": &out.Token} {
		t, err := secret.Parse(*p)
		if err != nil {
			return out, fmt.Errorf("%s: %w", key, err)
		}
		if *p, err = t.Render(secret.Lookup); err != nil {
			return out, fmt.Errorf("%s: %w", key, err)
		}
	}
	return out, nil
}
