package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/sdnotify"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/internal/logsample"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/all"
)

// Notifier receives the agent's service states (systemd's sd_notify:
// READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1, STATUS=...).
type Notifier interface {
	Notify(states ...string) error
}

// Options are the agent's optional collaborators.
type Options struct {
	// Notifier, if set, is told when the agent is ready, reloading and
	// stopping, and is pinged while the pipeline makes progress.
	Notifier Notifier
	// Watchdog is how often to ping the Notifier (half of systemd's
	// WATCHDOG_USEC); 0 sends no pings.
	Watchdog time.Duration
	// Version is exported as sluice_build_info{version}.
	Version string
	// Load reads the configuration again on Reload; nil means
	// config.Load of the file the running config came from.
	Load func() (*config.Config, error)
}

// Agent is the running daemon.
//
// Lifecycle: New has no side effects. Run opens the sinks, starts the
// outputs, then the feeds, and serves status; Reload may then apply a
// changed config to the running feeds. When Run's ctx ends it stops the
// feeds first, drains the outputs within cfg.ShutdownTimeout, then closes
// the sinks. Run is called once.
type Agent struct {
	log      *slog.Logger
	opts     Options
	rates    *rateTracker
	lag      *prometheus.HistogramVec
	registry *prometheus.Registry
	tap      tapHub
	ready    chan struct{}
	// secrets holds every secret value the config has held, masked in
	// the agent's log and in status (config.Config.SecretValues, and the
	// variables plugins are given).
	secrets *redact.Scrubber

	// reloadMu makes reloads one at a time and none once stopping.
	reloadMu sync.Mutex
	stopping bool

	mu       sync.Mutex
	cfg      *config.Config // as last applied: the feeds and pins of the last good reload
	plugins  map[string]host.Binary
	outputs  map[string]*pipeline.Output
	observed map[string]*observedSink
	feeds    map[string]*runningFeed
	buf      *pipeline.Buffer
	repair   *BufferRepair
	addr     net.Addr
	reload   reloadState

	// Set by Run before the first feed starts.
	feedCtx context.Context
	norm    *pipeline.Normalizer
	keys    *keyRegistry
	feedWG  sync.WaitGroup
	// names holds each configured feed's name budget (under mu), kept
	// across the feed's restarts and reloads, dropped with the feed.
	names map[string]*pipeline.Names
}

