package jsonws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// A template is a string that may reference secrets: ${env:NAME} is the
// environment variable NAME, ${file:PATH} the contents of PATH without
// surrounding whitespace, and $$ a literal $. Values are read each time
// the template is rendered and are never logged.
type template struct {
	parts []part
}

type part struct {
	lit  string
	kind string // "", "env" or "file"
	arg  string
}

func parseTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			lit.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			lit.WriteByte('$')
			i++
			continue
		case '{':
		default:
			lit.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return template{}, fmt.Errorf("unterminated reference at %q (write $$ for a literal $)", s[i:])
		}
		ref := s[i+2 : i+end]
		kind, arg, ok := strings.Cut(ref, ":")
		if !ok || (kind != "env" && kind != "file") || arg == "" {
			return template{}, fmt.Errorf("reference ${%s} must be ${env:NAME} or ${file:PATH} (write $$ for a literal $)", ref)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{kind: kind, arg: arg})
		i += end
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// placeholder renders the template with every reference replaced by "x",
// to check the shape of the result without reading a secret.
func (t template) placeholder() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString("x")
		}
	}
	return b.String()
}

// render resolves the references. Errors name the variable or file, never
// a value.
func (t template) render() (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case "":
			b.WriteString(p.lit)
		case "env":
			v, ok := os.LookupEnv(p.arg)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", p.arg)
			}
			b.WriteString(v)
		case "file":
			v, err := os.ReadFile(p.arg)
			if err != nil {
				return "", errors.New(fileErr(err))
			}
			b.Write(bytes.TrimSpace(v))
		}
	}
	return b.String(), nil
}

// A message is something the source sends: a config string is sent as
// that text; any other JSON value is sent as compact JSON text. Strings
// anywhere in it are templates, expanded before encoding, so a secret is
// always correctly escaped inside a JSON message.
type message struct {
	text  *template // the config value was a string
	value any       // otherwise, decoded with json.Number; strings are templates
}

func parseMessage(raw json.RawMessage) (message, error) {
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
		t, err := parseTemplate(s)
		if err != nil {
			return message{}, err
		}
		return message{text: &t}, nil
	}
	if err := walkStrings(v, func(s string) (string, error) {
		_, err := parseTemplate(s)
		return s, err
	}); err != nil {
		return message{}, err
	}
	return message{value: v}, nil
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
		t, err := parseTemplate(s)
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
