package nats

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.URL, ok.Stream = "nats://a:4222, tls://b:4222", "SLUICE"
	if errs := ok.problems(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	tests := []struct {
		key  string
		edit func(*Config)
	}{
		{"url", func(c *Config) { c.URL = "http://a:4222" }},
		{"url", func(c *Config) { c.URL = " , " }},
		{"stream", func(c *Config) { c.Stream = "" }},
		{"stream", func(c *Config) { c.Stream = "a.b" }},
		{"subject", func(c *Config) { c.Subject = "sluice.{symbol}" }},
		{"subject", func(c *Config) { c.Subject = "sluice.*" }},
		{"stream_subjects", func(c *Config) { c.StreamSubjects = []string{"other.>"} }},
		{"stream_subjects[0]", func(c *Config) { c.StreamSubjects = []string{"a.>.b"} }},
		{"stream_replicas", func(c *Config) { c.StreamReplicas = 0 }},
		{"stream_storage", func(c *Config) { c.StreamStorage = "disk" }},
		{"duplicate_window", func(c *Config) { c.StreamMaxAge, c.DuplicateWindow = time.Minute, time.Hour }},
		{"max_in_flight", func(c *Config) { c.MaxInFlight = 0 }},
		{"timeout", func(c *Config) { c.Timeout = 0 }},
		{"nkey_file", func(c *Config) { c.Token, c.NKeyFile = "t", "seed" }},
		{"user", func(c *Config) { c.Password = "p" }},
		{"tls.key_file", func(c *Config) { c.TLS.CertFile = "c.pem" }},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		errs := c.problems()
		var fe *sinks.FieldError
		if len(errs) != 1 || !errors.As(errs[0], &fe) || fe.Key != tt.key {
			t.Errorf("want one error at %s, got %v", tt.key, errs)
		}
	}
	if errs := (&Config{}).problems(); len(errs) == 0 || !strings.HasPrefix(errs[0].Error(), "url: ") {
		t.Errorf("zero config: %v", errs)
	}
}
