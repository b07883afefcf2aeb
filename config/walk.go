package config

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// origin is where a key's value came from.
type origin struct {
	name string // a file path, or "env NAME"
	env  bool   // the value is a string from the environment
}

// origins maps key paths to where they were set. A key not listed inherits
// from its closest listed parent, and failing that from def.
type origins struct {
	def origin
	m   map[string]origin
}

func newOrigins(file string) *origins {
	return &origins{def: origin{name: file}, m: make(map[string]origin)}
}

func (o *origins) set(path []string, org origin) { o.m[pathID(path)] = org }

func (o *origins) of(path []string) origin {
	for i := len(path); i > 0; i-- {
		if org, ok := o.m[pathID(path[:i])]; ok {
			return org
		}
	}
	return o.def
}

// pathID joins a key path unambiguously: names may contain dots.
func pathID(path []string) string { return strings.Join(path, "\x00") }

// keyString renders a key path for messages: "feeds.btc.sinks[1]".
func keyString(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func child(path []string, key string) []string {
	out := make([]string, len(path), len(path)+1)
	copy(out, path)
	return append(out, key)
}

// walker checks a parsed tree against a spec and returns the tree with
// every value converted to its Go type (int, time.Duration, bool, []string).
// Invalid values are reported and left out, so the result is always safe
// to decode and the later checks can still run on what is valid.
type walker struct {
	errs    *errorList
	origins *origins
	types   map[string]*sinkType // what a sink's type may be
	// failed holds the paths (pathID) the walker reported a problem at,
	// so that later checks do not report them again.
	failed map[string]bool
}

func (w *walker) errorf(path []string, format string, args ...any) {
	if w.failed != nil {
		w.failed[pathID(path)] = true
	}
	w.errs.add(&Error{
		File: w.origins.of(path).name,
		Key:  keyString(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

// walk returns the normalized value and whether v was acceptable.
func (w *walker) walk(s *spec, path []string, v any) (any, bool) {
	if w.origins.of(path).env {
		if raw, ok := v.(string); ok {
			v = fromEnv(s.kind, raw)
		}
		// The environment is where secrets are kept: a message names
		// the variable, never quotes its value.
		if !s.secret {
			cp := *s
			cp.secret = true
			s = &cp
		}
	}
	switch s.kind {
	case kindSection:
		return w.section(s, path, v)
	case kindNamed:
		return w.named(s, path, v)
	case kindSink:
		return w.sink(path, v)
	case kindFree:
		m, ok := w.mapping(path, v)
		if !ok {
			return nil, false
		}
		return w.free(path, m), true
	case kindList:
		return w.list(s, path, v)
	case kindString:
		return w.str(s, path, v)
	case kindInt:
		if n, ok := toInt(v); ok && (n > 0 || s.zero && n == 0) {
			return n, true
		}
		what := "a positive integer"
		if s.zero {
			what = "0 or a positive integer"
		}
		w.errorf(path, "must be %s, got %s%s", what, describe(v, s.secret), quotedHint(v))
	case kindDuration:
		if raw, ok := v.(string); ok {
			if d, err := time.ParseDuration(raw); err == nil && (d > 0 || s.zero && d == 0) {
				return d, true
			}
		}
		if n, ok := toInt(v); ok && n == 0 && s.zero {
			return time.Duration(0), true
		}
		hint := ""
		if _, ok := toInt(v); ok {
			hint = " (a duration needs a unit)"
		}
		what := "a positive duration"
		if s.zero {
			what = "0 or a positive duration"
		}
		w.errorf(path, "must be %s such as \"500ms\", \"30s\" or \"5m\", got %s%s", what, describe(v, s.secret), hint)
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, true
		}
		w.errorf(path, "must be true or false, got %s%s", describe(v, s.secret), quotedHint(v))
	default:
		panic(fmt.Sprintf("config: unhandled spec kind %d", s.kind))
	}
	return nil, false
}

func (w *walker) str(s *spec, path []string, v any) (any, bool) {
	raw, ok := v.(string)
	switch {
	case !ok:
		hint := ""
		switch v.(type) {
		case int, int64, uint64, float64, bool:
			if len(s.oneOf) > 0 {
				break
			}
			// YAML read an unquoted 123, 1e5 or true as a number or
			// a boolean; a digest or a version can look like one.
			hint = " (quote the value to make it a string)"
		}
		w.errorf(path, "must be a string, got %s%s", describe(v, s.secret), hint)
	case raw == "" && !s.empty:
		w.errorf(path, "must not be empty")
	case len(s.oneOf) > 0 && !slices.Contains(s.oneOf, raw):
		w.errorf(path, "must be one of %s, got %s", quoteAll(s.oneOf), describe(raw, s.secret))
	case s.check != nil && s.check(raw) != "":
		msg := s.check(raw)
		if s.secret {
			msg = strings.ReplaceAll(msg, strconv.Quote(raw), describe(raw, true))
		}
		w.errorf(path, "%s", msg)
	default:
		return raw, true
	}
	return nil, false
}

func (w *walker) list(s *spec, path []string, v any) (any, bool) {
	items, ok := v.([]any)
	if !ok {
		w.errorf(path, "must be a list, got %s", describe(v, s.secret))
		return nil, false
	}
	out := make([]string, 0, len(items))
	good := true
	for i, item := range items {
		got, ok := w.walk(s.elem, child(path, "["+strconv.Itoa(i)+"]"), item)
		if !ok {
			good = false
			continue
		}
		out = append(out, got.(string))
	}
	return out, good
}

// mapping accepts a YAML mapping; an empty value (a key with nothing after
// the colon) counts as an empty mapping.
func (w *walker) mapping(path []string, v any) (map[string]any, bool) {
	switch m := v.(type) {
	case nil:
		return map[string]any{}, true
	case map[string]any:
		return m, true
	}
	w.errorf(path, "must be a mapping, got %s", describe(v, w.origins.of(path).env))
	return nil, false
}

func (w *walker) section(s *spec, path []string, v any) (any, bool) {
	m, ok := w.mapping(path, v)
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		p := child(path, k)
		sub, known := s.keys[k]
		if !known {
			w.errorf(p, "unknown key%s", suggest(k, sortedKeys(s.keys)))
			continue
		}
		if got, ok := w.walk(sub, p, m[k]); ok {
			out[k] = got
		}
	}
	for _, k := range s.required {
		if _, ok := m[k]; !ok {
			w.errorf(child(path, k), "missing required key")
		}
	}
	w.secretFileClash(s, path, m)
	return out, true
}

func (w *walker) named(s *spec, path []string, v any) (any, bool) {
	m, ok := w.mapping(path, v)
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(m))
	for _, name := range sortedKeys(m) {
		p := child(path, name)
		if !validName(name) {
			// The key is the parent, as the bad name would make a
			// confusing path; the file is the one the entry came from.
			w.errs.add(&Error{
				File: w.origins.of(p).name,
				Key:  keyString(path),
				Msg:  fmt.Sprintf("invalid %s name %q: %s", s.what, name, nameRule),
			})
			continue
		}
		if got, ok := w.walk(s.elem, p, m[name]); ok {
			out[name] = got
		}
	}
	return out, true
}

// free copies a plugin's config. A value from the environment is read as
// JSON if it parses (10, 2.5, true, ["a","b"]) so that
// SLUICE_FEEDS__X__CONFIG__RATE=10 gives the plugin a number, as
// "rate: 10" in a file would; otherwise it stays a string.
func (w *walker) free(path []string, m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		p := child(path, k)
		switch x := v.(type) {
		case map[string]any:
			out[k] = w.free(p, x)
		case string:
			if w.origins.of(p).env {
				out[k] = jsonValue(x)
			} else {
				out[k] = x
			}
		default:
			out[k] = v
		}
	}
	return out
}

// fromEnv converts an environment variable's string to the type a key
// expects. A string that does not convert is returned unchanged, so the
// walker reports it naming the variable.
func fromEnv(k kind, raw string) any {
	raw = strings.TrimSpace(raw)
	switch k {
	case kindInt:
		if n, err := strconv.Atoi(raw); err == nil {
			return n
		}
	case kindBool:
		if b, err := strconv.ParseBool(raw); err == nil {
			return b
		}
	case kindList:
		items := []any{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items
	}
	return raw
}

func jsonValue(raw string) any {
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return raw
	}
	return fromJSON(v)
}

// fromJSON turns json.Numbers into int where they are whole, float64
// otherwise, matching what YAML gives for the same text.
func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.Atoi(x.String()); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
	}
	return v
}

// quotedHint explains a value that is right but for its quotes.
func quotedHint(v any) string {
	raw, ok := v.(string)
	if !ok {
		return ""
	}
	if _, err := strconv.Atoi(raw); err == nil || raw == "true" || raw == "false" {
		return " (a quoted string: remove the quotes)"
	}
	return ""
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), n >= math.MinInt && n <= math.MaxInt
	case uint64:
		return int(n), n <= math.MaxInt
	case float64:
		if n == math.Trunc(n) && math.Abs(n) <= 1<<53 {
			return int(n), true
		}
	}
	return 0, false
}

// describe renders a value for a message. For secrets it names only the
// value's type.
func describe(v any, secret bool) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if secret {
			return "a string"
		}
		return strconv.Quote(x)
	case bool:
		if secret {
			return "a boolean"
		}
		return strconv.FormatBool(x)
	case int, int64, uint64, float64:
		if secret {
			return "a number"
		}
		return fmt.Sprint(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// suggest returns ` (did you mean "x"?)` for the closest known key within a
// small edit distance, or "".
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	if len(key) <= 4 {
		bestDist = 2
	}
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
