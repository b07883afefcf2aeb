package agent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/agent/cluster"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/sdnotify"
	"github.com/sluicehq/sluice/config"
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
// Lifecycle: New has no side effects. Run opens the units against the
// flow: the disk buffer, the outputs (outputSet: the sinks and what
// writes the buffer into them), the HTTP API (apiServer), then the feeds
// (feedSet); Reload may then apply a changed config to the running
// feeds. When Run's ctx ends it stops them with the flow: the feeds
// first, then the API, then it drains the outputs within
// cfg.ShutdownTimeout and closes the sinks and the buffer. Run is called
// once.
type Agent struct {
	cfg      *config.Config // as given to New; a reload changes only the feed set's copy
	log      *slog.Logger
	opts     Options
	launch   launcher // starts plugin processes: host.Launch
	rates    *rateTracker
	lag      *prometheus.HistogramVec
	registry *prometheus.Registry
	tap      tapHub
	ready    chan struct{}
	// secrets holds every secret value the config has held, masked in
	// the agent's log and in status (config.Config.SecretValues, and the
	// variables plugins are given).
	secrets *redact.Scrubber

	// reloadMu makes reloads one at a time, and none once stopping:
	// Run sets stopping under it.
	reloadMu sync.Mutex
	stopping atomic.Bool

	// run is what Run opened, for status, metrics, the API and reloads;
	// nil until every unit is open.
	run        atomic.Pointer[running]
	lastReload atomic.Pointer[reloadState]
}

// running is the agent's open units.
type running struct {
	buf     *pipeline.Buffer
	repair  *BufferRepair
	outputs *outputSet
	api     *apiServer
	feeds   *feedSet
	// cluster, in cluster mode, decides which feeds run here.
	cluster *cluster.Manager
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
		launch:  hostLauncher{},
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
	r := a.run.Load()
	if r == nil {
		return nil
	}
	return r.api.Addr()
}

func (a *Agent) notify(states ...string) {
	if a.opts.Notifier == nil {
		return
	}
	if err := a.opts.Notifier.Notify(states...); err != nil {
		a.log.Warn("cannot notify the service manager", "error", err)
	}
}

// Run runs the agent until ctx ends, then shuts down gracefully. It
// returns an error if startup failed or the drain was incomplete.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg
	// The token first: a bad one stops the start before anything opens.
	access, err := newAPIAccess(cfg, a.handler(), a.log)
	if err != nil {
		return err
	}
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return err
	}
	var agentName string
	if cfg.Cluster != nil {
		if agentName, err = clusterAgentName(cfg.Cluster); err != nil {
			return err
		}
	}
	a.log.Info("plugins found", "dir", cfg.PluginDir, "plugins", host.Names(plugins))

	// Against the flow: the disk buffer, the sinks and their outputs,
	// the API (a failed bind stops the start before any plugin runs),
	// then the feeds.
	buf, repair, err := openBuffer(cfg, a.log)
	if err != nil {
		return err
	}
	defer func() {
		if err := buf.Close(); err != nil {
			a.log.Error("close buffer", "error", err)
		}
	}()
	outputs := newOutputSet(cfg.Sinks, buf, a.lag, a.secrets, a.log)
	if err := outputs.Open(ctx); err != nil {
		return err
	}
	api := newAPIServer(cfg.HTTP, cfg.File, access, a.log)
	if err := api.Open(); err != nil {
		a.drain(outputs)
		return err
	}
	env := &feedEnv{
		buffer: buf, outputs: outputs.byName(), norm: pipeline.NewNormalizer(cfg.Limits, nil),
		keys: newKeyRegistry(filepath.Join(cfg.DataDir, keysFile), a.log), tap: &a.tap, scrub: a.secrets,
		launch: a.launch, environ: os.Environ, limits: cfg.Limits, restart: cfg.Restart, log: a.log,
	}
	// In cluster mode no feed runs until the cluster gives it a lease.
	var feeds *feedSet
	if cfg.Cluster != nil {
		feeds = newClusterFeedSet(cfg, plugins, env)
	} else {
		feeds = newFeedSet(cfg, plugins, env)
	}
	feeds.Start()
	r := &running{buf: buf, repair: repair, outputs: outputs, api: api, feeds: feeds}
	if cfg.Cluster != nil {
		r.cluster = a.newClusterManager(r, agentName)
	}
	a.run.Store(r)
	stopLoops := a.startLoops(r)

	close(a.ready)
	a.notify(sdnotify.Ready, a.statusLine())
	attrs := []any{"feeds", len(cfg.Feeds), "sinks", len(cfg.Sinks), "status", "http://" + api.Addr().String() + "/api/v1/status"}
	if cfg.Cluster != nil {
		attrs = append(attrs, "cluster", cfg.Cluster.Name, "agent", agentName)
	}
	if p := api.socketPath(); p != "" {
		attrs = append(attrs, "socket", p)
	}
	a.log.Info("sluice running", attrs...)

	// With the flow: no more reloads, the feeds (their leases given back
	// once they have stopped), the API, then the outputs drain into the
	// sinks; the buffer closes last (deferred).
	<-ctx.Done()
	a.notify(sdnotify.Stopping)
	a.log.Info("shutting down: stopping feeds, then draining sinks", "timeout", cfg.ShutdownTimeout)
	a.reloadMu.Lock()
	a.stopping.Store(true)
	a.reloadMu.Unlock()
	stopLoops()
	feeds.Stop()
	if r.cluster != nil {
		leaveCluster(r.cluster, cfg.Cluster.Timeout)
	}
	a.tap.close()
	api.Close()
	return a.drain(outputs)
}

