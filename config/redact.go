package config

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/redact"
)

// Redaction is what Redacted puts in place of a secret.
const Redaction = redact.Mark

// Redacted returns a deep copy of c that is safe to log: InfluxDB tokens,
// passwords and secret query parameters in URLs, and the values of feed
// config keys that look secret (token, password, secret, api_key, ...; see
// redact.SecretKey) are replaced with Redaction.
func (c *Config) Redacted() *Config {
	r := *c
	r.Plugins = maps.Clone(c.Plugins)
	r.Sinks = make(map[string]Sink, len(c.Sinks))
	for name, s := range c.Sinks {
		if s.SQLite != nil {
			sq := *s.SQLite
			s.SQLite = &sq
		}
		if s.InfluxDB != nil {
			ix := s.InfluxDB.redacted()
			s.InfluxDB = &ix
		}
		if s.NATS != nil {
			nc := *s.NATS
			nc.StreamSubjects = slices.Clone(nc.StreamSubjects)
			for _, p := range []*string{&nc.Password, &nc.Token} {
				if *p != "" {
					*p = Redaction
				}
			}
			nc.URL = nc.Redacted()
			s.NATS = &nc
		}
		r.Sinks[name] = s
	}
	r.Feeds = make(map[string]Feed, len(c.Feeds))
	for name, f := range c.Feeds {
		f.Sinks = slices.Clone(f.Sinks)
		f.Config = redactFree(f.Config)
		r.Feeds[name] = f
	}
	return &r
}

// String renders the redacted configuration as YAML, with every default
// filled in. It is what fmt and log/slog print for a Config.
func (c Config) String() string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(toTree(reflect.ValueOf(c.Redacted()))); err != nil {
		return fmt.Sprintf("config: cannot render: %v", err)
	}
	return b.String()
}

// String prints the InfluxDB settings without the token.
func (c InfluxDB) String() string {
	r := c.redacted()
	return fmt.Sprintf("%+v", influxDB(r))
}

// GoString is String for %#v.
func (c InfluxDB) GoString() string { return c.String() }

// influxDB has InfluxDB's fields without its methods, so printing it does
// not recurse.
type influxDB InfluxDB

func (c InfluxDB) redacted() InfluxDB {
	if c.Token != "" {
		c.Token = Redaction
	}
	c.URL = redact.URL(c.URL)
	return c
}

func redactFree(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if redact.SecretKey(k) && v != nil {
			out[k] = Redaction
			continue
		}
		out[k] = redactValue(v)
	}
	return out
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return redactFree(x)
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = redactValue(v)
		}
		return out
	case string:
		if strings.Contains(x, "://") {
			return redact.Text(x)
		}
	}
	return v
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sinkType     = reflect.TypeFor[Sink]()
)

// toTree turns a config value into maps keyed by the koanf tags, the same
// shape the files have. A sink is flattened back into one mapping.
func toTree(v reflect.Value) any {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Type() == sinkType:
		s := v.Interface().(Sink)
		m := map[string]any{"type": s.Type}
		for _, part := range []any{s.Pipeline, s.SQLite, s.InfluxDB, s.NATS} {
			if sub, ok := toTree(reflect.ValueOf(part)).(map[string]any); ok {
				maps.Copy(m, sub)
			}
		}
		return m
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return toTree(v.Elem())
	case reflect.Struct:
		m := make(map[string]any)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			tag := f.Tag.Get("koanf")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			if tag == ",squash" { // an embedded struct's keys are the parent's
				if sub, ok := toTree(v.Field(i)).(map[string]any); ok {
					maps.Copy(m, sub)
				}
				continue
			}
			m[tag] = toTree(v.Field(i))
		}
		return m
	case reflect.Map:
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(it.Key().Interface())] = toTree(it.Value())
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toTree(v.Index(i))
		}
		return out
	case reflect.String:
		return v.String()
	}
	return v.Interface()
}
