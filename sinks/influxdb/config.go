package influxdb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
)

// Type is the InfluxDB sink type: `type: influxdb`.
var Type = sinks.Define("influxdb", DefaultConfig, New)

// Config is an InfluxDB sink's section of the config file (see the config
// package for the tags). It prints without its secrets.
type Config struct {
	URL       string        `config:"url,required" doc:"base URL of the server: http:// or https://; a password or secret parameter in it is never shown"`
	Org       string        `config:"org,empty" doc:"organization; InfluxDB 1.8 and 3.x ignore it"`
	Bucket    string        `config:"bucket,required" doc:"bucket to write to; for 1.8 \"database/retention_policy\""`
	Token     string        `config:"token,empty,secret" doc:"API token (1.8: \"username:password\"); better set by token_file or SLUICE_SINKS__<NAME>__TOKEN"`
	TokenFile string        `config:"token_file,path=config_dir,secretfile=token" doc:"a file holding only the token, read at load; relative to the main config file's directory"`
	Precision string        `config:"precision,oneof=ns|us|ms|s" doc:"timestamp precision written: ns, us, ms or s"`
	Gzip      bool          `config:"gzip" doc:"compress requests; default true, false for a url on this host"`
	Timeout   time.Duration `config:"timeout" doc:"timeout of one write request"`
	TLS       TLS           `config:"tls" doc:"client TLS for https:// URLs"`
}

// TLS is a client TLS setup.
type TLS = clienttls.Config

// DefaultConfig is the config a sink section that sets only the required
// keys gives (before Complete).
func DefaultConfig() Config {
	return Config{Precision: DefaultPrecision, Gzip: true, Timeout: DefaultTimeout}
}

// Complete defaults gzip by the URL when the file does not set it: gzip
// pays for itself over a network; over loopback it only costs CPU at both
// ends (BENCHMARKS.md: at 100k points/s, 8% of influxd's CPU and 6% of
// the agent's).
func (c *Config) Complete(set func(key string) bool) {
	if !set("gzip") {
		c.Gzip = !loopbackURL(c.URL)
	}
}

// Validate checks what the key types alone do not.
func (c *Config) Validate() error {
	var errs []error
	if msg := checkURL(c.URL); msg != "" {
		errs = append(errs, &sinks.FieldError{Key: "url", Msg: msg})
	}
	for _, e := range c.TLS.Check() {
		errs = append(errs, &sinks.FieldError{Key: e.Key, Msg: e.Err.Error()})
	}
	return errors.Join(errs...)
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// The parser's message quotes the whole URL, which may hold a
		// password.
		return "must be an http:// or https:// URL, got an unparsable URL"
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return ""
	}
	return fmt.Sprintf("must be an http:// or https:// URL, got %q", redact.URL(s))
}

// loopbackURL reports whether u names this host: localhost or a loopback
// address.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := pu.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String prints the settings without the token or the URL's secrets.
func (c Config) String() string {
	if c.Token != "" {
		c.Token = redact.Mark
	}
	c.URL = redact.URL(c.URL)
	return fmt.Sprintf("%+v", plainConfig(c))
}

// GoString is String for %#v.
func (c Config) GoString() string { return c.String() }

// plainConfig has Config's fields without its methods, so printing it
// does not recurse.
type plainConfig Config
