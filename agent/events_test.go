package agent

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// A stream is stale from its first stale event, with the earliest since
// reported, until a live event for it; /readyz names the longest stale
// first.
func TestTrackStale(t *testing.T) {
	f := &feed{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f.track([]sdk.Event{
		{Kind: sdk.EventStale, Symbol: "BTCUSDT", Stream: "trade", Since: t0.Add(time.Minute), Time: t0.Add(2 * time.Minute), Message: "first"},
		{Kind: sdk.EventStale, Symbol: "BTCUSDT", Stream: "trade", Since: t0, Time: t0.Add(3 * time.Minute), Message: "again"},
		{Kind: sdk.EventStale, Stream: "", Time: t0.Add(time.Minute)}, // no since: its time
		{Kind: sdk.EventStale, Symbol: "ETHUSDT", Stream: "trade", Since: t0.Add(30 * time.Second)},
		{Kind: sdk.EventLive, Symbol: "ETHUSDT", Stream: "trade"},
		{Kind: sdk.EventLive, Symbol: "SOLUSDT", Stream: "trade"}, // never stale: nothing
		{Kind: sdk.EventGap, Symbol: "BTCUSDT", Stream: "trade"},
	}, t0)
	now := t0.Add(5 * time.Minute)
	got := f.staleList(now)
	if len(got) != 2 {
		t.Fatalf("stale %+v, want BTCUSDT trade and the feed", got)
	}
	if s := got[0]; s.Symbol != "BTCUSDT" || !s.Since.Equal(t0) || s.Message != "again" || s.StaleSeconds != 300 {
		t.Errorf("BTCUSDT trade: %+v", s)
	}
	if s := got[1]; s.Symbol != "" || s.Stream != "" || !s.Since.Equal(t0.Add(time.Minute)) {
		t.Errorf("the feed: %+v", s)
	}
	want := "feed spot is stale: BTCUSDT trade has had no data for 5m0s (since 2025-01-02T03:04:05Z); the feed has had no data for 4m0s (since 2025-01-02T03:05:05Z)"
	if r := staleReason(FeedStatus{Name: "spot", Stale: got}); r != want {
		t.Errorf("reason:\n got %s\nwant %s", r, want)
	}
	f.clearStale()
	if f.staleList(now) != nil {
		t.Error("stale streams outlived their plugin")
	}
}

// Many stale streams: the reason names a few and counts the rest.
func TestStaleReasonIsBounded(t *testing.T) {
	var fs FeedStatus
	fs.Name = "big"
	for i := range 10 {
		fs.Stale = append(fs.Stale, StaleStream{Symbol: "S", Stream: strings.Repeat("x", i+1), StaleSeconds: 61})
	}
	r := staleReason(fs)
	if strings.Count(r, "has had no data") != staleShown || !strings.HasSuffix(r, "; and 7 more") {
		t.Errorf("reason %q", r)
	}
}
