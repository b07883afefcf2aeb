package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
)

// A launcher of plugin processes that live in the test: each answers the
// host half of the protocol (source, as sdk.Client does) as its
// fakePlugin says, so that supervision is tested without building
// binaries. The end-to-end tests run the real ones.

// fakePlugin says how the processes of one plugin (by binary name) act.
// Nil funcs act as a healthy plugin: it launches, declares one
// measurement (fakeMeasurement) and sends a batch every second.
type fakePlugin struct {
	caps []string
	// launch, if set, may refuse the n-th launch (from 0).
	launch func(n int) error
	// configure answers a Configure; streaming says a stream runs.
	configure func(p *fakeProc, req sdk.ConfigureRequest, streaming bool) ([]sluice.Measurement, error)
	// stream runs the n-th process's stream.
	stream func(ctx context.Context, p *fakeProc, opts sdk.StreamOptions, fn sdk.BatchHandler) error
}

var fakeMeasurement = sluice.Measurement{Name: "m", Unique: []string{"seq"}}

type fakeLauncher struct {
	plugins map[string]*fakePlugin

	mu       sync.Mutex
	launched []*fakeProc
	tries    map[string]int // launches tried, by plugin
}

func (l *fakeLauncher) Launch(ctx context.Context, b host.Binary, opts host.LaunchOptions) (process, error) {
	fp := l.plugins[b.Name]
	if fp == nil {
		return nil, fmt.Errorf("no fake plugin %q", b.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tries == nil {
		l.tries = make(map[string]int)
	}
	n := l.tries[b.Name]
	l.tries[b.Name]++
	if fp.launch != nil {
		if err := fp.launch(n); err != nil {
			return nil, err
		}
	}
	p := &fakeProc{plugin: b.Name, n: n, pid: 1000 + len(l.launched), at: time.Now(), opts: opts, fp: fp, dead: make(chan error, 1)}
	l.launched = append(l.launched, p)
	return p, nil
}

// procs returns the processes launched of plugin ("" for all), in order.
func (l *fakeLauncher) procs(plugin string) []*fakeProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*fakeProc
	for _, p := range l.launched {
		if plugin == "" || p.plugin == plugin {
			out = append(out, p)
		}
	}
	return out
}

func (l *fakeLauncher) tried(plugin string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tries[plugin]
}

// fakeProc is one fake plugin process: its own source.
type fakeProc struct {
	plugin string
	n      int // the n-th process of its plugin
	pid    int
	at     time.Time // when it was launched
	opts   host.LaunchOptions
	fp     *fakePlugin

	dead chan error // crash sends the error emitEvery's stream fails with

	mu        sync.Mutex
	configs   []string // each Configure's config
	streams   []sdk.StreamOptions
	streaming bool
	killed    bool
}

func (p *fakeProc) Source() source { return p }
func (p *fakeProc) Pid() int       { return p.pid }

func (p *fakeProc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
}

// crash makes the process's emitEvery stream fail with err.
func (p *fakeProc) crash(err error) { p.dead <- err }

func (p *fakeProc) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

func (p *fakeProc) configured() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.configs)
}

func (p *fakeProc) streamed() []sdk.StreamOptions {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.streams)
}

func (p *fakeProc) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: p.plugin, Version: "0.0.1", Capabilities: p.fp.caps}, nil
}

func (p *fakeProc) Configure(ctx context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	p.mu.Lock()
	streaming := p.streaming
	p.configs = append(p.configs, string(req.Config))
	p.mu.Unlock()
	if p.fp.configure != nil {
		return p.fp.configure(p, req, streaming)
	}
	if streaming && !slices.Contains(p.fp.caps, sdk.CapReconfigure) {
		return nil, sdk.ErrRestartNeeded
	}
	return []sluice.Measurement{fakeMeasurement}, nil
}

func (p *fakeProc) Stream(ctx context.Context, opts sdk.StreamOptions, fn sdk.BatchHandler) error {
	p.mu.Lock()
	if p.killed {
		p.mu.Unlock()
		return errors.New("stream: the plugin process is gone")
	}
	p.streams = append(p.streams, opts)
	p.streaming = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.streaming = false
		p.mu.Unlock()
	}()
	if p.fp.stream != nil {
		return p.fp.stream(ctx, p, opts, fn)
	}
	return emitEvery(time.Second)(ctx, p, opts, fn)
}