// runningFeed is a feed's supervisor goroutine and how to stop it.
type runningFeed struct {
	*feed
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an agent for cfg.
func New(cfg *config.Config, log *slog.Logger, opts Options) *Agent {
	if opts.Load == nil {
		file := cfg.File
		opts.Load = func() (*config.Config, error) { return config.Load(file, all.Types.Configs()) }
	}
	secrets := redact.NewScrubber()
	secrets.Add(cfg.SecretValues()...)
	a := &Agent{
		cfg: cfg, log: slog.New(secrets.Handler(log.Handler())), opts: opts,
		secrets: secrets,
		ready:   make(chan struct{}),
		rates:   newRateTracker(rateWindow),
		lag:     newLagHistogram(),
	}
	a.registry = newRegistry(a, a.lag)
	a.tap.max = cfg.HTTP.MaxTapClients
	return a
}

// Ready is closed once sinks are open and feeds started.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

func (a *Agent) isReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// Addr is the status listener's address, once Ready.
func (a *Agent) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

func (a *Agent) notify(states ...string) {
	if a.opts.Notifier == nil {
		return
	}
	if err := a.opts.Notifier.Notify(states...); err != nil {
		a.log.Warn("cannot notify the service manager", "error", err)
	}
}

func (a *Agent) pluginSet() map[string]host.Binary {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.plugins
}

// Run runs the agent until ctx ends, then shuts down gracefully. It
// returns an error if startup failed or the drain was incomplete.
func (a *Agent) Run(ctx context.Context) (err error) {
	cfg := a.cfg
	// The token first: a bad one stops the start before anything opens.
	api, err := newAPIAccess(cfg, a.handler(), a.log)
	if err != nil {
		return err
	}
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return err
	}
	a.log.Info("plugins found", "dir", cfg.PluginDir, "plugins", host.Names(plugins))

	// The disk buffer first: every sink reads from it.
	var limits []pipeline.SinkLimit
	for _, name := range sortedKeys(cfg.Sinks) {
		p := cfg.Sinks[name].Pipeline
		limits = append(limits, pipeline.SinkLimit{Name: name, MaxBytes: p.MaxBufferBytes, WhenFull: p.WhenFull})
	}
	buf, rep, err := pipeline.OpenBuffer(pipeline.BufferOptions{
		Dir:          filepath.Join(cfg.DataDir, "buffer"),
		Sync:         wal.SyncPolicy(cfg.Buffer.Fsync),
		SyncInterval: cfg.Buffer.FsyncInterval,
		SegmentBytes: cfg.Buffer.SegmentBytes,
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
	repair := bufferRepair(rep)

	// Then the sinks, against the flow.
	outputs := make(map[string]*pipeline.Output, len(cfg.Sinks))
	observed := make(map[string]*observedSink, len(cfg.Sinks))
	defer func() {
		for name, o := range outputs {
			if cerr := o.Sink().Close(); cerr != nil {
				a.log.Error("close sink", "sink", name, "error", cerr)
			}
		}
	}()
	for _, name := range sortedKeys(cfg.Sinks) {
		sc := cfg.Sinks[name]
		log := a.log.With("sink", name)
		s, err := newSink(sc, log)
		if err != nil {
			return fmt.Errorf("sink %s: %w", name, err)
		}
		if err := s.Open(ctx); err != nil {
			return fmt.Errorf("open sink %s: %w", name, err)
		}
		obs := newObservedSink(s, a.lag.WithLabelValues(name))
		obs.scrub = a.secrets
		o := pipeline.NewOutput(name, obs, sc.Pipeline, buf.Cursor(name), log, nil)
		// The buffer may hold a backlog from before a restart: the sink
		// must know every uniqueness key before it writes any of it.
		if err := declareBacklog(ctx, o, buf.Measurements(), log); err != nil {
			return err
		}
		o.Start()
		outputs[name], observed[name] = o, obs
	}
	a.mu.Lock()
	a.plugins, a.buf, a.outputs, a.observed, a.repair = plugins, buf, outputs, observed, repair
	a.mu.Unlock()

	// Then the API's listeners, so a failed bind stops startup cleanly.
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		a.drain(outputs)
		return fmt.Errorf("http.listen: %w", err)
	}
	sock, err := a.listenSocket(cfg.HTTP.Socket)
	if err != nil {
		ln.Close()
		a.drain(outputs)
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, ConnContext: connContext}
	var wg sync.WaitGroup
	serve := func(ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("API server", "error", err, "listener", ln.Addr().String())
		}
	}
	wg.Go(func() { serve(ln) })
	if sock != nil {
		wg.Go(func() { serve(sock) })
	}

	// Then the feeds.
	feedCtx, stopFeeds := context.WithCancel(context.Background())
	a.feedCtx = feedCtx
	a.norm = pipeline.NewNormalizer(cfg.Limits, nil)
	a.keys = newKeyRegistry(filepath.Join(cfg.DataDir, keysFile), a.log)
	a.keys.load(cfg.Feeds)
	a.names = make(map[string]*pipeline.Names)
	feeds := make(map[string]*runningFeed, len(cfg.Feeds))
	for _, name := range sortedKeys(cfg.Feeds) {
		feeds[name] = a.startFeed(cfg, name, nil)
	}
	a.mu.Lock()
	a.feeds, a.addr = feeds, ln.Addr()
	a.mu.Unlock()

	// Background loops: rates, the watchdog, the feeds_dir watcher.
	loopCtx, stopLoops := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	loops.Go(func() { a.sampleRates(loopCtx) })
	if a.opts.Notifier != nil && a.opts.Watchdog > 0 {
		loops.Go(func() { a.watchdog(loopCtx, a.opts.Watchdog) })
	}
	if cfg.FeedsDir != "" {
		loops.Go(func() { a.watchFeedsDir(loopCtx, cfg.FeedsDir) })
	}

	close(a.ready)
	a.notify(sdnotify.Ready, a.statusLine())
	running := []any{"feeds", len(feeds), "sinks", len(outputs), "status", "http://" + ln.Addr().String() + "/api/v1/status"}
	if sock != nil {
		running = append(running, "socket", sock.path)
	}
	a.log.Info("sluice running", running...)

	<-ctx.Done()
	a.notify(sdnotify.Stopping)
	a.log.Info("shutting down: stopping feeds, then draining sinks", "timeout", cfg.ShutdownTimeout)
	a.reloadMu.Lock()
	a.stopping = true
	a.reloadMu.Unlock()
	stopLoops()
	loops.Wait()
	stopFeeds()
	a.feedWG.Wait()
	a.tap.close()
	srv.Close()
	wg.Wait()
	if sock != nil {
		if err := sock.remove(); err != nil {
			a.log.Warn("cannot remove the API socket", "socket", sock.path, "error", err)
		}
	}
	return a.drain(outputs)
}

