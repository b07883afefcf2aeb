package jsonws

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/secret"
)

// A template is a string that may reference secrets: ${env:NAME} is the
// environment variable NAME, ${file:PATH} the contents of PATH without
// surrounding whitespace (at most 64 KiB), and $$ a literal $ (see
// internal/secret). Values are read each time the template is rendered,
// are never logged, and are taught to the source's scrubber, which masks
// them in whatever the source logs or reports.
type template struct {
	t     secret.Template
	scrub *redact.Scrubber // may be nil
}

func parseTemplate(s string, scrub *redact.Scrubber) (template, error) {
	t, err := secret.Parse(s)
	if err != nil {
		return template{}, err
	}
	return template{t: t, scrub: scrub}, nil
}

// placeholder renders the template with every reference replaced by "x",
// to check the shape of the result without reading a secret.
func (t template) placeholder() string { return t.t.Placeholder("x") }

// render resolves the references. Errors name the variable or file, never
// a value.
func (t template) render() (string, error) {
	return t.t.Render(func(r secret.Ref) (string, error) {
		v, err := secret.Lookup(r)
		if err == nil {
			t.scrub.Add(v)
		}
		return v, err
	})
}

// A message is something the source sends: a config string is sent as
// that text; any other JSON value is sent as compact JSON text. Strings
// anywhere in it are templates, expanded before encoding, so a secret is
// always correctly escaped inside a JSON message.
type message struct {
	text  *template // the config value was a string
	value any       // otherwise, decoded with json.Number; strings are templates
	scrub *redact.Scrubber
}

func parseMessage(raw json.RawMessage, scrub *redact.Scrubber) (message, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return message{}, errors.New("is required: a string sent as text, or a JSON value")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return message{}, err
	}
	if s, ok := v.(string); ok {
		t, err := parseTemplate(s, scrub)
		if err != nil {
			return message{}, err
		}
		return message{text: &t, scrub: scrub}, nil
	}
	if err := walkStrings(v, func(s string) (string, error) {
		_, err := parseTemplate(s, scrub)
		return s, err
	}); err != nil {
		return message{}, err
	}
	return message{value: v, scrub: scrub}, nil
}

func (m message) isZero() bool { return m.text == nil && m.value == nil }

// render returns the frame to send.
func (m message) render() ([]byte, error) {
	if m.text != nil {
		s, err := m.text.render()
		return []byte(s), err
	}
	v := deepCopy(m.value)
	if err := walkStrings(v, func(s string) (string, error) {
		t, err := parseTemplate(s, m.scrub)
		if err != nil {
			return "", err
		}
		return t.render()
	}); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// walkStrings replaces, in place, every string value (not key) in a
// decoded JSON tree with fn's result. A bare string root cannot be
// replaced in place; callers handle that case themselves.
func walkStrings(v any, fn func(string) (string, error)) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				r, err := fn(s)
				if err != nil {
					return err
				}
				x[k] = r
				continue
			}
			if err := walkStrings(e, fn); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				r, err := fn(s)
				if err != nil {
					return err
				}
				x[i] = r
				continue
			}
			if err := walkStrings(e, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}
