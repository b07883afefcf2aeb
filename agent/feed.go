package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/internal/logsample"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
)

// FeedState is what a feed is doing, as shown in status.
type FeedState string

const (
	FeedStarting     FeedState = "starting"
	FeedRunning      FeedState = "running"
	FeedBackingOff   FeedState = "backing_off"
	FeedFailedConfig FeedState = "failed_config" // the plugin rejected its config, or it conflicts with another feed's; not retried
	FeedFailed       FeedState = "failed"        // missing or mismatched plugin, a permanent source error, or a sink refusing its key; not retried
	FeedStopped      FeedState = "stopped"
)

// reconfigureTimeout bounds a live reconfiguration; past it the feed is
// restarted with the new config instead.
const reconfigureTimeout = 30 * time.Second

// sampleEvery throttles repeated warnings (rejected points, plugin drops)
// to one log line per feed and kind per interval; counters see them all.
const sampleEvery = 10 * time.Second

// errPermanent marks failures that a restart cannot fix.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// feedEnv is what every feed shares for the agent's whole run: the
// pipeline its batches go into, how its plugin is started, and the
// settings a reload does not change (limits, restart).
type feedEnv struct {
	buffer *pipeline.Buffer
	// outputs are the running outputs by sink name; a feed declares its
	// measurements to those of its sinks.
	outputs map[string]*pipeline.Output
	norm    *pipeline.Normalizer
	keys    *keyRegistry
	tap     *tapHub
	// scrub masks known secrets in what status shows (LastError); the
	// values of the variables a plugin is given are added to it.
	scrub  *redact.Scrubber
	launch launcher
	// environ is the agent's environment, of which a plugin gets a few
	// variables (host.PluginEnv): os.Environ in the agent.
	environ func() []string
	limits  config.Limits
	restart config.Restart
	log     *slog.Logger
}

// feed supervises one feed: it runs the plugin process, restarts it with
// backoff when it dies, and routes its batches to the feed's outputs.
//
// Lifecycle: newFeed has no side effects; run supervises until its ctx
// ends or the feed fails permanently, and is called once; reconfigure
// and status may be called meanwhile, from other goroutines.
type feed struct {
	name    string
	env     *feedEnv
	plugins func() map[string]host.Binary // the plugins found at the last (re)load
	pin     string
	outputs []*pipeline.Output // the feed's sinks, for Declare
	names   *pipeline.Names    // the feed's name budget; outlives this supervisor across reloads
	log     *slog.Logger
	// cfg.Config (only) changes on a reconfigure, under mu.
	cfg config.Feed
	// from, if set, is where the plugin resumes until the feed has
	// buffered a position of its own (then the buffer's): in cluster
	// mode, the position the feed's last holder left in the cluster's
	// KV. Under mu once run starts.
	from sluice.Position

	mu     sync.Mutex
	st     FeedStatus
	warned *logsample.Sampler      // one warning per kind per sampleEvery
	proc   process                 // the running plugin process, nil between runs
	caps   []string                // what that plugin said it can do
	envs   []string                // the variables its config referenced when it started
	stale  map[string]*StaleStream // by staleKey; what the running plugin reported stale
}

// newFeed returns the supervisor of feed name, configured by fc with the
// plugin pin pin. carry, if set, is the status of the supervisor it
// replaces, whose counters continue.
func newFeed(env *feedEnv, name string, fc config.Feed, pin string, plugins func() map[string]host.Binary,
	names *pipeline.Names, carry *FeedStatus) *feed {
	f := &feed{
		name: name, env: env, cfg: fc, pin: pin, plugins: plugins, names: names,
		warned: logsample.New(sampleEvery, nil),
		log:    env.log.With("feed", name),
	}
	for _, s := range fc.Sinks {
		f.outputs = append(f.outputs, env.outputs[s])
	}
	if carry != nil {
		f.st = *carry
		f.st.State, f.st.Pid, f.st.LastError = FeedStarting, 0, ""
	}
	return f
}