// startLoops starts the agent's background loops (rates, the watchdog,
// the feeds_dir watcher, the cluster's manager) and returns what stops
// them and waits.
func (a *Agent) startLoops(r *running) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	loops.Go(func() { sampleRates(ctx, a.rates, r.rateCounters) })
	if a.opts.Notifier != nil && a.opts.Watchdog > 0 {
		wd := watchdog{every: a.opts.Watchdog, status: a.Status, notify: a.notify, log: a.log}
		loops.Go(func() { wd.run(ctx) })
	}
	if dir := a.cfg.FeedsDir; dir != "" {
		loops.Go(func() { watchFeedsDir(ctx, dir, a.Reload, a.log) })
	}
	if r.cluster != nil {
		loops.Go(func() { r.cluster.Run(ctx) })
	}
	return func() {
		cancel()
		loops.Wait()
	}
}

// drain closes the outputs within the shutdown timeout.
func (a *Agent) drain(outputs *outputSet) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	return outputs.Close(ctx)
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
	// Cluster, in cluster mode, is the cluster as this agent sees it:
	// the live agents, and who holds each feed. Feeds lists only the
	// feeds running here.
	Cluster *cluster.Status `json:"cluster,omitempty"`
}

// SinkStatus is an output's status with what the agent derives from it.
type SinkStatus struct {
	pipeline.OutputStatus
	PointsPerSec float64 `json:"points_per_sec"`
	// LagSeconds is the newest point's lag, event time to commit, in the
	// last batch written.
	LagSeconds float64 `json:"lag_seconds,omitempty"`
	// Stats are the sink's own figures, if its type keeps any (a live
	// sink's clients).
	Stats []sinks.Stat `json:"stats,omitempty"`
}

// Status returns a snapshot of every feed and sink.
func (a *Agent) Status() Status {
	now := time.Now()
	st := Status{Feeds: []FeedStatus{}, Sinks: []SinkStatus{}, BufferMaxBytes: a.cfg.Buffer.MaxBytes}
	if rs := a.lastReload.Load(); rs != nil {
		st.ConfigError, st.RestartNeeded, st.LastReload = rs.configError, rs.restartNeeded, rs.at
	}
	r := a.run.Load()
	if r == nil {
		return st
	}
	for _, fs := range r.feeds.status() {
		fs.PointsPerSec = a.rates.rate(rateKeyFeedPoints + fs.Name)
		fs.BatchesPerSec = a.rates.rate(rateKeyFeedBatches + fs.Name)
		if !fs.LastBatch.IsZero() {
			fs.LastBatchAge = max(now.Sub(fs.LastBatch).Seconds(), 0)
		}
		st.Feeds = append(st.Feeds, fs)
	}
	for _, ss := range r.outputs.status() {
		ss.PointsPerSec = a.rates.rate(rateKeySinkWritten + ss.Name)
		st.Sinks = append(st.Sinks, ss)
	}
	st.BufferBytes = r.buf.Size()
	st.BufferRepair = r.repair
	if r.cluster != nil {
		cs := r.cluster.Status()
		st.Cluster = &cs
	}
	return st
}

// Keys of the counters whose rates status shows.
const (
	rateKeyFeedPoints  = "feed.points/"
	rateKeyFeedBatches = "feed.batches/"
	rateKeySinkWritten = "sink.written/"
)

// rateCounters are the counters behind the rates in status.
func (r *running) rateCounters() map[string]uint64 {
	feeds, sinks := r.feeds.status(), r.outputs.status()
	v := make(map[string]uint64, 2*len(feeds)+len(sinks))
	for _, fs := range feeds {
		v[rateKeyFeedPoints+fs.Name], v[rateKeyFeedBatches+fs.Name] = fs.Points, fs.Batches
	}
	for _, ss := range sinks {
		v[rateKeySinkWritten+ss.Name] = ss.Written
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
