package jsonws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

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

// show renders the template with each reference written out as itself
// (${env:NAME}), for the sample mode, which reads no secrets.
func (t template) show() string {
	s, _ := t.t.Render(func(r secret.Ref) (string, error) { return r.String(), nil })
	return s
}

// msgRefPrefix starts a reference to a value of the message an answer
// replies to: ${msg:PATH}, PATH a gjson path.
const msgRefPrefix = "${msg:"

// text is a string of a message to send: secret templates and, in an
// answer's reply, ${msg:PATH} references to the message answered.
type text []textPart

type textPart struct {
	lit *template // nil for a reference
	ref *jpath
}

// parseText splits s into templates and ${msg:..} references, which
// only answer replies (allowRefs) may hold. $$ is a literal $, so
// $${msg:x} is the text ${msg:x}.
func parseText(s string, scrub *redact.Scrubber, allowRefs bool) (text, error) {
	var out text
	lit := func(from, to int) error {
		if from == to {
			return nil
		}
		t, err := parseTemplate(s[from:to], scrub)
		if err != nil {
			return err
		}
		out = append(out, textPart{lit: &t})
		return nil
	}
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			i++
		case strings.HasPrefix(s[i:], msgRefPrefix):
			if !allowRefs {
				return nil, fmt.Errorf("reference at byte %d: ${msg:PATH} takes a value from the message answered; only answer[].reply may use it", i)
			}
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("reference at byte %d: ${msg: without a closing }", i)
			}
			p, err := compilePath(s[i+len(msgRefPrefix) : i+end])
			if err != nil {
				return nil, fmt.Errorf("reference at byte %d: %v", i, err)
			}
			if err := lit(start, i); err != nil {
				return nil, err
			}
			out = append(out, textPart{ref: &p})
			i += end
			start = i + 1
		}
	}
	if err := lit(start, len(s)); err != nil {
		return nil, err
	}
	return out, nil
}

func (t text) hasRefs() bool {
	return slices.ContainsFunc(t, func(p textPart) bool { return p.ref != nil })
}

// render resolves the text: secrets with resolve, references from msg.
// A reference alone (the whole string) keeps the JSON type of its value
// (raw is its JSON text); otherwise references are written as text.
func (t text) render(msg gjson.Result, show bool) (s string, raw []byte, err error) {
	var b strings.Builder
	for _, p := range t {
		if p.lit != nil {
			if show {
				b.WriteString(p.lit.show())
				continue
			}
			v, err := p.lit.render()
			if err != nil {
				return "", nil, err
			}
			b.WriteString(v)
			continue
		}
		v := p.ref.get(msg, msg)
		if !v.Exists() {
			return "", nil, fmt.Errorf("${msg:%s}: missing in the message answered", p.ref.src)
		}
		if len(t) == 1 {
			return textOf(v), []byte(v.Raw), nil
		}
		b.WriteString(textOf(v))
	}
	return b.String(), nil, nil
}

// A message is something the source sends: a config string is sent as
// that text; any other JSON value is sent as compact JSON text. Strings
// anywhere in it are templates, expanded before encoding, so a secret is
// always correctly escaped inside a JSON message. In an answer's reply
// they may reference the message answered: {pong: "${msg:ping}"} sends
// the ping's number back as a number.
type message struct {
	text  text // the config value was a string
	value any  // otherwise, decoded with json.Number; strings are text
	isSet bool
	refs  bool // it holds ${msg:..} references
}

func parseMessage(raw json.RawMessage, scrub *redact.Scrubber) (message, error) {
	return parseMessageRefs(raw, scrub, false)
}

// parseMessageRefs parses a message that may, if allowRefs, reference
// the message it answers.
func parseMessageRefs(raw json.RawMessage, scrub *redact.Scrubber, allowRefs bool) (message, error) {
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
	m := message{isSet: true}
	if s, ok := v.(string); ok {
		t, err := parseText(s, scrub, allowRefs)
		if err != nil {
			return message{}, err
		}
		m.text, m.refs = t, t.hasRefs()
		if m.text == nil {
			m.text = text{}
		}
		return m, nil
	}
	tree, err := mapStrings(v, func(s string) (any, error) {
		t, err := parseText(s, scrub, allowRefs)
		if err != nil {
			return nil, err
		}
		m.refs = m.refs || t.hasRefs()
		return t, nil
	})
	if err != nil {
		return message{}, err
	}
	m.value = tree
	return m, nil
}

func (m message) isZero() bool { return !m.isSet }

// render returns the frame to send, reading its secrets.
func (m message) render() ([]byte, error) { return m.renderFor(gjson.Result{}, false) }

// renderFor returns the frame answering msg. With show, secrets are
// written as their references instead of read (the sample mode).
func (m message) renderFor(msg gjson.Result, show bool) ([]byte, error) {
	if m.value == nil {
		s, _, err := m.text.render(msg, show)
		return []byte(s), err
	}
	v, err := mapStrings(m.value, func(x text) (any, error) {
		s, raw, err := x.render(msg, show)
		if raw != nil {
			return json.RawMessage(raw), err
		}
		return s, err
	})
	if err != nil {
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

// mapStrings returns a copy of a decoded JSON tree with every string
// value (not key) replaced by fn's result; fn receives what stands in a
// string's place (the string, or what an earlier mapStrings put there).
func mapStrings[T any](v any, fn func(T) (any, error)) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			r, err := mapStrings(e, fn)
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return m, nil
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			r, err := mapStrings(e, fn)
			if err != nil {
				return nil, err
			}
			s[i] = r
		}
		return s, nil
	case T:
		return fn(x)
	}
	return v, nil
}
