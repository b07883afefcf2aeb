package synth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testbin"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// pluginPath is the plugin binary TestMain built.
var pluginPath string

// TestMain builds the real plugin binary, runs the tests and checks that
// they left no goroutine behind.
func TestMain(m *testing.M) {
	os.Exit(testbin.PluginMain(m, "synth", false, &pluginPath))
}

// arrival is one batch as the host received it.
type arrival struct {
	at     time.Time
	points []sluice.Point
}

// stream runs the plugin binary as the agent does (go-plugin, gRPC) with
// cfg and collects the batches that arrive until until returns true or
// limit passes.
func stream(t *testing.T, cfg string, limit time.Duration, until func([]arrival) bool) []arrival {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proc, err := host.Launch(ctx, host.Binary{Name: "synth", Path: pluginPath}, host.LaunchOptions{Env: host.PluginEnv(os.Environ(), nil)})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	defer proc.Kill()
	if _, err := proc.Source.Configure(ctx, sdk.ConfigureRequest{Feed: "test", Config: json.RawMessage(cfg)}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	var (
		mu   sync.Mutex
		got  []arrival
		done = make(chan struct{})
		once sync.Once
	)
	errc := make(chan error, 1)
	go func() {
		errc <- proc.Source.Stream(ctx, sdk.StreamOptions{FlushInterval: 20 * time.Millisecond},
			func(b *sdk.Batch, invalid int, _ error) error {
				if invalid > 0 || b.Dropped > 0 {
					return fmt.Errorf("%d invalid, %d dropped", invalid, b.Dropped)
				}
				mu.Lock()
				defer mu.Unlock()
				got = append(got, arrival{at: time.Now(), points: b.Points})
				if until(got) {
					once.Do(func() { close(done) })
				}
				return nil
			})
	}()
	select {
	case <-done:
	case err := <-errc:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(limit):
		t.Fatalf("not done within %s", limit)
	}
	cancel()
	<-errc
	mu.Lock()
	defer mu.Unlock()
	return got
}

// countWithin counts the points that arrived within d of the first batch.
func countWithin(got []arrival, d time.Duration) (n int) {
	for _, a := range got {
		if a.at.Sub(got[0].at) < d {
			n += len(a.points)
		}
	}
	return n
}

// The configured rate is what the host receives: at 4000 points/s, two
// seconds of the stream hold 8000 points, give or take 15% (batches are
// cut every 20ms, and the test shares its CPUs). This checks a function,
// not performance: 4000 points/s is a small fraction of what one plugin
// stream carries.
func TestRateIsHonoured(t *testing.T) {
	const rate, window = 4000, 2 * time.Second
	got := stream(t, fmt.Sprintf(`{"rate": %d, "symbols": ["A", "B"]}`, rate), 30*time.Second, func(got []arrival) bool {
		return got[len(got)-1].at.Sub(got[0].at) >= window
	})
	n := countWithin(got, window)
	want := rate * window.Seconds()
	t.Logf("%d points within %s of the first batch at rate %d (%.0f expected)", n, window, rate, want)
	if f := float64(n); f < 0.85*want || f > 1.15*want {
		t.Errorf("%d points in %s at rate %d, want %.0f ± 15%%", n, window, rate, want)
	}
	// In sequence, nothing skipped or repeated.
	var seq int64
	for _, a := range got {
		for _, p := range a.points {
			v, _ := p.Field("seq")
			if v.Int() != seq {
				t.Fatalf("seq %d after %d", v.Int(), seq-1)
			}
			seq++
		}
	}
}

// A low rate is paced point by point: at 5/s, ten intervals between
// eleven points take two seconds, give or take 15%.
func TestLowRate(t *testing.T) {
	const rate, points = 5, 11
	var times []time.Time
	stream(t, fmt.Sprintf(`{"rate": %d}`, rate), 30*time.Second, func(got []arrival) bool {
		for _, p := range got[len(got)-1].points {
			times = append(times, p.Received)
		}
		return len(times) >= points
	})
	span := times[points-1].Sub(times[0])
	want := time.Duration(points-1) * time.Second / rate
	t.Logf("%d points at rate %d over %s (%s expected)", points, rate, span, want)
	if span < want*85/100 || span > want*115/100 {
		t.Errorf("%d points at rate %d span %s, want %s ± 15%%", points, rate, span, want)
	}
}
