package main

import (
	"testing"

	"github.com/sluicehq/sluice/sinks"
)

// A sink's own stats show on one line: names without the type's prefix,
// bytes as sizes, rates as /s, labeled counts grouped without zeros.
func TestSinkStats(t *testing.T) {
	got := sinkStats([]sinks.Stat{
		{Name: "live_clients", Value: 12},
		{Name: "live_publications_total", Counter: true, Value: 183400},
		{Name: "live_publication_bytes_total", Counter: true, Value: 41 << 20},
		{Name: "live_publications_per_second", Value: 850},
		{Name: "live_disconnects_total", Counter: true, Label: "reason", LabelValue: "slow", Value: 1},
		{Name: "live_disconnects_total", Counter: true, Label: "reason", LabelValue: "no_pong", Value: 0},
		{Name: "live_disconnects_total", Counter: true, Label: "reason", LabelValue: "connection_closed", Value: 40},
		{Name: "live_refused_total", Counter: true, Label: "reason", LabelValue: "invalid_token", Value: 2},
	})
	want := "clients 12; publications 183.4k; publication bytes 41.0 MiB; publications/s 850; disconnects: slow 1, connection_closed 40; refused: invalid_token 2"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
