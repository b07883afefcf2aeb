package nats

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/sinks"
)

// Type is the NATS JetStream sink type: `type: nats`.
var Type = sinks.Define("nats", DefaultConfig, New)

// Config is a NATS sink's section of the agent's config (`type: nats`;
// see the config package for the tags). DefaultConfig gives every
// default; Validate checks what the key types alone do not.
type Config struct {
	URL             string `config:"url,required" doc:"one server or several, comma-separated: nats://host:4222, tls://host:4222; a password in it is never shown"`
	User            string `config:"user" doc:"user name, with password"`
	Password        string `config:"password,secret" doc:"password, with user; better set by SLUICE_SINKS__<NAME>__PASSWORD"`
	Token           string `config:"token,secret" doc:"authentication token"`
	CredentialsFile string `config:"credentials_file,path=config_dir" doc:"a .creds file (user JWT and NKey seed)"`
	NKeyFile        string `config:"nkey_file,path=config_dir" doc:"a file holding an NKey seed"`
	TLS             TLS    `config:"tls" doc:"client TLS for tls:// servers"`

	Stream string `config:"stream,required" doc:"the JetStream stream the sink publishes into"`
	// Subject is the subject template (see doc.go).
	Subject string `config:"subject" doc:"subject template over the measurement and tag names (see sinks/nats/README.md)"`

	CreateStream    bool          `config:"create_stream" doc:"create the stream, with the stream_* settings, when it does not exist; an existing stream is never changed"`
	StreamSubjects  []string      `config:"stream_subjects" doc:"a created stream's subjects; empty: the subject template's fixed prefix and \">\""`
	StreamReplicas  int           `config:"stream_replicas" doc:"a created stream's replication factor: 1, or 3 (or 5) on a cluster"`
	StreamStorage   string        `config:"stream_storage,oneof=file|memory" doc:"a created stream's storage: file or memory"`
	StreamMaxAge    time.Duration `config:"stream_max_age,zero" doc:"a created stream discards messages older than this; 0 keeps them"`
	StreamMaxBytes  int64         `config:"stream_max_bytes,zero" doc:"a created stream discards its oldest messages past this size; 0: no bound"`
	DuplicateWindow time.Duration `config:"duplicate_window" doc:"how long a created stream remembers message ids (see sinks/nats/README.md, duplicate window)"`

	MaxInFlight int           `config:"max_in_flight" doc:"most messages published and not yet acknowledged"`
	Timeout     time.Duration `config:"timeout" doc:"bounds connecting, each JetStream API request and the wait for each acknowledgement"`
}

// TLS is the client side of TLS to the servers.
type TLS = clienttls.Config

// client is the connection part of c, as the NATS source plugin shares it.
func (c *Config) client() natsbus.Client {
	return natsbus.Client{
		URL: c.URL, User: c.User, Password: c.Password, Token: c.Token,
		CredentialsFile: c.CredentialsFile, NKeyFile: c.NKeyFile, TLS: c.TLS,
	}
}

// URLs are the servers URL names.
func (c *Config) URLs() []string {
	cl := c.client()
	return cl.URLs()
}

// Defaults.
const (
	DefaultStorage         = "file"
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxInFlight     = 1024
	DefaultTimeout         = 10 * time.Second
)

// DefaultConfig is a sink's config before its section is read.
func DefaultConfig() Config {
	return Config{
		Subject:         DefaultSubject,
		StreamReplicas:  1,
		StreamStorage:   DefaultStorage,
		DuplicateWindow: DefaultDuplicateWindow,
		MaxInFlight:     DefaultMaxInFlight,
		Timeout:         DefaultTimeout,
	}
}

// Validate returns every problem with c, each a *sinks.FieldError naming
// its key, joined.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// problems lists what Validate reports.
func (c *Config) problems() []error {
	cl := c.client()
	var errs []error
	for _, fe := range cl.Validate() {
		errs = append(errs, &sinks.FieldError{Key: fe.Key, Msg: fe.Msg})
	}
	add := func(key, format string, args ...any) {
		errs = append(errs, &sinks.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Stream == "" {
		add("stream", "missing: the JetStream stream to publish into")
	} else if msg := CheckStreamName(c.Stream); msg != "" {
		add("stream", "%s", msg)
	}
	tmpl, err := parseTemplate(c.Subject)
	switch {
	case err != nil:
		add("subject", "%v", err)
	case !tmpl.hasMeasurement():
		// The nats source learns each measurement's key from the last
		// message of each subject: a subject must hold one measurement.
		add("subject", "%q must have a {measurement} token, so that each subject holds one measurement", c.Subject)
	}
	badFilter := false
	for i, s := range c.StreamSubjects {
		if msg := natsbus.CheckFilter(s); msg != "" {
			add(fmt.Sprintf("stream_subjects[%d]", i), "%s", msg)
			badFilter = true
		}
	}
	if tmpl != nil && !badFilter && len(c.StreamSubjects) > 0 && !coveredBy(c.StreamSubjects, tmpl.wildcard()) {
		add("stream_subjects", "%v does not hold every subject of the template %q (%s)", c.StreamSubjects, c.Subject, tmpl.wildcard())
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		add("stream_replicas", "must be 1 to 5, got %d", c.StreamReplicas)
	}
	if c.StreamStorage != "file" && c.StreamStorage != "memory" {
		add("stream_storage", "must be file or memory, got %q", c.StreamStorage)
	}
	if c.StreamMaxAge < 0 {
		add("stream_max_age", "must not be negative")
	}
	if c.StreamMaxBytes < 0 {
		add("stream_max_bytes", "must not be negative")
	}
	if c.DuplicateWindow <= 0 {
		add("duplicate_window", "must be positive")
	} else if c.StreamMaxAge > 0 && c.DuplicateWindow > c.StreamMaxAge {
		add("duplicate_window", "must not exceed stream_max_age (%s), got %s", c.StreamMaxAge, c.DuplicateWindow)
	}
	if c.MaxInFlight < 1 {
		add("max_in_flight", "must be positive")
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive")
	}
	return errs
}

// CheckStreamName returns what is wrong with a stream name, or "".
func CheckStreamName(s string) string {
	if len(s) > 255 {
		return "a stream name is at most 255 characters"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c <= ' ' || c == 0x7f:
			return fmt.Sprintf("stream name %q may not hold '.', '*', '>', '/', '\\', spaces or control characters", s)
		}
	}
	return ""
}