// listenSocket opens http.socket; nil if it is "" or its directory does
// not exist (the default outside systemd), which is only warned about.
func (a *Agent) listenSocket(path string) (*socketListener, error) {
	if path == "" {
		return nil, nil
	}
	sock, err := listenSocket(path)
	if errors.Is(err, errNoSocketDir) {
		a.log.Warn("serving no unix socket: its directory does not exist, so `sluice reload` and `sluice tap` cannot reach the agent "+
			"(systemd's RuntimeDirectory=sluice makes /run/sluice; set http.socket to a path in a directory that exists, or \"\" for none)",
			"socket", path, "file", a.cfg.File)
		return nil, nil
	}
	if err != nil {
		return nil, &config.Error{File: a.cfg.File, Key: "http.socket", Msg: err.Error(), Err: err}
	}
	return sock, nil
}

// startFeed starts the supervisor of cfg's feed name. carry, if set, is
// the status of the feed it replaces, whose counters continue.
func (a *Agent) startFeed(cfg *config.Config, name string, carry *FeedStatus) *runningFeed {
	fc := cfg.Feeds[name]
	f := &feed{
		name: name, cfg: fc, plugins: a.pluginSet, pin: cfg.Plugins[fc.Plugin].SHA256,
		maxMsg: cfg.Limits.MaxPluginMessageBytes, environ: os.Environ, scrub: a.secrets,
		buffer: a.buf, norm: a.norm, keys: a.keys, tap: &a.tap, restart: cfg.Restart, sleep: backoff.Sleep,
		warned: logsample.New(sampleEvery, nil),
		log:    a.log.With("feed", name),
	}
	if carry != nil {
		f.st = *carry
		f.st.State, f.st.Pid, f.st.LastError = FeedStarting, 0, ""
	}
	a.mu.Lock()
	for _, s := range fc.Sinks {
		f.outputs = append(f.outputs, a.outputs[s])
	}
	if f.names = a.names[name]; f.names == nil {
		f.names = pipeline.NewNames(cfg.Limits) // limits change only with a restart
		a.names[name] = f.names
	}
	a.mu.Unlock()
	ctx, cancel := context.WithCancel(a.feedCtx)
	rf := &runningFeed{feed: f, cancel: cancel, done: make(chan struct{})}
	a.feedWG.Go(func() {
		defer close(rf.done)
		defer cancel()
		f.run(ctx)
	})
	return rf
}

// stop stops the feed's plugin and waits for its supervisor to end.
func (rf *runningFeed) stop() {
	rf.cancel()
	<-rf.done
}

