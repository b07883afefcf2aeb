package live

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice"
)

// DefaultChannel is the channel template a point is published on unless
// its measurement has one of its own: trades of Binance spot BTCUSDT go
// to trades:binance:spot:BTCUSDT.
const DefaultChannel = "{measurement}:{exchange}:{market}:{symbol}"

// MaxChannel bounds a rendered channel name: what a client may subscribe
// to (the client protocol's own limit). A point whose channel would be
// longer is not published, and counted as rejected.
const MaxChannel = 255

// missing stands for a tag a point does not carry, or carries empty.
const missing = "_"

// template is a parsed channel template: literal text and placeholders,
// {measurement} or {TAG}.
type template struct {
	raw   string
	parts []part
}

type part struct {
	lit  string // the literal, when name is ""
	name string // "measurement", or a tag key
}

// parseTemplate checks and parses a channel template.
func parseTemplate(s string) (*template, error) {
	if s == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	t := &template{raw: s}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			open = len(rest)
		}
		if lit := rest[:open]; lit != "" {
			if strings.ContainsRune(lit, '}') {
				return nil, fmt.Errorf("%q: a '}' without its '{'", s)
			}
			if i := strings.IndexFunc(lit, badLiteral); i >= 0 {
				return nil, fmt.Errorf("%q: %q may not appear in a channel template (no spaces, control characters, '*' or '%%')", s, lit[i:i+1])
			}
			t.parts = append(t.parts, part{lit: lit})
		}
		rest = rest[open:]
		if rest == "" {
			break
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: a '{' without its '}'", s)
		}
		name := rest[1:end]
		if name == "" || strings.ContainsAny(name, "{ \t") {
			return nil, fmt.Errorf("%q: placeholder %q must name the measurement or a tag: {measurement}, {symbol}", s, rest[:end+1])
		}
		if n := len(t.parts); n > 0 && t.parts[n-1].name != "" {
			// {a}{b} could not be told apart from other values of a and b.
			return nil, fmt.Errorf("%q: two placeholders need a separator between them", s)
		}
		t.parts = append(t.parts, part{name: name})
		rest = rest[end+1:]
	}
	return t, nil
}

// badLiteral reports a rune a template's literal text may not hold: '*'
// is for patterns in tokens, '%' for escapes in values.
func badLiteral(r rune) bool {
	return r <= ' ' || r == 0x7f || r == '*' || r == '%'
}

// channelByte keeps what a value may hold as is in a channel name.
func channelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// appendEscaped appends a tag value or measurement to a channel name:
// letters, digits, '_', '-' and '.' stay, every other byte is %XX (so
// that a value cannot add a separator or a '*'); an empty value is "_",
// and the value "_" itself "%5F", so that the two stay apart.
func appendEscaped(b []byte, v string) []byte {
	switch v {
	case "":
		return append(b, missing...)
	case missing:
		return append(b, "%5F"...)
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if channelByte(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return b
}

// render appends p's channel to b.
func (t *template) render(b []byte, p *sluice.Point) ([]byte, error) {
	start := len(b)
	for _, pt := range t.parts {
		switch {
		case pt.name == "":
			b = append(b, pt.lit...)
		case pt.name == "measurement":
			b = appendEscaped(b, p.Measurement)
		default:
			v, _ := p.Tag(pt.name)
			b = appendEscaped(b, v)
		}
	}
	if n := len(b) - start; n > MaxChannel {
		return b[:start], fmt.Errorf("channel longer than %d bytes (%d): a tag in the channel template holds a long value", MaxChannel, n)
	}
	return b, nil
}

// router picks each point's template: its measurement's own, else the
// default.
type router struct {
	def    *template
	byMeas map[string]*template
}

// newRouter parses the default template and the measurement=template
// overrides; errors name what is wrong, for Validate to place.
func newRouter(def string, overrides []string) (*router, []error) {
	r := &router{byMeas: make(map[string]*template)}
	var errs []error
	t, err := parseTemplate(def)
	if err != nil {
		errs = append(errs, fieldErr("channel", "%v", err))
	}
	r.def = t
	for i, o := range overrides {
		key := fmt.Sprintf("channels[%d]", i)
		meas, tmpl, ok := strings.Cut(o, "=")
		meas = strings.TrimSpace(meas)
		switch {
		case !ok || meas == "":
			errs = append(errs, fieldErr(key, "must be measurement=template, such as book={measurement}:{exchange}:{market}:{symbol}:{side}, got %q", o))
			continue
		case r.byMeas[meas] != nil:
			errs = append(errs, fieldErr(key, "measurement %q has a template already", meas))
			continue
		}
		t, err := parseTemplate(strings.TrimSpace(tmpl))
		if err != nil {
			errs = append(errs, fieldErr(key, "%v", err))
			continue
		}
		r.byMeas[meas] = t
	}
	return r, errs
}

func (r *router) template(measurement string) *template {
	if t, ok := r.byMeas[measurement]; ok {
		return t
	}
	return r.def
}
