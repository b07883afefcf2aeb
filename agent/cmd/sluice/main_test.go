package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
)

func testStatus() agent.Status {
	return agent.Status{
		Feeds: []agent.FeedStatus{
			{Name: "btc", State: agent.FeedRunning, Pid: 4242, Points: 123456, Restarts: 1, PointsPerSec: 1234.5, BatchesPerSec: 12.5,
				LastBatch: time.Unix(1, 0), LastBatchAge: 0.25},
			{Name: "eth", State: agent.FeedBackingOff, Points: 10, LastError: "plugin exited:\nsignal: killed"},
		},
		Sinks: []agent.SinkStatus{
			{OutputStatus: pipeline.OutputStatus{Name: "db", State: pipeline.SinkOK, BufferedPoints: 500, BufferedBytes: 2048, Written: 2_500_000, Retries: 0,
				Dropped: map[pipeline.Reason]uint64{}}, PointsPerSec: 1200, LagSeconds: 0.35},
			{OutputStatus: pipeline.OutputStatus{Name: "influx", State: pipeline.SinkRetrying, BufferedPoints: 12000, BufferedBytes: 5 << 20, Written: 7, Retries: 3,
				Dropped: map[pipeline.Reason]uint64{pipeline.ReasonBufferFull: 5}, LastError: "connection refused"}},
		},
		BufferBytes:    6 << 20,
		BufferMaxBytes: 2 << 30,
		BufferRepair:   &agent.BufferRepair{LostRecords: 1, Quarantined: []string{"/var/lib/sluice/buffer/sinks/db/log/00000000000000000001.wal.corrupt"}},
		ConfigError:    "/etc/sluice/feeds.d/x.yaml: feeds.x.sinks: must list at least one sink\n/etc/sluice/feeds.d/x.yaml: feeds.x.plugin: required",
		RestartNeeded:  []string{"sinks.influx"},
	}
}

func TestFormatStatusLine(t *testing.T) {
	got := formatStatusLine(testStatus())
	want := "feeds 1/2 up | 12.5 msg/s 1.2k pts/s | written 2.5M | lag 0.35s | buffered 12.5k pts, 6.0 MiB | 1 sink(s) not ok | reload rejected"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := formatStatusLine(agent.Status{}); got != "feeds 0/0 up | 0 msg/s 0 pts/s | written 0 | lag - | buffered 0 pts, 0 B" {
		t.Errorf("empty: %s", got)
	}
}