// FeedStatus is a snapshot of a feed.
type FeedStatus struct {
	Name          string                     `json:"name"`
	Plugin        string                     `json:"plugin"`
	PluginVersion string                     `json:"plugin_version,omitempty"`
	State         FeedState                  `json:"state"`
	Pid           int                        `json:"pid,omitempty"`
	Restarts      uint64                     `json:"restarts"`
	Batches       uint64                     `json:"batches"`
	Points        uint64                     `json:"points"`
	Rejected      map[pipeline.Reason]uint64 `json:"rejected"`
	PluginDropped uint64                     `json:"plugin_dropped"`
	// PluginDiscarded counts, by reason, the messages the plugin
	// discarded before they became points (a frame too large, a message
	// that is not JSON).
	PluginDiscarded map[string]uint64 `json:"plugin_discarded,omitempty"`
	// What the plugin reported as events (or, from a plugin built before
	// events, as feed_events points): counts by kind, and those the
	// dashboards graph.
	Events           map[string]uint64 `json:"events,omitempty"`
	Reconnects       uint64            `json:"reconnects"`
	Gaps             uint64            `json:"gaps"`
	BackfilledPoints uint64            `json:"backfilled_points"`
	// Stale lists what the running plugin reports as having had no data
	// for longer than it allows (its stale_after): streams, or the feed
	// as a whole. A stale feed is still running; /readyz fails while
	// this is not empty.
	Stale     []StaleStream `json:"stale,omitempty"`
	LastBatch time.Time     `json:"last_batch,omitzero"`
	LastError string        `json:"last_error,omitempty"`

	// Derived when the snapshot is taken.
	LastBatchAge  float64 `json:"last_batch_age_seconds,omitempty"`
	PointsPerSec  float64 `json:"points_per_sec"`
	BatchesPerSec float64 `json:"batches_per_sec"`
}

func (f *feed) status() FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Rejected = maps.Clone(f.st.Rejected)
	if st.Rejected == nil {
		st.Rejected = make(map[pipeline.Reason]uint64)
	}
	st.Events = maps.Clone(f.st.Events)
	st.PluginDiscarded = maps.Clone(f.st.PluginDiscarded)
	st.Stale = f.staleList(time.Now())
	return st
}

func (f *feed) update(fn func(st *FeedStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func (f *feed) setState(s FeedState, err error) {
	f.update(func(st *FeedStatus) {
		st.State = s
		if err != nil {
			st.LastError = f.env.scrub.String(err.Error())
		}
		if s != FeedRunning {
			st.Pid = 0
		}
	})
}

// run supervises the feed until ctx ends or a permanent failure.
func (f *feed) run(ctx context.Context) {
	f.update(func(st *FeedStatus) {
		st.Name, st.Plugin = f.name, f.cfg.Plugin
		if st.Rejected == nil { // else carried over from before a reload
			st.Rejected = make(map[pipeline.Reason]uint64)
		}
	})
	bo := backoff.New(backoff.Policy{Initial: f.env.restart.Initial, Max: f.env.restart.Max})
	for {
		started := time.Now()
		err := f.runOnce(ctx)
		if ctx.Err() != nil {
			f.setState(FeedStopped, nil)
			return
		}
		var cfgErr sdk.ConfigErrors
		var perm errPermanent
		var srcPerm *sdk.PermanentError
		var conflict *KeyConflictError
		switch {
		case errors.As(err, &conflict):
			f.setState(FeedFailedConfig, err)
			f.log.Error("feed declares a measurement another feed writes with a different uniqueness key; not restarting until the config changes", "error", err)
			return
		case errors.As(err, &srcPerm):
			f.setState(FeedFailed, err)
			f.log.Error("feed failed permanently; not restarting until its config changes", "error", err)
			return
		case errors.As(err, &cfgErr):
			f.setState(FeedFailedConfig, err)
			f.log.Error("feed config rejected by its plugin; not restarting until the config changes", "error", err)
			return
		case errors.As(err, &perm):
			f.setState(FeedFailed, err)
			f.log.Error("feed cannot start; not restarting", "error", err)
			return
		}
		if time.Since(started) >= f.env.restart.ResetAfter {
			bo.Reset()
		}
		wait := bo.Next()
		f.setState(FeedBackingOff, err)
		f.update(func(st *FeedStatus) { st.Restarts++ })
		f.log.Warn("plugin stopped; restarting after backoff", "error", err, "retry_in", wait.Round(time.Millisecond), "attempt", bo.Attempts())
		if backoff.Sleep(ctx, wait) != nil {
			f.setState(FeedStopped, nil)
			return
		}
	}
}

// runOnce runs one plugin process from launch to exit.
func (f *feed) runOnce(ctx context.Context) error {
	f.setState(FeedStarting, nil)
	bin, ok := f.plugins()[f.cfg.Plugin]
	if !ok {
		return errPermanent{fmt.Errorf("plugin %q not found in the plugin directory", f.cfg.Plugin)}
	}
	f.mu.Lock()
	envNames := f.cfg.EnvNames()
	procs := f.cfg.GoMaxProcs
	f.mu.Unlock()
	env := host.PluginEnv(f.env.environ(), envNames)
	for _, kv := range env {
		if name, value, _ := strings.Cut(kv, "="); slices.Contains(envNames, name) {
			f.env.scrub.Add(value) // what the plugin was given for its secrets
		}
	}
	if procs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(procs)) // after any GOMAXPROCS the feed passes: the last one counts
	}
	proc, err := f.env.launch.Launch(ctx, bin, host.LaunchOptions{
		Pin: f.pin, Env: env, MaxMessageBytes: f.env.limits.MaxPluginMessageBytes, Log: f.log.With("plugin", f.cfg.Plugin),
	})
	var sumErr *host.ChecksumError
	var trustErr *host.TrustError
	if errors.As(err, &sumErr) || errors.As(err, &trustErr) {
		return errPermanent{err}
	}
	if err != nil {
		return err
	}
	defer proc.Kill()
	info, err := proc.Source().Describe(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	raw, err := json.Marshal(f.cfg.Config) // a reload may have changed it in place
	f.mu.Unlock()
	if err != nil {
		return errPermanent{fmt.Errorf("encode feed config: %w", err)}
	}
	if err := f.configure(ctx, proc, raw, slices.Contains(info.Capabilities, sdk.CapEvents)); err != nil {
		return err
	}
	// Resume from the last position that reached the disk buffer with
	// its points: what came after it, the plugin sends (or backfills) again.
	resume := f.resumeFrom()
	f.update(func(st *FeedStatus) {
		st.State, st.Pid, st.PluginVersion = FeedRunning, proc.Pid(), info.Version
	})
	f.mu.Lock()
	f.proc, f.caps, f.envs = proc, info.Capabilities, envNames
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.proc, f.caps, f.envs = nil, nil, nil
		f.mu.Unlock()
		f.clearStale()
	}()
	// A plugin built before events sends its own feed_events points;
	// they are counted, and written as the points they are.
	legacy := !slices.Contains(info.Capabilities, sdk.CapEvents)
	f.log.Info("feed running", "plugin_version", info.Version, "pid", proc.Pid(), "resume", resume != nil, "events", !legacy)
	err = proc.Source().Stream(ctx, sdk.StreamOptions{
		Resume:        resume,
		QueueSize:     f.cfg.QueueSize,
		BatchSize:     f.cfg.BatchSize,
		FlushInterval: f.cfg.FlushInterval,
	}, func(b *sdk.Batch, invalid int, invalidErr error) error {
		return f.deliver(ctx, b, legacy, invalid, invalidErr)
	})
	if err == nil {
		err = errors.New("plugin ended its stream")
	}
	if errors.Is(err, sdk.ErrMessageTooLarge) {
		err = fmt.Errorf("%w (limits.max_plugin_message_bytes is %d: raise it, or lower the feed's batch_size)", err, f.env.limits.MaxPluginMessageBytes)
	}
	return err
}

