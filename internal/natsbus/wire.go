package natsbus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a Sluice message. The body is one line of InfluxDB line
// protocol (internal/lineproto, uints tagged "u", nanosecond timestamp).
const (
	// HeaderUnique lists the names of the point's declared uniqueness key
	// (FormatUnique), so that a reader can declare it downstream. Absent
	// when the measurement has none.
	HeaderUnique = "Sluice-Unique"
	// HeaderReceived is when the recording source received the point,
	// Unix nanoseconds in decimal. Absent when unknown.
	HeaderReceived = "Sluice-Received"
)

// Escape writes s with every byte that keep refuses as %XX (upper-case
// hex), '%' included: a reversible, collision-free encoding.
func Escape(s string, keep func(c byte) bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || !keep(c) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || !keep(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// Unescape reverses Escape.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("%q: '%%' without two hex digits", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("%q: '%%' without two hex digits", s)
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b), nil
}

// headerByte keeps what a header value may carry as is: printable ASCII
// and UTF-8 continuation bytes, but not ',' (the list separator).
func headerByte(c byte) bool { return c >= 0x20 && c != 0x7f && c != ',' }

// FormatUnique is the Sluice-Unique header value for a uniqueness key:
// the names in order, each escaped (',', '%' and control characters as
// %XX), joined by ','.
func FormatUnique(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(Escape(n, headerByte))
	}
	return b.String()
}

// ParseUnique reverses FormatUnique. An empty value is no key.
func ParseUnique(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		n, err := Unescape(p)
		if err != nil {
			return nil, err
		}
		if n == "" {
			return nil, errors.New("empty name in the uniqueness key")
		}
		parts[i] = n
	}
	return parts, nil
}

// FormatTime is a header's time: Unix nanoseconds in decimal.
func FormatTime(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// ParseTime reverses FormatTime.
func ParseTime(v string) (time.Time, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("not Unix nanoseconds: %q", v)
	}
	return time.Unix(0, n), nil
}

// CheckFilter returns what is wrong with a subject filter (tokens
// separated by dots, * for one token, > for the rest), or "". The sink
// checks its stream_subjects with it, the source its subjects.
func CheckFilter(s string) string {
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