func TestFormatStatus(t *testing.T) {
	var b bytes.Buffer
	formatStatus(&b, testStatus())
	want := `FEED  STATE        PID   POINTS  PTS/S  RESTARTS  LAST BATCH  LAST ERROR
btc   running      4242  123456  1.2k   1         0.25s ago   -
eth   backing_off  -     10      0      0         never       plugin exited: signal: killed

SINK    STATE     BUFFERED         WRITTEN  DROPPED            RETRIES  PTS/S  LAG    LAST ERROR
db      ok        500 (2.0 KiB)    2500000  0                  0        1.2k   0.35s  -
influx  retrying  12000 (5.0 MiB)  7        5 (buffer_full 5)  3        0      -      connection refused

disk buffer: 6.0 MiB of 2.0 GiB
repaired when the agent started: 0 records cut from a torn tail, 1 lost to corruption, 0 undecodable; damaged files done without: -; copies kept: /var/lib/sluice/buffer/sinks/db/log/00000000000000000001.wal.corrupt
restart needed to apply: sinks.influx
last reload rejected; the running config stays:
  /etc/sluice/feeds.d/x.yaml: feeds.x.sinks: must list at least one sink
  /etc/sluice/feeds.d/x.yaml: feeds.x.plugin: required
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatReload(t *testing.T) {
	if got := formatReload(agent.ReloadResult{Added: []string{"a", "b"}, Restarted: []string{"c"}, RestartNeeded: []string{"http"}}); got != "reloaded; added: a, b; restarted: c; not applied until a restart: http" {
		t.Error(got)
	}
	if got := formatReload(agent.ReloadResult{}); got != "reloaded; no feed changed" {
		t.Error(got)
	}
}

func TestCompact(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 2.5: "2.5", 42: "42", 99.5: "99.5", 512.4: "512", 1000: "1k", 12345: "12.3k", 25e6: "25M", 3.45e10: "34.5G"} {
		if got := compact(v); got != want {
			t.Errorf("compact(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestJournalLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(config.Log{Level: "debug", Format: "text"}, &b, true)
	if err != nil {
		t.Fatal(err)
	}
	log = log.With("feed", "btc")
	log.Debug("d")
	log.Info("i", "n", 1)
	log.Warn("w")
	log.Error("e")
	log.WithGroup("g").Log(nil, slog.LevelWarn+1, "between")
	want := `<7>level=DEBUG msg=d feed=btc
<6>level=INFO msg=i feed=btc n=1
<4>level=WARN msg=w feed=btc
<3>level=ERROR msg=e feed=btc
<4>level=WARN+1 msg=between feed=btc
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	log, _ = newLogger(config.Log{Level: "info", Format: "json"}, &b, true)
	log.Info("i")
	if got := b.String(); !strings.HasPrefix(got, `<6>{"time":`) {
		t.Errorf("json under journald: %s", got)
	}

	b.Reset()
	log, _ = newLogger(config.Log{Level: "info", Format: "text"}, &b, false)
	log.Info("i")
	if got := b.String(); !strings.HasPrefix(got, "time=") {
		t.Errorf("text on a terminal: %s", got)
	}
}

func TestUnderSystemd(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if underSystemd(env(nil)) {
		t.Error("no systemd variables, yet under systemd")
	}
	if !underSystemd(env(map[string]string{"JOURNAL_STREAM": "8:1234"})) || !underSystemd(env(map[string]string{"INVOCATION_ID": "abc"})) {
		t.Error("JOURNAL_STREAM or INVOCATION_ID not taken as systemd")
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9273": "127.0.0.1:9273", ":9273": "127.0.0.1:9273", "0.0.0.0:1": "127.0.0.1:1",
		"[::]:9273": "[::1]:9273", "[::1]:5": "[::1]:5", "host.example:80": "host.example:80",
	} {
		if got, err := dialable(in); err != nil || got != want {
			t.Errorf("dialable(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := dialable("nope"); err == nil {
		t.Error("no error for an address without a port")
	}
}

func TestArgs(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"tap"}, &out, &errOut); code != 2 {
		t.Errorf("tap without a feed: exit %d", code)
	}
	if code := run([]string{"status", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("status with an argument: exit %d", code)
	}
	errOut.Reset()
	// Flags after the feed name are parsed; the agent is not there.
	code := run([]string{"tap", "btc", "-measurement", "trades", "-addr", "127.0.0.1:1"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "is the agent running?") {
		t.Errorf("tap to nowhere: exit %d, %s", code, errOut.String())
	}
}

// Durations read as durations in every format, not as nanoseconds.
func TestLoggerDurations(t *testing.T) {
	for _, tc := range []struct {
		format  string
		journal bool
		want    string
	}{
		{"json", false, `"retry_in":"630ms"`},
		{"json", true, `"retry_in":"630ms"`},
		{"text", false, `retry_in=630ms`},
		{"text", true, `retry_in=630ms`},
	} {
		var b bytes.Buffer
		log, err := newLogger(config.Log{Level: "info", Format: tc.format}, &b, tc.journal)
		if err != nil {
			t.Fatal(err)
		}
		log.Warn("reconnecting", "retry_in", 630*time.Millisecond)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s (journal %v): %s, want %s", tc.format, tc.journal, b.String(), tc.want)
		}
	}
}