// declareBacklog declares to o the measurements the buffer saved, so
// that its backlog is written under their keys. A measurement saved with
// two different keys (by feeds from before keys were checked across
// feeds) is left out: the sink keeps the key it has. A key the sink
// refuses is logged: the feed declaring it fails when it starts, and the
// sink keeps the key it has; nothing else waits for it.
func declareBacklog(ctx context.Context, o *pipeline.Output, ms []sluice.Measurement, log *slog.Logger) error {
	byName := make(map[string][]sluice.Measurement)
	for _, m := range ms {
		byName[m.Name] = append(byName[m.Name], m)
	}
	var keep []sluice.Measurement
	for _, name := range sortedKeys(byName) {
		decl := byName[name]
		if !slices.ContainsFunc(decl, func(m sluice.Measurement) bool { return !sameKey(m.Unique, decl[0].Unique) }) {
			keep = append(keep, decl[0])
			continue
		}
		keys := make([]string, len(decl))
		for i, m := range decl {
			keys[i] = formatKey(m.Unique)
		}
		log.Warn("a measurement was declared with different uniqueness keys; the sink keeps the key it has until a feed declares one",
			"measurement", name, "keys", keys)
	}
	err := o.Declare(ctx, keep)
	if err != nil && sinks.IsRefused(err) {
		log.Error("sink refuses a saved uniqueness key; it keeps the key it has", "error", err)
		return nil
	}
	return err
}

func logRecovery(log *slog.Logger, rep pipeline.RecoveryReport) {
	attrs := []any{"entries", rep.Entries}
	if len(rep.NewSinks) > 0 {
		attrs = append(attrs, "new_sinks", rep.NewSinks)
	}
	if rep.MigratedFrom != "" {
		attrs = append(attrs, "migrated_entries", rep.Migrated, "migrated_from", rep.MigratedFrom)
	}
	if len(rep.KeptApartAgain) > 0 {
		attrs = append(attrs, "kept_apart_batches", rep.KeptApartAgain)
	}
	log.Info("disk buffer opened", attrs...)
	for name, size := range rep.OrphanedSinks {
		log.Warn("disk buffer holds entries for a sink that is not configured; configure it again to deliver them, or remove its directory",
			"sink", name, "bytes", size)
	}
	if rep.TruncatedBytes > 0 || len(rep.Quarantined) > 0 || rep.BadEntries > 0 || len(rep.DamagedFiles) > 0 {
		log.Warn("disk buffer repaired on open",
			"truncated_bytes", rep.TruncatedBytes, "truncated_records", rep.TruncatedRecords,
			"quarantined", rep.Quarantined, "lost_records", rep.LostRecords, "skipped_bytes", rep.SkippedBytes, "bad_entries", rep.BadEntries,
			"damaged_files", rep.DamagedFiles)
	}
}

// BufferRepair is what opening the disk buffer repaired or did without,
// for status and metrics: records a crash or the disk damaged, and state
// files that could not be read.
type BufferRepair struct {
	TruncatedRecords int              `json:"truncated_records,omitempty"` // a torn tail cut off
	LostRecords      uint64           `json:"lost_records,omitempty"`      // records skipped as corrupt (their points are lost to that sink)
	SkippedBytes     int64            `json:"skipped_bytes,omitempty"`     // bytes of them
	Quarantined      []string         `json:"quarantined,omitempty"`       // copies of damaged log files, for inspection
	BadEntries       int              `json:"bad_entries,omitempty"`       // records whose content could not be decoded
	DamagedFiles     []string         `json:"damaged_files,omitempty"`     // cursor and state files done without
	OrphanedSinks    map[string]int64 `json:"orphaned_sinks,omitempty"`    // logs of sinks not configured, bytes
}

