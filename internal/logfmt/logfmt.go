// Package logfmt holds the log formatting every sluice process shares:
// durations are written as text ("1.5s"), not as the integer nanoseconds
// slog's JSON handler writes, which a reader (and the agent, re-logging a
// plugin's JSON lines) would otherwise show as 1.5e+09.
package logfmt

import (
	"context"
	"log/slog"
)

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that writes a
// time.Duration as its String form.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// Chain returns a ReplaceAttr that applies fns in order; nil ones are
// skipped.
func Chain(fns ...func([]string, slog.Attr) slog.Attr) func([]string, slog.Attr) slog.Attr {
	return func(groups []string, a slog.Attr) slog.Attr {
		for _, fn := range fns {
			if fn != nil {
				a = fn(groups, a)
			}
		}
		return a
	}
}

// Handler wraps h, whose options cannot be changed (a handler made
// elsewhere), so that durations reach it as text.
func Handler(h slog.Handler) slog.Handler { return &handler{inner: h} }

type handler struct{ inner slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(text(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	conv := make([]slog.Attr, len(as))
	for i, a := range as {
		conv[i] = text(a)
	}
	return &handler{inner: h.inner.WithAttrs(conv)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name)}
}

// text converts a duration, in a group too, to text.
func text(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, v.Duration().String())
	case slog.KindGroup:
		g := v.Group()
		conv := make([]any, len(g))
		for i, e := range g {
			conv[i] = text(e)
		}
		return slog.Group(a.Key, conv...)
	}
	return slog.Attr{Key: a.Key, Value: v}
}

var _ slog.Handler = (*handler)(nil)
