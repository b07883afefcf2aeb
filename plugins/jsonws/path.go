package jsonws

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// rootPrefix starts a path that is read from the whole message even inside
// a rule with `each`, where other paths are read from the array element.
const rootPrefix = "$."

// maxPathLen bounds a configured path; nothing legitimate comes close.
const maxPathLen = 1024

// A jpath is a compiled gjson path.
type jpath struct {
	src  string // as configured, for messages
	path string // without rootPrefix
	root bool
}

func compilePath(s string) (jpath, error) {
	p := jpath{src: s, path: s}
	if rest, ok := strings.CutPrefix(s, rootPrefix); ok {
		p.path, p.root = rest, true
	}
	if err := checkPath(p.path); err != nil {
		return jpath{}, err
	}
	return p, nil
}

// get reads the path from elem, or from the message root for a root path.
func (p jpath) get(root, elem gjson.Result) gjson.Result {
	if p.root {
		return root.Get(p.path)
	}
	return elem.Get(p.path)
}

// checkPath rejects paths gjson would read as something other than what
// was meant, as far as the syntax shows: gjson itself accepts any string
// and simply finds nothing. It checks balanced brackets and quotes, no
// empty components, no dangling escape, and that @modifiers exist.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("path is empty")
	case len(p) > maxPathLen:
		return fmt.Errorf("path is longer than %d bytes", maxPathLen)
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	case strings.HasPrefix(p, ".."):
		return errors.New(`path starts with "..", gjson's JSON-lines syntax; a message is one JSON document`)
	}
	var (
		stack   []byte // open brackets
		inQuote bool
		compBeg = true // at the start of a path component
	)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if inQuote {
			switch c {
			case '\\':
				i++
			case '"':
				inQuote = false
			}
			continue
		}
		switch c {
		case '\\':
			if i+1 == len(p) {
				return errors.New(`path ends with an escape "\"`)
			}
			i++
			compBeg = false
			continue
		case '"':
			if len(stack) == 0 {
				return fmt.Errorf("quote outside a query at byte %d", i)
			}
			inQuote = true
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			want := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return fmt.Errorf("unbalanced %q at byte %d", c, i)
			}
			stack = stack[:len(stack)-1]
		case '.', '|':
			if len(stack) == 0 && (compBeg || i+1 == len(p)) {
				return fmt.Errorf("empty path component at byte %d", i)
			}
			if len(stack) == 0 {
				compBeg = true
				continue
			}
		case '@':
			if len(stack) == 0 && compBeg {
				name := modifierName(p[i+1:])
				if !gjson.ModifierExists(name, nil) {
					return fmt.Errorf("unknown modifier @%s", name)
				}
			}
		}
		compBeg = false
	}
	switch {
	case inQuote:
		return errors.New("unterminated quote")
	case len(stack) > 0:
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return probePath(p)
}

func modifierName(s string) string {
	end := strings.IndexAny(s, ":.|")
	if end < 0 {
		return s
	}
	return s[:end]
}

// probePath runs the path once on a small document, turning any gjson
// panic on it into a config error rather than a crash on the first
// message.
func probePath(p string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("path cannot be evaluated: %v", r)
		}
	}()
	gjson.Get(`{"a":[{"b":1}],"c":"d"}`, p)
	return nil
}
