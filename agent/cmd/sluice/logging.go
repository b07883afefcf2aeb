package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/logfmt"
)

// newLogger builds the agent's logger. Under systemd (journal true) each
// line starts with its syslog priority, which journald reads and strips,
// and text lines carry no time: journald stamps them itself.
func newLogger(c config.Log, w io.Writer, journal bool) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	// Durations as text ("1.5s"): the JSON handler would write nanoseconds.
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logfmt.ReplaceAttr}
	if !journal {
		if c.Format == "json" {
			return slog.New(slog.NewJSONHandler(w, opts)), nil
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	lw := &lineWriter{w: w}
	var inner slog.Handler
	if c.Format == "json" {
		inner = slog.NewJSONHandler(lw, opts)
	} else {
		opts.ReplaceAttr = logfmt.Chain(dropTime, logfmt.ReplaceAttr)
		inner = slog.NewTextHandler(lw, opts)
	}
	return slog.New(&journalHandler{inner: inner, lw: lw}), nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// syslogPriority maps a level to the sd-daemon(3) prefix: <3> error,
// <4> warning, <6> info, <7> debug.
func syslogPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// journalHandler writes each record of inner as one line prefixed with
// its priority.
type journalHandler struct {
	inner slog.Handler
	lw    *lineWriter
}

// lineWriter assembles one line at a time; mu is held from the prefix to
// the write of the whole line.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

// Write is called by the inner handler with mu held.
func (lw *lineWriter) Write(p []byte) (int, error) { return lw.buf.Write(p) }

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.lw.mu.Lock()
	defer h.lw.mu.Unlock()
	h.lw.buf.Reset()
	h.lw.buf.WriteString(syslogPriority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.lw.w.Write(h.lw.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), lw: h.lw}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), lw: h.lw}
}