// resumeFrom is the position the plugin resumes from: the one the feed
// started with, until it has buffered one of its own; then the newest
// that reached the disk buffer for every sink of the feed.
func (f *feed) resumeFrom() sluice.Position {
	f.mu.Lock()
	from := f.from
	f.mu.Unlock()
	if from != nil {
		return from
	}
	return f.env.buffer.Position(f.name)
}

// reconfigure hands a new plugin config to the running plugin process, so
// that a plugin that can (sdk.CapReconfigure: Binance subscribes and
// unsubscribes in place) takes it without a restart. It returns an error
// matching sdk.ErrRestartNeeded when the plugin cannot, or is not running;
// sdk.ConfigErrors when it rejects the config (the old one stays).
func (f *feed) reconfigure(ctx context.Context, cfg map[string]any) error {
	f.mu.Lock()
	proc, caps, envs := f.proc, f.caps, f.envs
	f.mu.Unlock()
	switch {
	case proc == nil:
		return fmt.Errorf("%w: the plugin is not running", sdk.ErrRestartNeeded)
	case !slices.Contains(caps, sdk.CapReconfigure):
		// Plugins from before the capability would take the config and
		// ignore it.
		return fmt.Errorf("%w: the plugin cannot be reconfigured while it runs", sdk.ErrRestartNeeded)
	case !slices.Equal(envs, config.Feed{Config: cfg}.EnvNames()):
		// The running process has only the variables of the old config.
		return fmt.Errorf("%w: the config references other environment variables", sdk.ErrRestartNeeded)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode feed config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, reconfigureTimeout)
	defer cancel()
	if err := f.configure(ctx, proc, raw, slices.Contains(caps, sdk.CapEvents)); err != nil {
		var conflict *KeyConflictError
		var perm errPermanent
		if errors.As(err, &conflict) || errors.As(err, &perm) {
			// The plugin runs the new config already, and its
			// measurements may not be written: a restart makes the
			// feed fail with this reason.
			return fmt.Errorf("%w: %w", sdk.ErrRestartNeeded, err)
		}
		return err
	}
	f.mu.Lock()
	f.cfg.Config = cfg // a later restart of the plugin starts with it
	f.mu.Unlock()
	return nil
}