func bufferRepair(rep pipeline.RecoveryReport) *BufferRepair {
	r := &BufferRepair{
		TruncatedRecords: rep.TruncatedRecords, LostRecords: rep.LostRecords, SkippedBytes: rep.SkippedBytes, Quarantined: rep.Quarantined,
		BadEntries: rep.BadEntries, DamagedFiles: rep.DamagedFiles, OrphanedSinks: rep.OrphanedSinks,
	}
	if r.TruncatedRecords == 0 && r.LostRecords == 0 && len(r.Quarantined) == 0 && r.BadEntries == 0 &&
		len(r.DamagedFiles) == 0 && len(r.OrphanedSinks) == 0 {
		return nil
	}
	return r
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
	Feeds []FeedStatus `json:"feeds"`
	Sinks []SinkStatus `json:"sinks"`
	// BufferBytes is the disk buffer's size on disk; BufferMaxBytes its
	// bound (buffer.max_bytes).
	BufferBytes    int64 `json:"buffer_bytes"`
	BufferMaxBytes int64 `json:"buffer_max_bytes"`
	// BufferRepair is what opening the disk buffer had to repair or do
	// without, if anything.
	BufferRepair *BufferRepair `json:"buffer_repair,omitempty"`
	// ConfigError is why the last reload was rejected, one problem per
	// line; empty once a reload succeeds.
	ConfigError string `json:"config_error,omitempty"`
	// RestartNeeded lists the config keys changed on disk that a reload
	// does not apply (sinks, http, ...): they wait for a restart.
	RestartNeeded []string  `json:"restart_needed,omitempty"`
	LastReload    time.Time `json:"last_reload,omitzero"`
}

// SinkStatus is an output's status with what the agent derives from it.
type SinkStatus struct {
	pipeline.OutputStatus
	PointsPerSec float64 `json:"points_per_sec"`
	// LagSeconds is the newest point's lag, event time to commit, in the
	// last batch written.
	LagSeconds float64 `json:"lag_seconds,omitempty"`
}

// Status returns a snapshot of every feed and sink.
func (a *Agent) Status() Status {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{
		Feeds: []FeedStatus{}, Sinks: []SinkStatus{},
		ConfigError: a.reload.configError, RestartNeeded: a.reload.restartNeeded, LastReload: a.reload.at,
	}
	for _, name := range sortedKeys(a.feeds) {
		fs := a.feeds[name].status()
		fs.PointsPerSec = a.rates.rate(rateKeyFeedPoints + name)
		fs.BatchesPerSec = a.rates.rate(rateKeyFeedBatches + name)
		if !fs.LastBatch.IsZero() {
			fs.LastBatchAge = max(now.Sub(fs.LastBatch).Seconds(), 0)
		}
		st.Feeds = append(st.Feeds, fs)
	}
	for _, name := range sortedKeys(a.outputs) {
		ss := SinkStatus{OutputStatus: a.outputs[name].Status(), PointsPerSec: a.rates.rate(rateKeySinkWritten + name)}
		if obs := a.observed[name]; obs != nil {
			ss.LagSeconds = obs.LastLag().Seconds()
		}
		st.Sinks = append(st.Sinks, ss)
	}
	if a.buf != nil {
		st.BufferBytes = a.buf.Size()
	}
	st.BufferMaxBytes = a.cfg.Buffer.MaxBytes
	st.BufferRepair = a.repair
	return st
}

// Keys of the counters whose rates status shows.
const (
	rateKeyFeedPoints  = "feed.points/"
	rateKeyFeedBatches = "feed.batches/"
	rateKeySinkWritten = "sink.written/"
)

// sampleRates samples the counters behind the rates until ctx ends.
func (a *Agent) sampleRates(ctx context.Context) {
	t := time.NewTicker(rateSampleEvery)
	defer t.Stop()
	for {
		a.rates.sample(time.Now(), a.rateCounters())
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (a *Agent) rateCounters() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := make(map[string]uint64, 2*len(a.feeds)+len(a.outputs))
	for name, f := range a.feeds {
		fs := f.status()
		v[rateKeyFeedPoints+name], v[rateKeyFeedBatches+name] = fs.Points, fs.Batches
	}
	for name, o := range a.outputs {
		v[rateKeySinkWritten+name] = o.Status().Written
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
