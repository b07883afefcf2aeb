package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/agent/sdnotify"
	"github.com/sluicehq/sluice/config"
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
// pipeline, http, log, limits, buffer, restart, cluster, data_dir,
// plugin_dir, feeds_dir, shutdown_timeout) are not applied: they are
// logged and listed in status as needing a restart. In cluster mode
// only the feeds held here start or change; a feed's replicas take
// effect at the cluster's next look.
//
// An invalid config, or one whose feeds use a sink the agent is not
// running, is rejected whole: nothing changes, and the errors are
// returned and shown in status until a reload succeeds.
func (a *Agent) Reload(ctx context.Context) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	r := a.run.Load()
	if r == nil || a.stopping.Load() {
		return ReloadResult{}, ErrStopping
	}
	a.notify(sdnotify.Reloading)
	defer func() { a.notify(sdnotify.Ready, a.statusLine()) }()

	// Plan against what runs, then apply.
	next, err := a.opts.Load()
	if err == nil {
		a.secrets.Add(next.SecretValues()...)
		err = ctx.Err()
	}
	var plan reloadPlan
	if err == nil {
		plan = planReload(r.feeds.config(), next, r.feeds.failed(), r.outputs.running())
		err = errors.Join(plan.errs...)
	}
	if err != nil {
		lines := errorLines(err)
		rs := &reloadState{at: time.Now(), configError: strings.Join(lines, "\n")}
		if prev := a.lastReload.Load(); prev != nil {
			rs.restartNeeded = prev.restartNeeded // the running config's, still true
		}
		a.lastReload.Store(rs)
		a.log.Error("config reload rejected; the running config stays", "problems", len(lines))
		for _, l := range lines {
			a.log.Error("config problem", "problem", l)
		}
		return ReloadResult{}, err
	}
	plugins, err := host.Discover(next.PluginDir)
	if err != nil {
		a.log.Warn("reload: cannot list plugins; keeping the ones found before", "error", err)
		plugins = nil
	}
	res := r.feeds.Apply(ctx, next, plan, plugins)
	a.lastReload.Store(&reloadState{at: time.Now(), restartNeeded: plan.restartNeeded})

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
		old.QueueSize != next.QueueSize || old.BatchSize != next.BatchSize || old.FlushInterval != next.FlushInterval ||
		old.GoMaxProcs != next.GoMaxProcs
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
	diff("cluster", cur.Cluster, next.Cluster)
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
// ends or reload says the agent is stopping. Only *.yaml and *.yml files
// count, and the ..data link a Kubernetes ConfigMap mount swaps.
func watchFeedsDir(ctx context.Context, dir string, reload func(context.Context) (ReloadResult, error), log *slog.Logger) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch feeds_dir; reload with SIGHUP or `sluice reload`", "dir", dir, "error", err)
		return
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			log.Info("feeds_dir does not exist, so it is not watched; after creating it, reload with SIGHUP or `sluice reload`", "dir", dir)
		} else {
			log.Warn("cannot watch feeds_dir; reload with SIGHUP or `sluice reload`", "dir", dir, "error", err)
		}
		return
	}
	log.Debug("watching feeds_dir", "dir", dir)
	debounceReloads(ctx, dir, w.Events, w.Errors, reload, log)
}

// debounceReloads calls reload reloadDebounce after the last of a burst
// of feeds_dir events, until ctx ends, a channel closes, or reload
// returns ErrStopping.
func debounceReloads(ctx context.Context, dir string, events <-chan fsnotify.Event, errs <-chan error,
	reload func(context.Context) (ReloadResult, error), log *slog.Logger) {
	var debounce <-chan time.Time
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if feedsDirEvent(ev) {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-errs:
			if !ok {
				return
			}
			log.Warn("feeds_dir watch", "error", err)
		case <-debounce:
			debounce = nil
			log.Info("feeds_dir changed; reloading the config", "dir", dir)
			if _, err := reload(ctx); errors.Is(err, ErrStopping) {
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