// configure sends the feed's config to the plugin and declares the
// measurements it answers with: to the key registry, which refuses a
// measurement another feed holds with a different uniqueness key
// (*KeyConflictError); to every output, whose sink refuses a key its
// stored rows violate (errPermanent wrapping a *sinks.RefusedError); then
// to the buffer, which keeps them for the sinks' next start. A plugin
// that sends events (sdk.CapEvents) has feed_events declared for it: the
// agent writes its events there.
func (f *feed) configure(ctx context.Context, proc process, raw json.RawMessage, events bool) error {
	ms, err := proc.Source().Configure(ctx, sdk.ConfigureRequest{Feed: f.name, Config: raw})
	if err != nil {
		return err
	}
	if events && !slices.ContainsFunc(ms, func(m sluice.Measurement) bool { return m.Name == sdk.MeasFeedEvents }) {
		ms = append(ms, sluice.Measurement{Name: sdk.MeasFeedEvents})
	}
	f.mu.Lock()
	file := f.cfg.File
	f.mu.Unlock()
	undo, err := f.env.keys.claim(f.name, file, ms)
	if err != nil {
		return err
	}
	for _, o := range f.outputs {
		if err := o.Declare(ctx, ms); err != nil {
			if sinks.IsRefused(err) {
				undo() // the key never took hold
				return errPermanent{err}
			}
			return err // transient: the claim stays for the retry
		}
	}
	if err := f.env.buffer.Declare(f.name, ms); err != nil {
		return fmt.Errorf("save measurements: %w", err)
	}
	f.names.Declare(ms)
	return nil
}

// deliver normalizes a batch and hands it to every output of the feed:
// its points, and a feed_events point for each event it reports. The
// events are counted, and stale and live ones tracked; from a legacy
// plugin (built before events) its own feed_events points are counted.
func (f *feed) deliver(ctx context.Context, b *sdk.Batch, legacy bool, invalid int, invalidErr error) error {
	rejected := make(map[pipeline.Reason]uint64)
	if invalid > 0 {
		rejected[pipeline.ReasonUndecodable] += uint64(invalid)
		if f.warned.Allow("undecodable") {
			f.log.Warn("points from the plugin could not be decoded", "count", invalid, "sample", invalidErr)
		}
	}
	raw := b.Points
	for i := range b.Events {
		raw = append(raw, sdk.EventPoint(f.name, b.Events[i]))
	}
	points, changed := f.env.norm.Normalize(raw, f.names, func(r pipeline.Rejection) {
		rejected[r.Reason]++
		if f.warned.Allow(string(r.Reason)) {
			f.log.Warn("point rejected", "reason", r.Reason, "sample", r.Detail)
		}
	})
	if b.Dropped > 0 && f.warned.Allow("plugin_dropped") {
		f.log.Warn("plugin dropped points: its queue was full", "count", b.Dropped)
	}
	if len(b.Discarded) > 0 && f.warned.Allow("plugin_discarded") {
		// Counted in status and metrics; the plugin logs each kind itself.
		attrs := make([]any, 0, 2*len(b.Discarded))
		for _, d := range b.Discarded {
			attrs = append(attrs, d.Reason, d.Count)
		}
		f.log.Debug("plugin discarded messages", attrs...)
	}
	entry := &pipeline.Entry{Feed: f.name, Sinks: f.cfg.Sinks, Position: b.Position, Points: points}
	if !changed && b.RawPoints != nil {
		// Every point is as the plugin encoded it: store its bytes
		// rather than encoding the points again (the events' points,
		// after them, are encoded).
		entry.Raw, entry.RawN = b.RawPoints, len(b.Points)
	}
	// A batch counts as received once it is in the disk buffer.
	if err := f.env.buffer.Append(ctx, entry); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	var ev feedCounts
	if legacy {
		ev = countFeedEvents(points)
	} else {
		ev = countEvents(b.Events)
	}
	now := time.Now()
	f.update(func(st *FeedStatus) {
		if b.Position != nil {
			f.from = nil // the buffer has the feed's newest position now
		}
		st.Batches++
		st.Points += uint64(len(points))
		st.PluginDropped += b.Dropped
		st.Reconnects += ev.reconnects
		st.Gaps += ev.gaps
		st.BackfilledPoints += ev.backfilled
		st.LastBatch = now
		for r, n := range rejected {
			st.Rejected[r] += n
		}
		for k, n := range ev.byKind {
			if st.Events == nil {
				st.Events = make(map[string]uint64)
			}
			addCount(st.Events, k, n, maxEventKinds)
		}
		for _, d := range b.Discarded {
			if st.PluginDiscarded == nil {
				st.PluginDiscarded = make(map[string]uint64)
			}
			addCount(st.PluginDiscarded, d.Reason, d.Count, maxDiscardReasons)
		}
		f.track(b.Events, now)
	})
	f.env.tap.publish(f.name, points)
	return nil
}
