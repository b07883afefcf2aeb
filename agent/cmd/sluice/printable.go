package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Strings from the agent (feed and sink names, errors, tapped points, a
// refusal's message) reach the user's terminal. Whatever sent them, an
// escape sequence in them must not drive the terminal: control
// characters (C0, DEL, C1), other runes that print nothing (such as
// bidirectional overrides) and invalid UTF-8 are shown as Go escapes.

// printable returns s safe for one line of a terminal: a newline or a tab
// is escaped too.
func printable(s string) string { return escapeUnprintable(s, false) }

// printableLines is printable with newlines kept, for messages of
// several lines.
func printableLines(s string) string { return escapeUnprintable(s, true) }

func escapeUnprintable(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && !(keepNewlines && r == '\n') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == '\n' && keepNewlines, unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u009b', '\t'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// printableJSON escapes, in JSON encoder output, what encoding/json
// leaves raw and a terminal may act on: DEL, C1 controls and other
// runes that print nothing. Only strings can hold them, so \u escapes
// keep the JSON valid and its meaning unchanged.
func printableJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r < utf8.RuneSelf && r != 0x7f || r >= utf8.RuneSelf && unicode.IsPrint(r) || r == utf8.RuneError && size == 1 {
			if out != nil {
				out = append(out, b[i:i+size]...)
			}
			i += size
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+16), b[:i]...)
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
			out = appendU(appendU(out, r1), r2)
		} else {
			out = appendU(out, r)
		}
		i += size
	}
	if out == nil {
		return b
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	return append(b, `\u`+strconv.FormatUint(uint64(r)|0x10000, 16)[1:]...)
}
