package agent

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/sdnotify"
)

// The watchdog pings every interval while no sink write hangs; a write
// that has not returned for four intervals stops the pings (so systemd
// restarts the agent) until it returns. The status line goes with the
// first ping and again only when it changes.
func TestWatchdogPingsUntilASinkWriteHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		sink := SinkStatus{OutputStatus: pipeline.OutputStatus{Name: "db", State: pipeline.SinkOK}}
		setWriteStarted := func(at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			sink.WriteStarted = at
		}
		type note struct {
			at     time.Duration
			states []string
		}
		var notes []note
		w := watchdog{
			every: 10 * time.Second,
			status: func() Status {
				mu.Lock()
				defer mu.Unlock()
				return Status{Sinks: []SinkStatus{sink}}
			},
			notify: func(states ...string) {
				mu.Lock()
				defer mu.Unlock()
				notes = append(notes, note{time.Since(start), states})
			},
			log: slog.New(slog.DiscardHandler),
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.run(ctx)
		}()
		time.Sleep(35 * time.Second)
		setWriteStarted(time.Now()) // a write begins at 35s and hangs
		time.Sleep(70 * time.Second)
		setWriteStarted(time.Time{}) // it returns at 105s
		time.Sleep(10 * time.Second)
		cancel()
		<-done

		var pings []int // seconds
		var lines int
		for _, n := range notes {
			if slices.Contains(n.states, sdnotify.Watchdog) {
				pings = append(pings, int(n.at/time.Second))
			}
			for _, s := range n.states {
				if strings.HasPrefix(s, "STATUS=") {
					lines++
				}
			}
		}
		// Pinged at 10..70s (the write is 35s old at 70s, under 40s);
		// not at 80, 90, 100s; again at 110s.
		want := []int{10, 20, 30, 40, 50, 60, 70, 110}
		if !slices.Equal(pings, want) {
			t.Errorf("pings at %v s, want at %v s", pings, want)
		}
		if lines != 1 {
			t.Errorf("status line sent %d times, want once: it did not change", lines)
		}
	})
}
