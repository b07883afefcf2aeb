// Package secret parses and renders secret templates: strings in a feed's
// config that reference an environment variable, ${env:NAME}, or a file,
// ${file:PATH}; $$ is a literal $. The agent reads the references to know
// which variables a feed's plugin needs (and passes it those alone); the
// plugin renders them when it connects.
//
// Errors name a reference by its position and kind, never the text
// around it, which may be a secret written inline.
package secret

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/sluicehq/sluice/internal/capread"
)

// Reference kinds.
const (
	Env  = "env"
	File = "file"
)

// Ref is one ${kind:arg} reference.
type Ref struct {
	Kind string // Env or File
	Arg  string // the variable name or the file path
}

func (r Ref) String() string { return "${" + r.Kind + ":" + r.Arg + "}" }

// Template is a parsed string: literal text and references.
type Template struct {
	parts []part
}

type part struct {
	lit string
	ref *Ref
}

// SyntaxError is a malformed reference. Its message gives the byte offset
// and, where it is one, the reference's kind; never the surrounding text.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("reference at byte %d: %s (write $$ for a literal $)", e.Offset, e.Msg)
}

// Parse parses a template.
func Parse(s string) (Template, error) {
	var t Template
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
			return Template{}, &SyntaxError{Offset: i, Msg: "${ without a closing }"}
		}
		kind, arg, ok := strings.Cut(s[i+2:i+end], ":")
		switch {
		case !ok || !identifier(kind):
			return Template{}, &SyntaxError{Offset: i, Msg: "must be ${env:NAME} or ${file:PATH}"}
		case kind != Env && kind != File:
			return Template{}, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unknown kind %q: must be ${env:NAME} or ${file:PATH}", kind)}
		case arg == "":
			return Template{}, &SyntaxError{Offset: i, Msg: fmt.Sprintf("${%s:} names nothing", kind)}
		case kind == Env && !identifier(arg):
			return Template{}, &SyntaxError{Offset: i, Msg: "${env:NAME} needs a variable name of letters, digits and _"}
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{ref: &Ref{Kind: kind, Arg: arg}})
		i += end
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// identifier reports whether s is a short name of letters, digits and _,
// not starting with a digit: what a reference kind or a variable name is.
func identifier(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Refs lists the template's references in order.
func (t Template) Refs() []Ref {
	var refs []Ref
	for _, p := range t.parts {
		if p.ref != nil {
			refs = append(refs, *p.ref)
		}
	}
	return refs
}

// Placeholder renders the template with every reference replaced by
// stand, to check the shape of the result without reading a secret.
func (t Template) Placeholder(stand string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref != nil {
			b.WriteString(stand)
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// Render resolves the references with resolve. Errors are resolve's.
func (t Template) Render(resolve func(Ref) (string, error)) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := resolve(*p.ref)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// Lookup resolves a reference from this process's environment and files:
// ${env:NAME} is the variable's value, ${file:PATH} the file's contents
// without surrounding white space, read with the capread.Secret cap.
// Errors name the variable or the file, never a value.
func Lookup(r Ref) (string, error) {
	switch r.Kind {
	case Env:
		v, ok := os.LookupEnv(r.Arg)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", r.Arg)
		}
		return v, nil
	case File:
		b, err := capread.File(r.Arg, capread.Secret, "a secret file")
		if err != nil {
			if pe, ok := err.(*os.PathError); ok {
				return "", fmt.Errorf("cannot read %s: %w", pe.Path, pe.Err)
			}
			return "", err
		}
		return string(bytes.TrimSpace(b)), nil
	}
	return "", fmt.Errorf("unknown reference kind %q", r.Kind)
}

// EnvNames returns the variable names of the well-formed ${env:NAME}
// references in s, in order, without duplicates. Malformed references are
// skipped: the plugin that renders s reports them.
func EnvNames(s string) []string {
	if !strings.Contains(s, "${") {
		return nil
	}
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if s[i+1] != '{' {
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			break
		}
		if kind, arg, ok := strings.Cut(s[i+2:i+end], ":"); ok && kind == Env && identifier(arg) {
			if !contains(names, arg) {
				names = append(names, arg)
			}
		}
		i += end
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
