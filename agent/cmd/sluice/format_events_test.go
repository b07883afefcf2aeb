package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
)

// A stale feed stays running, and says so, with what is stale for how
// long; what its plugin discarded is listed by reason.
func TestFormatStaleAndDiscarded(t *testing.T) {
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	st := agent.Status{Feeds: []agent.FeedStatus{
		{Name: "ws", State: agent.FeedRunning, Stale: []agent.StaleStream{{Since: since, StaleSeconds: 75.4}},
			PluginDiscarded: map[string]uint64{"too_deep": 3, "oversize": 1}},
		{Name: "bn", State: agent.FeedRunning, Stale: []agent.StaleStream{{Symbol: "BTCUSDT", Stream: "trade", Since: since, StaleSeconds: 301}}},
		{Name: "ok", State: agent.FeedRunning},
	}}
	var b bytes.Buffer
	formatStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"ws    running, stale",
		"feed ws is stale: the feed has had no data for 1m15s (since 2025-01-02T03:04:05Z)\n",
		"feed bn is stale: BTCUSDT trade has had no data for 5m1s (since 2025-01-02T03:04:05Z)\n",
		"feed ws: its plugin discarded oversize 1, too_deep 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ok    running, stale") || strings.Contains(out, "feed ok") {
		t.Errorf("a live feed shown stale:\n%s", out)
	}
	if line := formatStatusLine(st); !strings.HasSuffix(line, "| 2 feed(s) stale") {
		t.Errorf("status line: %s", line)
	}
}
