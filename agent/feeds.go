package agent

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// feedSet runs the configured feeds, a supervisor (feed) each, and
// changes them by reload plans.
//
// In cluster mode (newClusterFeedSet) it runs only the configured feeds
// this agent holds a lease for: Hold, called as leases come and go,
// names them; a reload plan then acts only on those.
//
// Lifecycle: newFeedSet has no side effects; everything a feed needs
// comes in its env. Start loads the saved uniqueness-key holders and
// starts every feed of the config (in cluster mode, those held). Apply
// then changes the running feeds by a plan computed from config() (see
// planReload), and Hold changes which feeds may run. Stop stops every
// feed and waits for their supervisors; it is called once, after Start.
// Start, Apply, Hold and Stop are called one at a time (the agent's
// reloadMu orders Apply and Hold against Stop); config, failed, status
// and has may be called at any time, from any goroutine.
type feedSet struct {
	env *feedEnv
	wg  sync.WaitGroup // every supervisor started

	mu      sync.Mutex
	cfg     *config.Config // as last applied: the feeds and pins of the last good reload
	plugins map[string]host.Binary
	feeds   map[string]*runningFeed
	// names holds each configured feed's name budget, kept across the
	// feed's restarts and reloads, dropped with the feed.
	names map[string]*pipeline.Names
	// only, if not nil, names the feeds that may run (cluster mode: the
	// feeds this agent holds a lease for); nil lets every feed run.
	only map[string]bool
}

// runningFeed is a feed's supervisor goroutine and how to stop it.
type runningFeed struct {
	*feed
	cancel context.CancelFunc
	done   chan struct{}
}

// stop stops the feed's plugin and waits for its supervisor to end.
func (rf *runningFeed) stop() {
	rf.cancel()
	<-rf.done
}

// newFeedSet returns the feed set for cfg's feeds, whose plugins are
// those found in cfg.PluginDir.
func newFeedSet(cfg *config.Config, plugins map[string]host.Binary, env *feedEnv) *feedSet {
	return &feedSet{
		env: env, cfg: cfg, plugins: plugins,
		feeds: make(map[string]*runningFeed, len(cfg.Feeds)),
		names: make(map[string]*pipeline.Names),
	}
}

// newClusterFeedSet is newFeedSet for cluster mode: no feed runs until
// Hold names it.
func newClusterFeedSet(cfg *config.Config, plugins map[string]host.Binary, env *feedEnv) *feedSet {
	s := newFeedSet(cfg, plugins, env)
	s.only = map[string]bool{}
	return s
}

// Start starts every feed of the config that may run.
func (s *feedSet) Start() {
	cfg := s.config()
	s.env.keys.load(cfg.Feeds)
	for _, name := range sortedKeys(cfg.Feeds) {
		if !s.allowed(name) {
			continue
		}
		rf := s.start(cfg, name, nil, nil)
		s.mu.Lock()
		s.feeds[name] = rf
		s.mu.Unlock()
	}
}

// allowed reports whether feed name may run here.
func (s *feedSet) allowed(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.only == nil || s.only[name]
}

