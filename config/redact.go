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

// Redacted returns a deep copy of c that is safe to log: the values of
// secret sink and cluster keys (the secret tag option),
// passwords and secret query parameters in URLs, and the values of feed
// config keys that look secret (token, password, secret, api_key, ...;
// see redact.SecretKey) are replaced with Redaction.
func (c *Config) Redacted() *Config {
	r := *c
	r.Plugins = maps.Clone(c.Plugins)
	r.Sinks = make(map[string]Sink, len(c.Sinks))
	for name, s := range c.Sinks {
		s.Options = redactOptions(s.Options)
		r.Sinks[name] = s
	}
	r.Feeds = make(map[string]Feed, len(c.Feeds))
	for name, f := range c.Feeds {
		f.Sinks = slices.Clone(f.Sinks)
		f.Config = redactFree(f.Config)
		r.Feeds[name] = f
	}
	if c.Cluster != nil {
		cl := *c.Cluster
		redactStruct(reflect.ValueOf(&cl).Elem())
		r.Cluster = &cl
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

// redactOptions returns a copy of a sink's options, a pointer to a
// struct, with its secrets masked: the values of secret keys, and what
// redact.URL masks in any value that holds "://".
func redactOptions(opts any) any {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return opts
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	redactStruct(cp.Elem())
	return cp.Interface()
}

// redactStruct masks the secrets of a struct in place. Slices are copied
// before they are changed: they share their array with the original.
func redactStruct(v reflect.Value) {
	fields, _ := fieldsOf(v.Type())
	for _, f := range fields {
		fv := v.Field(f.index)
		switch {
		case fv.Kind() == reflect.String && f.opts.secret:
			if fv.String() != "" {
				fv.SetString(Redaction)
			}
		case fv.Kind() == reflect.String:
			fv.SetString(redactString(fv.String()))
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			out := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
			for i := range fv.Len() {
				s := fv.Index(i).String()
				if f.opts.secret && s != "" {
					s = Redaction
				}
				out.Index(i).SetString(redactString(s))
			}
			if !fv.IsNil() {
				fv.Set(out)
			}
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			redactStruct(fv)
		}
	}
}

// redactString masks the URLs in a sink's value: one URL, or several
// separated by commas (a server list).
func redactString(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if strings.Contains(p, "://") {
			parts[i] = redact.URL(strings.TrimSpace(p))
		}
	}
	return strings.Join(parts, ",")
}

// urlSecrets are the secrets of the URLs in a sink's value (see
// redactString).
func urlSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if strings.Contains(p, "://") {
			out = append(out, redact.URLSecrets(strings.TrimSpace(p))...)
		}
	}
	return out
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

var sinkStructType = reflect.TypeFor[Sink]()

// toTree turns a config value into maps keyed by the config tags, the same
// shape the files have. A sink is flattened back into one mapping.
func toTree(v reflect.Value) any {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Type() == sinkStructType:
		s := v.Interface().(Sink)
		m := map[string]any{"type": s.Type}
		for _, part := range []any{s.Pipeline, s.Options} {
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
		fields, _ := fieldsOf(v.Type())
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			if fv := v.Field(f.index); fv.Kind() != reflect.Pointer || !fv.IsNil() {
				m[f.key] = toTree(fv) // an optional section left out is not shown
			}
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
