package logfmt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDurationsAsText(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(w *bytes.Buffer) *slog.Logger
		want string
	}{
		{"json options", func(w *bytes.Buffer) *slog.Logger {
			return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}))
		}, `"retry_in":"630ms","n":5,"g":{"d":"1m30s"},"with":"2s"`},
		{"json wrapped", func(w *bytes.Buffer) *slog.Logger {
			return slog.New(Handler(slog.NewJSONHandler(w, nil)))
		}, `"retry_in":"630ms","n":5,"g":{"d":"1m30s"},"with":"2s"`},
		{"text wrapped", func(w *bytes.Buffer) *slog.Logger {
			return slog.New(Handler(slog.NewTextHandler(w, nil)))
		}, `retry_in=630ms n=5 g.d=1m30s with=2s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			log := tc.log(&b)
			log.Info("x", "retry_in", 630*time.Millisecond, "n", 5, slog.Group("g", "d", 90*time.Second), "with", 2*time.Second)
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("got %s\nwant %s", b.String(), tc.want)
			}
			b.Reset()
			log.With("d", time.Second).Info("y")
			if !strings.Contains(b.String(), `1s`) || strings.Contains(b.String(), "1000000000") {
				t.Errorf("With: %s", b.String())
			}
		})
	}
}