// Hold makes the set run exactly the configured feeds that want names
// (in cluster mode, those this agent holds a lease for). It stops the
// running feeds want does not name, all at once, then starts the ones
// not running, each resuming from its position in want: the position
// its last holder left in the cluster's KV, or, if nil, the disk
// buffer's. It returns the feeds it started and stopped.
func (s *feedSet) Hold(want map[string]sluice.Position) (started, stopped []string) {
	cfg := s.config()
	s.mu.Lock()
	s.only = make(map[string]bool, len(want))
	for name := range want {
		s.only[name] = true
	}
	var stopping []*runningFeed
	for _, name := range sortedKeys(s.feeds) {
		if !s.only[name] {
			stopping = append(stopping, s.feeds[name])
			stopped = append(stopped, name)
			delete(s.feeds, name)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, rf := range stopping {
		wg.Go(rf.stop)
	}
	wg.Wait()
	for _, name := range sortedKeys(want) {
		s.mu.Lock()
		_, running := s.feeds[name]
		s.mu.Unlock()
		if _, ok := cfg.Feeds[name]; !ok || running {
			continue
		}
		rf := s.start(cfg, name, nil, want[name])
		s.mu.Lock()
		s.feeds[name] = rf
		s.mu.Unlock()
		started = append(started, name)
	}
	return started, stopped
}

// Apply changes the running feeds to next as plan says (planReload of
// config() and next; its errors already handled). It offers each of
// plan.reconfigure to the running plugin first: one that cannot take the
// change in place restarts, and one that rejects it keeps running its
// old config, which next then keeps too. It stops the removed and
// restarted feeds, all at once, lets the removed ones' measurements go,
// then starts the added and restarted ones, the restarted continuing
// their counters. plugins, if not nil, replaces the plugins found before.
// Of the feeds that may not run here (cluster mode), an added one is not
// started, and a changed one is neither restarted nor reconfigured: it
// starts with its new config once Hold names it.
func (s *feedSet) Apply(ctx context.Context, next *config.Config, plan reloadPlan, plugins map[string]host.Binary) ReloadResult {
	cur := s.config()
	plan = s.local(plan)
	reconfigured, kept, fallback := s.reconfigure(ctx, cur, next, plan.reconfigure)
	restart := append(slices.Clone(plan.restart), fallback...)
	slices.Sort(restart)

	// Stop what goes away or changes, all at once.
	s.mu.Lock()
	var stopping []*runningFeed
	for _, name := range slices.Concat(plan.remove, restart) {
		if rf := s.feeds[name]; rf != nil { // a removed feed may not run here
			stopping = append(stopping, rf)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, rf := range stopping {
		wg.Go(rf.stop)
	}
	wg.Wait()

	applied := *cur
	applied.Feeds, applied.Plugins = next.Feeds, next.Plugins
	carry := make(map[string]FeedStatus, len(restart))
	s.mu.Lock()
	if plugins != nil {
		s.plugins = plugins
	}
	for _, name := range plan.remove {
		delete(s.feeds, name)
		delete(s.names, name)
	}
	for _, name := range restart {
		carry[name] = s.feeds[name].status()
	}
	s.cfg = &applied
	s.mu.Unlock()
	// Removed feeds let go of their measurements before new ones declare.
	s.env.keys.retain(applied.Feeds)

	started := make(map[string]*runningFeed, len(plan.add)+len(restart))
	for _, name := range plan.add {
		if s.allowed(name) {
			started[name] = s.start(&applied, name, nil, nil)
		}
	}
	for _, name := range restart {
		c := carry[name]
		started[name] = s.start(&applied, name, &c, nil)
	}
	s.mu.Lock()
	for name, rf := range started {
		s.feeds[name] = rf
	}
	s.mu.Unlock()
	return ReloadResult{Added: plan.add, Removed: plan.remove, Restarted: restart,
		Reconfigured: reconfigured, Rejected: kept, RestartNeeded: plan.restartNeeded}
}

// local is plan without the restarts and reconfigurations of feeds that
// do not run here; in cluster mode a feed held elsewhere does not run.
func (s *feedSet) local(plan reloadPlan) reloadPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.only == nil {
		return plan
	}
	running := func(names []string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(name string) bool { return s.feeds[name] == nil })
	}
	plan.restart, plan.reconfigure = running(plan.restart), running(plan.reconfigure)
	return plan
}

// reconfigure offers each named feed's new plugin config (in next) to
// its running plugin: those that took it are reconfigured; those whose
// plugin rejected it are kept running their config from cur, which next
// then holds again; the others need a restart.
func (s *feedSet) reconfigure(ctx context.Context, cur, next *config.Config, names []string) (reconfigured, kept, restart []string) {
	for _, name := range names {
		s.mu.Lock()
		rf := s.feeds[name]
		s.mu.Unlock()
		err := rf.reconfigure(ctx, next.Feeds[name].Config)
		var ces sdk.ConfigErrors
		switch {
		case err == nil:
			reconfigured = append(reconfigured, name)
		case errors.As(err, &ces):
			// The next reload offers it again.
			kept = append(kept, name)
			next.Feeds[name] = cur.Feeds[name]
			s.env.log.Error("feed config change rejected by its plugin; the feed keeps its running config", "feed", name, "error", err)
		default:
			if !errors.Is(err, sdk.ErrRestartNeeded) {
				s.env.log.Warn("reconfiguring the running plugin failed; restarting the feed", "feed", name, "error", err)
			}
			restart = append(restart, name)
		}
	}
	return reconfigured, kept, restart
}

// start starts the supervisor of cfg's feed name. carry, if set, is the
// status of the feed it replaces, whose counters continue; from, if set,
// the position the feed resumes from until it has buffered one of its
// own (else the disk buffer's).
func (s *feedSet) start(cfg *config.Config, name string, carry *FeedStatus, from sluice.Position) *runningFeed {
	fc := cfg.Feeds[name]
	s.mu.Lock()
	names := s.names[name]
	if names == nil {
		names = pipeline.NewNames(s.env.limits) // limits change only with a restart
		s.names[name] = names
	}
	s.mu.Unlock()
	f := newFeed(s.env, name, fc, cfg.Plugins[fc.Plugin].SHA256, s.pluginSet, names, carry)
	f.from = from
	ctx, cancel := context.WithCancel(context.Background())
	rf := &runningFeed{feed: f, cancel: cancel, done: make(chan struct{})}
	s.wg.Go(func() {
		defer close(rf.done)
		defer cancel()
		f.run(ctx)
	})
	return rf
}

// Stop stops every feed, all at once, and waits for their supervisors.
// Their status stays, as stopped.
func (s *feedSet) Stop() {
	s.mu.Lock()
	for _, rf := range s.feeds {
		rf.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// config is the config as last applied: the feeds and plugin pins of the
// last good reload, the rest as the agent started with.
func (s *feedSet) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *feedSet) pluginSet() map[string]host.Binary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plugins
}

// failed names the feeds that failed permanently, which a reload
// restarts.
func (s *feedSet) failed() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := make(map[string]bool, len(s.feeds))
	for name, rf := range s.feeds {
		st := rf.status().State
		failed[name] = st == FeedFailed || st == FeedFailedConfig
	}
	return failed
}

// status is every feed's status, by name.
func (s *feedSet) status() []FeedStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FeedStatus, 0, len(s.feeds))
	for _, name := range sortedKeys(s.feeds) {
		out = append(out, s.feeds[name].status())
	}
	return out
}

// has reports whether feed name is configured.
func (s *feedSet) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.feeds[name]
	return ok
}
