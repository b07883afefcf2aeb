package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/sdnotify"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// reloadDebounce is how long the feeds_dir watcher waits after the last
// change before reloading, so that an editor's or a deploy tool's burst
// of writes and renames is one reload.
const reloadDebounce = 500 * time.Millisecond

// ErrStopping is returned by Reload once the agent is shutting down (or
// before it has started).
var ErrStopping = errors.New("the agent is not running")

// reloadState is what status shows about reloads.
type reloadState struct {
	at            time.Time
	configError   string
	restartNeeded []string
}

// ReloadResult says what a reload applied.
type ReloadResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Restarted []string `json:"restarted"`
	// Reconfigured feeds took their new plugin config in place, without
	// a restart; Rejected ones had it refused by their plugin and kept
	// running the old one.
	Reconfigured []string `json:"reconfigured,omitempty"`
	Rejected     []string `json:"rejected,omitempty"`
	// RestartNeeded lists config keys that changed but only apply on a
	// restart of the agent.
	RestartNeeded []string `json:"restart_needed,omitempty"`
}

// Reload reads the configuration again (the main file, feeds_dir and the
// environment, as config.Load does) and applies the feeds' difference:
// new feeds start, removed feeds stop (what they buffered still drains to
// the sinks), a feed whose plugin config alone changed is reconfigured in
// place when its plugin can (sdk.CapReconfigure), and other changed feeds
// restart, resuming from their last
// buffered position. A feed is changed when its plugin, plugin pin,
// config, sinks or queue settings are; a feed that failed permanently is
// restarted too, so a reload retries it. Other feeds and every sink are
// left alone. Changes to anything but feeds and plugin pins (sinks,
// pipeline, http, log, limits, buffer, restart, data_dir, plugin_dir,
// feeds_dir, shutdown_timeout) are not applied: they are logged and
// listed in status as needing a restart.
//
// An invalid config, or one whose feeds use a sink the agent is not
// running, is rejected whole: nothing changes, and the errors are
// returned and shown in status until a reload succeeds.
func (a *Agent) Reload(ctx context.Context) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.stopping || !a.isReady() {
		return ReloadResult{}, ErrStopping
	}
	a.notify(sdnotify.Reloading)
	defer func() { a.notify(sdnotify.Ready, a.statusLine()) }()

	next, err := a.opts.Load()
	if err == nil {
		a.secrets.Add(next.SecretValues()...)
		err = ctx.Err()
	}
	a.mu.Lock()
	cur := a.cfg
	failed := make(map[string]bool)
	for name, f := range a.feeds {
		s := f.status().State
		failed[name] = s == FeedFailed || s == FeedFailedConfig
	}
	running := make(map[string]bool, len(a.outputs))
	for name := range a.outputs {
		running[name] = true
	}
	a.mu.Unlock()
	var plan reloadPlan
	if err == nil {
		plan = planReload(cur, next, failed, running)
		err = errors.Join(plan.errs...)
	}
	if err != nil {
		lines := errorLines(err)
		a.mu.Lock()
		a.reload.at, a.reload.configError = time.Now(), strings.Join(lines, "\n")
		a.mu.Unlock()
		a.log.Error("config reload rejected; the running config stays", "problems", len(lines))
		for _, l := range lines {
			a.log.Error("config problem", "problem", l)
		}
		return ReloadResult{}, err
	}

	plugins, derr := host.Discover(next.PluginDir)
	if derr != nil {
		a.log.Warn("reload: cannot list plugins; keeping the ones found before", "error", derr)
	}

	// Offer plugin-config changes to the running plugins; those that
	// cannot take them in place restart like any changed feed.
	var reconfigured, kept []string
	for _, name := range plan.reconfigure {
		a.mu.Lock()
		rf := a.feeds[name]
		a.mu.Unlock()
		err := rf.reconfigure(ctx, next.Feeds[name].Config)
		var ces sdk.ConfigErrors
		switch {
		case err == nil:
			reconfigured = append(reconfigured, name)
		case errors.As(err, &ces):
			// The plugin refused the new config and keeps running the
			// old one; the next reload offers it again.
			kept = append(kept, name)
			next.Feeds[name] = cur.Feeds[name]
			a.log.Error("feed config change rejected by its plugin; the feed keeps its running config", "feed", name, "error", err)
		default:
			if !errors.Is(err, sdk.ErrRestartNeeded) {
				a.log.Warn("reconfiguring the running plugin failed; restarting the feed", "feed", name, "error", err)
			}
			plan.restart = append(plan.restart, name)
		}
	}
	slices.Sort(plan.restart)

	// Stop what goes away or changes, all at once.
	a.mu.Lock()
	var stopping []*runningFeed
	carry := make(map[string]FeedStatus)
	for _, name := range slices.Concat(plan.remove, plan.restart) {
		stopping = append(stopping, a.feeds[name])
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, rf := range stopping {
		wg.Go(rf.stop)
	}
	wg.Wait()

	applied := *cur
	applied.Feeds, applied.Plugins = next.Feeds, next.Plugins
	a.mu.Lock()
	if derr == nil {
		a.plugins = plugins
	}
	for _, name := range plan.remove {
		delete(a.feeds, name)
		delete(a.names, name)
	}
	for _, name := range plan.restart {
		carry[name] = a.feeds[name].status()
	}
	a.cfg = &applied
	a.reload = reloadState{at: time.Now(), restartNeeded: plan.restartNeeded}
	a.mu.Unlock()
	// Removed feeds let go of their measurements before new ones declare.
	a.keys.retain(applied.Feeds)

	started := make(map[string]*runningFeed)
	for _, name := range plan.add {
		started[name] = a.startFeed(&applied, name, nil)
	}
	for _, name := range plan.restart {
		c := carry[name]
		started[name] = a.startFeed(&applied, name, &c)
	}
	a.mu.Lock()
	for name, rf := range started {
		a.feeds[name] = rf
	}
	a.mu.Unlock()

	res := ReloadResult{Added: plan.add, Removed: plan.remove, Restarted: plan.restart,
		Reconfigured: reconfigured, Rejected: kept, RestartNeeded: plan.restartNeeded}
	a.log.Info("config reloaded", "added", res.Added, "removed", res.Removed, "restarted", res.Restarted, "reconfigured", res.Reconfigured)
	if len(res.RestartNeeded) > 0 {
		a.log.Warn("config changes not applied until the agent restarts", "keys", res.RestartNeeded)
	}
	return res, nil
}

