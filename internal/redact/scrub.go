package redact

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// MinSecretLen is the shortest value a Scrubber replaces: shorter ones
// would mask common text ("1", "on") far more often than they hide a
// secret.
const MinSecretLen = 4

// Scrubber replaces known secret values wherever they appear in text.
// It is the last line of defence for text that code cannot know to be
// secret: a server's refusal echoing the login message, a library's error
// quoting a header. Values are only ever added.
//
// A nil *Scrubber masks URLs (Text) and nothing else. It is safe for
// concurrent use.
type Scrubber struct {
	mu     sync.RWMutex
	values []string // longest first, so that a value containing another goes whole
	seen   map[string]bool
}

// NewScrubber returns an empty Scrubber.
func NewScrubber() *Scrubber { return &Scrubber{seen: make(map[string]bool)} }

// Add records secret values. Each is also recorded as it would appear
// percent-encoded in a URL and escaped in a JSON string. Values shorter
// than MinSecretLen are ignored.
func (s *Scrubber) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < MinSecretLen || s.seen[v] {
			continue
		}
		s.seen[v] = true
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
		if j, err := json.Marshal(v); err == nil {
			forms = append(forms, string(j[1:len(j)-1]))
		}
		for _, f := range forms {
			if !slices.Contains(s.values, f) {
				s.values = append(s.values, f)
			}
		}
	}
	slices.SortFunc(s.values, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
}

// String returns in with every known value replaced by Mark and every URL
// masked (Text).
func (s *Scrubber) String(in string) string {
	if s != nil {
		s.mu.RLock()
		for _, v := range s.values {
			if strings.Contains(in, v) {
				in = strings.ReplaceAll(in, v, Mark)
			}
		}
		s.mu.RUnlock()
	}
	return Text(in)
}

// Error returns err with its message scrubbed; nil stays nil. The result
// unwraps to err, so errors.Is and errors.As see through it.
func (s *Scrubber) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.String(msg)
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

// Error is (*Scrubber)(nil).Error: err with every URL in its message
// masked.
func Error(err error) error { return (*Scrubber)(nil).Error(err) }

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// Handler returns a slog.Handler that scrubs every record's message and
// attribute values through s before passing it on to h.
func (s *Scrubber) Handler(h slog.Handler) slog.Handler { return &handler{h: h, s: s} }

type handler struct {
	h slog.Handler
	s *Scrubber
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(clean), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), s: h.s}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.s.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]slog.Attr, len(g))
		for i, ga := range g {
			clean[i] = h.attr(ga)
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		a.Value = h.any(v.Any())
	default:
		a.Value = v
	}
	return a
}

// any scrubs what a log attribute may hold beyond plain strings: errors,
// Stringers, and the maps and lists of decoded JSON (plugin logs).
func (h *handler) any(x any) slog.Value {
	switch t := x.(type) {
	case error:
		return slog.StringValue(h.s.String(t.Error()))
	case fmt.Stringer:
		return slog.StringValue(h.s.String(t.String()))
	case []byte:
		return slog.StringValue(h.s.String(string(t)))
	case map[string]any, []any:
		return slog.AnyValue(h.deep(t))
	}
	return slog.AnyValue(x)
}

func (h *handler) deep(x any) any {
	switch t := x.(type) {
	case string:
		return h.s.String(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, v := range t {
			m[k] = h.deep(v)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, v := range t {
			l[i] = h.deep(v)
		}
		return l
	}
	return x
}
