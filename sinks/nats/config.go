package nats

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/natsbus"
)

// Config is a NATS sink's section of the agent's config (`type: nats`).
// DefaultConfig gives every default; Validate checks it. Paths are taken
// as given: the config loader resolves relative ones first.
type Config struct {
	// Client: url (one server or several, comma-separated), the
	// credentials (user/password, token, credentials_file, nkey_file)
	// and tls.
	natsbus.Client `yaml:",inline" koanf:",squash"`

	// Stream is the JetStream stream the sink publishes into (required).
	Stream string `yaml:"stream" koanf:"stream"`
	// Subject is the subject template (see doc.go).
	Subject string `yaml:"subject" koanf:"subject"`

	// CreateStream creates the stream, with the Stream* settings below,
	// when it does not exist. An existing stream is never changed.
	CreateStream bool `yaml:"create_stream" koanf:"create_stream"`
	// StreamSubjects are a created stream's subjects; empty: the
	// subject template's fixed prefix and ">" ("sluice.>").
	StreamSubjects []string `yaml:"stream_subjects" koanf:"stream_subjects"`
	// StreamReplicas is a created stream's replication factor: 1, or 3
	// (or 5) on a cluster.
	StreamReplicas int `yaml:"stream_replicas" koanf:"stream_replicas"`
	// StreamStorage is "file" or "memory".
	StreamStorage string `yaml:"stream_storage" koanf:"stream_storage"`
	// StreamMaxAge discards messages older than this; 0 keeps them.
	StreamMaxAge time.Duration `yaml:"stream_max_age" koanf:"stream_max_age"`
	// StreamMaxBytes discards the oldest messages past this size; 0: no
	// bound.
	StreamMaxBytes int64 `yaml:"stream_max_bytes" koanf:"stream_max_bytes"`
	// DuplicateWindow is how long a created stream remembers message ids
	// (see doc.go, "Duplicate window").
	DuplicateWindow time.Duration `yaml:"duplicate_window" koanf:"duplicate_window"`

	// MaxInFlight bounds the messages published and not yet acknowledged.
	MaxInFlight int `yaml:"max_in_flight" koanf:"max_in_flight"`
	// Timeout bounds connecting, each JetStream API request and the wait
	// for each message's acknowledgement.
	Timeout time.Duration `yaml:"timeout" koanf:"timeout"`
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

// FieldError is one problem with one key, relative to the sink's section.
type FieldError = natsbus.FieldError

// Validate returns every problem with c, each naming its key.
func (c *Config) Validate() []FieldError {
	errs := c.Client.Validate()
	add := func(key, format string, args ...any) {
		errs = append(errs, FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
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
		if msg := checkFilter(s); msg != "" {
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

// checkFilter returns what is wrong with a subject filter, or "".
func checkFilter(s string) string {
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return fmt.Sprintf("%q has an empty token", s)
		case tok == ">" && i != len(toks)-1:
			return fmt.Sprintf("%q: '>' may only be the last token", s)
		case tok == ">" || tok == "*":
		case strings.ContainsAny(tok, "*> \t\r\n"):
			return fmt.Sprintf("%q: token %q may not hold a wildcard inside other characters, or whitespace", s, tok)
		}
	}
	return ""
}
