package host

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogWriterReemitsPluginLogsUnderTheFeed(t *testing.T) {
	var out bytes.Buffer
	host := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("feed", "btc")
	w := NewLogWriter(host)

	// go-plugin hands lines over in pieces; a line may span writes.
	w.Write([]byte(`{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"reconnecting","feed":"btc","attempt":3,"symbol":"BTC`))
	w.Write([]byte("USDT\"}\n"))
	w.Write([]byte("panic: runtime error\n"))
	w.Write([]byte(`{"level":"DEBUG","msg":"frame"}` + "\n"))

	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("host log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3:\n%s", len(recs), out.String())
	}
	want := []map[string]any{
		{"level": "WARN", "msg": "reconnecting", "feed": "btc", "attempt": 3.0, "symbol": "BTCUSDT"},
		{"level": "ERROR", "msg": "plugin stderr", "feed": "btc", "line": "panic: runtime error"},
		{"level": "DEBUG", "msg": "frame", "feed": "btc"},
	}
	for i, w := range want {
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %v, want %v (record %v)", i, k, recs[i][k], v, recs[i])
			}
		}
	}
	if strings.Count(out.String(), `"feed"`) != 3 {
		t.Errorf("a plugin's own feed attribute must not repeat the host's:\n%s", out.String())
	}
	if _, ok := recs[0]["time"]; !ok || recs[0]["time"] == "2026-01-01T00:00:00Z" {
		t.Errorf("record 0 should carry the host's own time, not the plugin's: %v", recs[0]["time"])
	}
}

// A plugin's numbers keep their text in the host's log: an integer of
// nanoseconds is not shown as a float (6.3e+08), and a duration the
// plugin wrote as text stays text.
func TestLogWriterKeepsNumbers(t *testing.T) {
	var out bytes.Buffer
	w := NewLogWriter(slog.New(slog.NewTextHandler(&out, nil)))
	w.Write([]byte(`{"level":"WARN","msg":"reconnecting","retry_in_ns":630000000,"retry_in":"630ms","ratio":0.25,"big":12393906104898154338}` + "\n"))
	for _, want := range []string{"retry_in_ns=630000000", "retry_in=630ms", "ratio=0.25", "big=12393906104898154338"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("host log lacks %s:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "e+") {
		t.Errorf("a number became a float:\n%s", out.String())
	}
}
