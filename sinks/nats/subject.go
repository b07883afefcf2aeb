package nats

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/natsbus"
)

// DefaultSubject is the subject template a sink uses unless told
// otherwise: trades of Binance spot BTCUSDT go to
// sluice.trades.binance.spot.BTCUSDT.
const DefaultSubject = "sluice.{measurement}.{exchange}.{market}.{symbol}"

// maxSubject bounds a rendered subject. NATS caps a protocol line (the
// subject, the reply subject and a few numbers) at 4 KiB by default; a
// point whose subject would be longer is rejected.
const maxSubject = 1024

// missing stands for a tag a point does not carry, or carries empty.
const missing = "_"

// template is a parsed subject template: dot-separated tokens, each a
// literal or a placeholder, {measurement} or {TAG}, standing for a whole
// token.
type template struct {
	raw    string
	tokens []token
}

type token struct {
	lit string // the literal, when name is ""
	// name is "measurement" for the measurement, else a tag key.
	name string
	meas bool
}

// parseTemplate checks and parses a subject template. The first token
// must be a literal, so that the stream's subjects can be derived from it
// and no subject of the template starts with '$' (the server's own).
func parseTemplate(s string) (*template, error) {
	if s == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	t := &template{raw: s}
	for i, part := range strings.Split(s, ".") {
		switch {
		case part == "":
			return nil, fmt.Errorf("%q has an empty token (two dots in a row, or a dot at an end)", s)
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			if name == "" || strings.ContainsAny(name, "{}") {
				return nil, fmt.Errorf("%q: placeholder %q must name the measurement or a tag: {measurement}, {symbol}", s, part)
			}
			if i == 0 {
				return nil, fmt.Errorf("%q must start with a fixed token such as \"sluice\", not a placeholder", s)
			}
			t.tokens = append(t.tokens, token{name: name, meas: name == "measurement"})
		case strings.ContainsAny(part, "{}"):
			return nil, fmt.Errorf("%q: a placeholder must be a whole token between dots, got %q", s, part)
		case strings.ContainsAny(part, "*> \t\r\n") || strings.IndexFunc(part, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return nil, fmt.Errorf("%q: token %q may not hold wildcards ('*', '>'), spaces or control characters", s, part)
		case i == 0 && strings.HasPrefix(part, "$"):
			return nil, fmt.Errorf("%q: subjects starting with '$' belong to the server", s)
		default:
			t.tokens = append(t.tokens, token{lit: part})
		}
	}
	return t, nil
}

// subjectByte keeps what a subject token may hold as is.
func subjectByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// escapeToken makes a value one subject token: letters, digits, '_' and
// '-' stay, every other byte is %XX; an empty value is "_", and the value
// "_" itself is "%5F", so that the two stay apart.
func escapeToken(v string) string {
	switch v {
	case "":
		return missing
	case missing:
		return "%5F"
	}
	return natsbus.Escape(v, subjectByte)
}

// render returns p's subject.
func (t *template) render(p *sluice.Point) (string, error) {
	var b strings.Builder
	for i, tok := range t.tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case tok.name == "":
			b.WriteString(tok.lit)
		case tok.meas:
			b.WriteString(escapeToken(p.Measurement))
		default:
			v, _ := p.Tag(tok.name)
			b.WriteString(escapeToken(v))
		}
	}
	if b.Len() > maxSubject {
		return "", fmt.Errorf("subject longer than %d bytes (%d): a tag in the subject template holds a long value", maxSubject, b.Len())
	}
	return b.String(), nil
}

func (t *template) hasMeasurement() bool {
	return slices.ContainsFunc(t.tokens, func(tok token) bool { return tok.meas })
}

// wildcard is the subject filter holding every subject the template can
// render: each placeholder a '*'.
func (t *template) wildcard() string {
	parts := make([]string, len(t.tokens))
	for i, tok := range t.tokens {
		if tok.name == "" {
			parts[i] = tok.lit
		} else {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ".")
}

// streamSubject is the subject a created stream takes by default: the
// template's fixed tokens up to its first placeholder, then '>'
// ("sluice.>"), so that later changes of the template's placeholders still
// fit the stream.
func (t *template) streamSubject() string {
	var parts []string
	for _, tok := range t.tokens {
		if tok.name != "" {
			break
		}
		parts = append(parts, tok.lit)
	}
	if len(parts) == len(t.tokens) {
		return t.raw // no placeholder at all
	}
	return strings.Join(parts, ".") + ".>"
}

// covers reports whether every subject matching filter also matches
// pattern (both may hold '*' and '>').
func covers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(f) > i // '>' needs at least one token
		}
		if i >= len(f) {
			return false
		}
		switch {
		case f[i] == ">":
			return false // the filter reaches further than this pattern can
		case pt == "*":
		case pt != f[i]:
			return false
		}
	}
	return len(f) == len(p)
}

// coveredBy returns whether one of a stream's subjects holds every subject
// of filter.
func coveredBy(subjects []string, filter string) bool {
	for _, s := range subjects {
		if covers(s, filter) {
			return true
		}
	}
	return false
}
