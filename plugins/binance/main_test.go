package binance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
	os.Exit(testbin.PluginMain(m, "binance", raceEnabled, &pluginPath))
}

// logLines is a slog.Handler that keeps the host's log of the plugin (its
// stderr, re-emitted) so that a test can fail on a data race report, and
// shows it with -v.
type logLines struct {
	mu    sync.Mutex
	lines []string
	v     bool
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	if l.v {
		fmt.Fprintln(os.Stderr, b.String())
	}
	return nil
}

func (l *logLines) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// runPlugin launches the plugin binary through go-plugin as the agent
// does, configures it and streams it into a store until stop is called.
// A batch with points the host cannot decode, or a race report from the
// plugin, fails the test.
func runPlugin(t *testing.T, cfg json.RawMessage, resume sluice.Position) (*store, func() error) {
	t.Helper()
	st, _, stop := runPluginClient(t, cfg, resume)
	return st, stop
}

// runPluginClient is runPlugin that also returns the host's client of the
// plugin, to configure it again while it streams.
func runPluginClient(t *testing.T, cfg json.RawMessage, resume sluice.Position) (*store, *sdk.Client, func() error) {
	t.Helper()
	return runPluginWith(t, cfg, sdk.StreamOptions{Resume: resume, FlushInterval: 20 * time.Millisecond}, func(b *sluice.Batch) {
		if b.Dropped > 0 {
			t.Errorf("the plugin dropped %d points", b.Dropped)
		}
	})
}

// runPluginWith is runPluginClient with the host's stream options, and
// each called with every batch before it lands in the store.
func runPluginWith(t *testing.T, cfg json.RawMessage, opts sdk.StreamOptions, each func(*sluice.Batch)) (*store, *sdk.Client, func() error) {
	t.Helper()
	logs := &logLines{v: testing.Verbose()}
	ctx, cancel := context.WithCancel(context.Background())
	proc, err := host.Launch(ctx, host.Binary{Name: "binance", Path: pluginPath}, host.LaunchOptions{Env: host.PluginEnv(os.Environ(), nil), Log: slog.New(logs)})
	if err != nil {
		cancel()
		t.Fatalf("launch: %v", err)
	}
	info, err := proc.Source.Describe(ctx)
	if err != nil || info.Name != "binance" {
		t.Fatalf("describe: %+v, %v", info, err)
	}
	if _, err := proc.Source.Configure(ctx, sdk.ConfigureRequest{Feed: "test", Config: cfg}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	st := &store{}
	done := make(chan error, 1)
	go func() {
		done <- proc.Source.Stream(ctx, opts,
			func(b *sdk.Batch, invalid int, invalidErr error) error {
				if invalid > 0 {
					return fmt.Errorf("%d points could not be decoded: %w", invalid, invalidErr)
				}
				each(&b.Batch)
				// As the agent does: every event becomes a feed_events point.
				points := b.Points
				for _, ev := range b.Events {
					points = append(points, sdk.EventPoint("test", ev))
				}
				st.add(points, b.Position)
				return nil
			})
	}()
	var once sync.Once
	var streamErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case streamErr = <-done:
			case <-time.After(10 * time.Second):
				t.Error("the stream did not end within 10s of its context")
			}
			proc.Kill()
			if races := logs.grep("DATA RACE"); len(races) > 0 {
				t.Errorf("the plugin reported a data race: %s", races[0])
			}
		})
		return streamErr
	}
	t.Cleanup(func() { stop() })
	return st, proc.Source, stop
}
