package host

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// maxLogLine bounds a buffered partial line from a plugin.
const maxLogLine = 64 << 10

// LogWriter turns a plugin's stderr into records on a host logger. Lines
// that are slog JSON keep their level, message and attributes; anything
// else (a panic's stack trace) is logged at error level as it is.
type LogWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

// NewLogWriter returns a writer that logs to log.
func NewLogWriter(log *slog.Logger) *LogWriter { return &LogWriter{log: log} }

func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLogLine {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *LogWriter) emit(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	ctx := context.Background()
	// Numbers keep their text: 630000000, not 6.3e+08 as a float64 would
	// print.
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if line[0] != '{' || dec.Decode(&rec) != nil || dec.More() {
		w.log.Log(ctx, slog.LevelError, "plugin stderr", "line", string(line))
		return
	}
	msg, _ := rec["msg"].(string)
	level := parseLevel(rec["level"])
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case "msg", "level", "time", "feed", "plugin":
			continue // the host's own logger carries these
		}
		keys = append(keys, k)
	}
	slices.Sort(keys) // stable attribute order in the host's log
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, rec[k]))
	}
	w.log.Log(ctx, level, msg, attrs...)
}

func parseLevel(v any) slog.Level {
	s, _ := v.(string)
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}