// emitEvery is a stream that sends a batch of one point every d, its
// position "<pid>/<i>", until ctx ends or the process crashes.
func emitEvery(d time.Duration) func(context.Context, *fakeProc, sdk.StreamOptions, sdk.BatchHandler) error {
	return func(ctx context.Context, p *fakeProc, _ sdk.StreamOptions, fn sdk.BatchHandler) error {
		for i := 0; ; i++ {
			b := &sdk.Batch{Batch: sluice.Batch{
				Points:   []sluice.Point{{Measurement: "m", Fields: []sluice.Field{{Key: "seq", Value: sluice.Int(int64(i))}}, Time: time.Now()}},
				Position: sluice.Position(fmt.Sprintf("%d/%d", p.pid, i)),
			}}
			if err := fn(b, 0, nil); err != nil {
				return err
			}
			select {
			case <-time.After(d):
			case err := <-p.dead:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// failAfter is a stream that sends nothing, and fails with err after d.
func failAfter(d time.Duration, err error) func(context.Context, *fakeProc, sdk.StreamOptions, sdk.BatchHandler) error {
	return func(ctx context.Context, _ *fakeProc, _ sdk.StreamOptions, _ sdk.BatchHandler) error {
		select {
		case <-time.After(d):
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// declSink is a sink that records what is declared to it, and refuses
// what refuse says.
type declSink struct {
	refuse error

	mu       sync.Mutex
	declared [][]sluice.Measurement
}

func (s *declSink) Open(context.Context) error { return nil }
func (s *declSink) Declare(_ context.Context, ms []sluice.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		return s.refuse
	}
	s.declared = append(s.declared, ms)
	return nil
}
func (s *declSink) Write(context.Context, []sluice.Point) error { return nil }
func (s *declSink) Close() error                                { return nil }

// testFeedEnv is what feeds share, with a real disk buffer in a
// temporary directory holding a log for each of sinks (whose outputs are
// not started: what the feeds append stays buffered), an in-memory key
// registry, and l for a launcher. Restarts back off from 1s to 8s and
// reset after a minute.
func testFeedEnv(t *testing.T, l launcher, sinksByName map[string]sinks.Sink) *feedEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	def := config.Default()
	var limits []pipeline.SinkLimit
	for _, name := range sortedKeys(sinksByName) {
		limits = append(limits, pipeline.SinkLimit{Name: name, MaxBytes: 1 << 30, WhenFull: config.Block})
	}
	buf, _, err := pipeline.OpenBuffer(pipeline.BufferOptions{Dir: t.TempDir(), Sync: wal.SyncNever}, limits, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	outputs := make(map[string]*pipeline.Output)
	for name, s := range sinksByName {
		outputs[name] = pipeline.NewOutput(name, s, def.Pipeline, buf.Cursor(name), log, nil)
	}
	return &feedEnv{
		buffer: buf, outputs: outputs, norm: pipeline.NewNormalizer(def.Limits, nil),
		keys: newKeyRegistry("", log), tap: &tapHub{}, scrub: redact.NewScrubber(), launch: l,
		environ: func() []string { return []string{"PATH=/usr/bin", "WS_KEY=canary-secret-1"} },
		limits:  def.Limits, restart: config.Restart{Initial: time.Second, Max: 8 * time.Second, ResetAfter: time.Minute},
		log: log,
	}
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// testFeed returns the supervisor of a feed of plugin, to sink db.
func testFeed(env *feedEnv, name, plugin string, cfg map[string]any) *feed {
	fc := config.Feed{Plugin: plugin, Sinks: []string{"db"}, Config: cfg, File: "/etc/sluice/feeds.d/" + name + ".yaml"}
	bins := map[string]host.Binary{plugin: {Name: plugin, Path: "/usr/lib/sluice/plugins/sluice-source-" + plugin}}
	return newFeed(env, name, fc, "", func() map[string]host.Binary { return bins }, pipeline.NewNames(env.limits), nil)
}

// runFeed runs f's supervisor until the test ends (then it stops it),
// and returns what stops it early and tells whether it has ended.
func runFeed(t *testing.T, f *feed) (stop func(), ended func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}
