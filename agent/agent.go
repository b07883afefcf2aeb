package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// Agent is the running daemon.
//
// Lifecycle: New has no side effects. Run opens the sinks, starts the
// outputs, then the feeds, and serves status; when its ctx ends it stops
// the feeds first, drains the outputs within cfg.ShutdownTimeout, then
// closes the sinks. Run is called once.
type Agent struct {
	cfg *config.Config
	log *slog.Logger

	mu      sync.Mutex
	outputs map[string]*pipeline.Output
	feeds   map[string]*feed
	addr    net.Addr
	ready   chan struct{}
}

// New returns an agent for cfg.
func New(cfg *config.Config, log *slog.Logger) *Agent {
	return &Agent{cfg: cfg, log: log, ready: make(chan struct{})}
}

// Ready is closed once sinks are open and feeds started.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Addr is the status listener's address, once Ready.
func (a *Agent) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Run runs the agent until ctx ends, then shuts down gracefully. It
// returns an error if startup failed or the drain was incomplete.
func (a *Agent) Run(ctx context.Context) (err error) {
	plugins, err := host.Discover(a.cfg.PluginDir)
	if err != nil {
		return err
	}
	a.log.Info("plugins found", "dir", a.cfg.PluginDir, "plugins", host.Names(plugins))

	// The disk buffer first: every sink reads from it.
	var limits []pipeline.SinkLimit
	for _, name := range sortedKeys(a.cfg.Sinks) {
		p := a.cfg.Sinks[name].Pipeline
		limits = append(limits, pipeline.SinkLimit{Name: name, MaxBytes: p.MaxBufferBytes, WhenFull: p.WhenFull})
	}
	buf, rep, err := pipeline.OpenBuffer(pipeline.BufferOptions{
		Dir:          filepath.Join(a.cfg.DataDir, "buffer"),
		Sync:         wal.SyncPolicy(a.cfg.Buffer.Fsync),
		SyncInterval: a.cfg.Buffer.FsyncInterval,
		SegmentBytes: a.cfg.Buffer.SegmentBytes,
	}, limits, a.log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := buf.Close(); cerr != nil {
			a.log.Error("close buffer", "error", cerr)
		}
	}()
	logRecovery(a.log, rep)

	// Then the sinks, against the flow.
	outputs := make(map[string]*pipeline.Output, len(a.cfg.Sinks))
	defer func() {
		for name, o := range outputs {
			if cerr := o.Sink().Close(); cerr != nil {
				a.log.Error("close sink", "sink", name, "error", cerr)
			}
		}
	}()
	for _, name := range sortedKeys(a.cfg.Sinks) {
		sc := a.cfg.Sinks[name]
		log := a.log.With("sink", name)
		s, err := newSink(sc, log)
		if err != nil {
			return fmt.Errorf("sink %s: %w", name, err)
		}
		if err := s.Open(ctx); err != nil {
			return fmt.Errorf("open sink %s: %w", name, err)
		}
		o := pipeline.NewOutput(name, s, sc.Pipeline, buf.Cursor(name), log, nil)
		o.Start()
		outputs[name] = o
	}

	// Then the status listener, so a failed bind stops startup cleanly.
	ln, err := net.Listen("tcp", a.cfg.HTTP.Listen)
	if err != nil {
		a.drain(outputs)
		return fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("status server", "error", err)
		}
	})

	// Then the feeds.
	feedCtx, stopFeeds := context.WithCancel(context.Background())
	norm := pipeline.NewNormalizer(a.cfg.Limits, nil)
	feeds := make(map[string]*feed, len(a.cfg.Feeds))
	for _, name := range sortedKeys(a.cfg.Feeds) {
		fc := a.cfg.Feeds[name]
		f := &feed{
			name: name, cfg: fc, plugins: plugins, pin: a.cfg.Plugins[fc.Plugin].SHA256,
			buffer: buf, norm: norm, restart: a.cfg.Restart, sleep: sleepCtx,
			log: a.log.With("feed", name),
		}
		for _, s := range fc.Sinks {
			f.outputs = append(f.outputs, outputs[s])
		}
		feeds[name] = f
		wg.Go(func() { f.run(feedCtx) })
	}
	a.mu.Lock()
	a.outputs, a.feeds, a.addr = outputs, feeds, ln.Addr()
	a.mu.Unlock()
	close(a.ready)
	a.log.Info("sluice running", "feeds", len(feeds), "sinks", len(outputs), "status", "http://"+ln.Addr().String()+"/api/v1/status")

	<-ctx.Done()
	a.log.Info("shutting down: stopping feeds, then draining sinks", "timeout", a.cfg.ShutdownTimeout)
	stopFeeds()
	srv.Close()
	wg.Wait()
	return a.drain(outputs)
}

func logRecovery(log *slog.Logger, rep pipeline.RecoveryReport) {
	attrs := []any{"entries", rep.Entries}
	if len(rep.NewSinks) > 0 {
		attrs = append(attrs, "new_sinks", rep.NewSinks)
	}
	if len(rep.RemovedCursors) > 0 {
		attrs = append(attrs, "removed_sinks", rep.RemovedCursors)
	}
	log.Info("disk buffer opened", attrs...)
	if rep.TruncatedBytes > 0 || len(rep.Quarantined) > 0 || rep.BadEntries > 0 {
		log.Warn("disk buffer repaired on open",
			"truncated_bytes", rep.TruncatedBytes, "truncated_records", rep.TruncatedRecords,
			"quarantined", rep.Quarantined, "lost_records", rep.LostRecords, "bad_entries", rep.BadEntries)
	}
}

// drain closes every output within the shutdown timeout.
func (a *Agent) drain(outputs map[string]*pipeline.Output) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range outputs {
		wg.Go(func() {
			if err := o.Close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status is the whole agent's state.
type Status struct {
	Feeds []FeedStatus            `json:"feeds"`
	Sinks []pipeline.OutputStatus `json:"sinks"`
}

// Status returns a snapshot of every feed and sink.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{Feeds: []FeedStatus{}, Sinks: []pipeline.OutputStatus{}}
	for _, name := range sortedKeys(a.feeds) {
		st.Feeds = append(st.Feeds, a.feeds[name].status())
	}
	for _, name := range sortedKeys(a.outputs) {
		st.Sinks = append(st.Sinks, a.outputs[name].Status())
	}
	return st
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