// reloadPlan is what a reload does to the feeds, by name, sorted.
type reloadPlan struct {
	add, remove, restart []string
	// reconfigure: only the plugin config changed; offered to the running
	// plugin first, restarted if it cannot take it in place.
	reconfigure   []string
	restartNeeded []string
	errs          []error
}

// planReload compares the running config with the new one. failed names
// the running feeds that failed permanently; sinks names the running sinks.
func planReload(cur, next *config.Config, failed, sinks map[string]bool) reloadPlan {
	p := reloadPlan{add: []string{}, remove: []string{}, restart: []string{}, reconfigure: []string{}}
	for _, name := range sortedKeys(next.Feeds) {
		fc := next.Feeds[name]
		for i, s := range fc.Sinks {
			if !sinks[s] {
				p.errs = append(p.errs, &config.Error{File: fc.File, Key: fmt.Sprintf("feeds.%s.sinks[%d]", name, i),
					Msg: fmt.Sprintf("sink %q is not running; a new sink needs a restart of the agent", s)})
			}
		}
		old, ok := cur.Feeds[name]
		switch {
		case !ok:
			p.add = append(p.add, name)
		case failed[name] || feedChanged(old, fc, cur.Plugins[old.Plugin].SHA256, next.Plugins[fc.Plugin].SHA256):
			p.restart = append(p.restart, name)
		case !reflect.DeepEqual(old.Config, fc.Config):
			p.reconfigure = append(p.reconfigure, name)
		}
	}
	for _, name := range sortedKeys(cur.Feeds) {
		if _, ok := next.Feeds[name]; !ok {
			p.remove = append(p.remove, name)
		}
	}
	p.restartNeeded = restartNeeded(cur, next)
	return p
}

// feedChanged reports whether a feed must restart to take its new config:
// anything but the plugin's own config changed. The file a feed is defined
// in does not matter.
func feedChanged(old, next config.Feed, oldPin, nextPin string) bool {
	return old.Plugin != next.Plugin || oldPin != nextPin ||
		!slices.Equal(sortedCopy(old.Sinks), sortedCopy(next.Sinks)) ||
		old.QueueSize != next.QueueSize || old.BatchSize != next.BatchSize || old.FlushInterval != next.FlushInterval
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// restartNeeded lists the keys, other than feeds and plugins, whose new
// values a reload does not apply.
func restartNeeded(cur, next *config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("data_dir", cur.DataDir, next.DataDir)
	diff("plugin_dir", cur.PluginDir, next.PluginDir)
	diff("feeds_dir", cur.FeedsDir, next.FeedsDir)
	diff("shutdown_timeout", cur.ShutdownTimeout, next.ShutdownTimeout)
	diff("http", cur.HTTP, next.HTTP)
	diff("log", cur.Log, next.Log)
	diff("limits", cur.Limits, next.Limits)
	diff("buffer", cur.Buffer, next.Buffer)
	diff("restart", cur.Restart, next.Restart)
	for _, name := range sortedKeys(cur.Sinks) {
		if _, ok := next.Sinks[name]; !ok {
			keys = append(keys, "sinks."+name+" (removed)")
		}
	}
	for _, name := range sortedKeys(next.Sinks) {
		old, ok := cur.Sinks[name]
		if !ok {
			keys = append(keys, "sinks."+name+" (new)")
			continue
		}
		diff("sinks."+name, old, next.Sinks[name])
	}
	return keys
}

// errorLines flattens joined errors into one message each.
func errorLines(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// watchFeedsDir reloads after files in dir change, debounced, until ctx
// ends. Only *.yaml and *.yml files count, and the ..data link a
// Kubernetes ConfigMap mount swaps.
func (a *Agent) watchFeedsDir(ctx context.Context, dir string) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Warn("cannot watch feeds_dir; reload with SIGHUP or `sluice reload`", "dir", dir, "error", err)
		return
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			a.log.Info("feeds_dir does not exist, so it is not watched; after creating it, reload with SIGHUP or `sluice reload`", "dir", dir)
		} else {
			a.log.Warn("cannot watch feeds_dir; reload with SIGHUP or `sluice reload`", "dir", dir, "error", err)
		}
		return
	}
	a.log.Debug("watching feeds_dir", "dir", dir)
	var debounce <-chan time.Time
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if feedsDirEvent(ev) {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			a.log.Warn("feeds_dir watch", "error", err)
		case <-debounce:
			debounce = nil
			a.log.Info("feeds_dir changed; reloading the config", "dir", dir)
			if _, err := a.Reload(ctx); errors.Is(err, ErrStopping) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func feedsDirEvent(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	if name == "..data" {
		return true
	}
	ext := filepath.Ext(name)
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}
