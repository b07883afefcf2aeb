package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/capread"
)

// Defaults for keys a file leaves out.
const (
	DefaultDataDir   = "/var/lib/sluice"
	DefaultPluginDir = "/usr/lib/sluice/plugins"
	DefaultFeedsDir  = "/etc/sluice/feeds.d"
	// DefaultSocket is in the runtime directory systemd makes for the
	// unit (RuntimeDirectory=sluice).
	DefaultSocket = "/run/sluice/sluice.sock"
)

// DefaultBufferMaxBytes bounds the disk buffer by default: 2 GiB, room
// for about an hour and a half of 10 000 points/s waiting for a sink that
// is down, and little enough for a small virtual machine's disk.
const DefaultBufferMaxBytes = 2 << 30

// minSinkBufferBytes is the least buffer a sink may be given.
const minSinkBufferBytes = 1 << 20

// DefaultMaxPluginMessageBytes is limits.max_plugin_message_bytes: 16
// MiB, some 100 times a default batch of 500 trades.
const DefaultMaxPluginMessageBytes = 16 << 20

// MinPluginMessageBytes is the least limits.max_plugin_message_bytes may
// be: below it a plugin's description or config reply may not fit.
const MinPluginMessageBytes = 64 << 10

// Default returns the configuration an empty main file gives: every
// default set, no plugins pinned, no sinks, no feeds.
func Default() *Config {
	return &Config{
		DataDir:         DefaultDataDir,
		PluginDir:       DefaultPluginDir,
		FeedsDir:        DefaultFeedsDir,
		ShutdownTimeout: 30 * time.Second,
		HTTP:            HTTP{Listen: "127.0.0.1:9273", Socket: DefaultSocket, MaxTapClients: 8},
		Log:             Log{Level: "info", Format: "text"},
		Pipeline: Pipeline{
			BatchSize:      5000,
			FlushInterval:  100 * time.Millisecond,
			MaxBufferBytes: 0, // a share of Buffer.MaxBytes
			WhenFull:       Block,
			RetryInitial:   500 * time.Millisecond,
			RetryMax:       30 * time.Second,
		},
		Limits: Limits{
			MaxTags:        64,
			MaxFields:      256,
			MaxKeyLength:   256,
			MaxValueLength: 65536,
			MaxFuture:      24 * time.Hour,
			// Per feed. Well inside SQLite's 2000 columns a table,
			// which several feeds writing one measurement share.
			MaxMeasurements: 1000,
			MaxColumns:      500,

			MaxPluginMessageBytes: DefaultMaxPluginMessageBytes,
		},
		Buffer: Buffer{
			MaxBytes:      DefaultBufferMaxBytes,
			Fsync:         FsyncInterval,
			FsyncInterval: 100 * time.Millisecond,
			SegmentBytes:  16 << 20,
		},
		Restart: Restart{
			Initial:    time.Second,
			Max:        60 * time.Second,
			ResetAfter: 60 * time.Second,
		},
		Plugins: map[string]Plugin{},
		Sinks:   map[string]Sink{},
		Feeds:   map[string]Feed{},
	}
}

func defaultFeed() Feed {
	return Feed{QueueSize: 10_000, BatchSize: 500, FlushInterval: 100 * time.Millisecond, Replicas: 1, GoMaxProcs: 1}
}

// decode turns the walker's normalized tree into a Config over the
// defaults, resolves paths, reads secret files and runs the checks that
// span keys. tree is the raw merged tree, for the names of sinks that did
// not check out (a feed naming one must not also get "unknown sink").
func decode(norm, tree map[string]any, feedFiles map[string]string, mainFile string, c *checker) *Config {
	cfg := Default()
	top := make(map[string]any, len(norm))
	for k, v := range norm {
		if k != "plugins" && k != "sinks" && k != "feeds" && k != "cluster" {
			top[k] = v
		}
	}
	c.decode(nil, top, cfg)

	baseDir := filepath.Dir(mainFile)
	cfg.DataDir = resolvePath(baseDir, cfg.DataDir)
	cfg.PluginDir = resolvePath(baseDir, cfg.PluginDir)
	cfg.FeedsDir = resolvePath(baseDir, cfg.FeedsDir)
	c.http(&cfg.HTTP, baseDir)
	cfg.Cluster = c.cluster(norm["cluster"], baseDir, cfg.DataDir)

	if n := cfg.Limits.MaxPluginMessageBytes; n < MinPluginMessageBytes {
		c.errorf([]string{"limits", "max_plugin_message_bytes"}, "must be at least %d (64 KiB), got %d", MinPluginMessageBytes, n)
	}
	c.order([]string{"pipeline"}, norm["pipeline"], cfg.Pipeline)
	c.orderDurations([]string{"restart"}, norm["restart"], "initial", "max", cfg.Restart.Initial, cfg.Restart.Max)

	for name, v := range asMap(norm["plugins"]) {
		var p Plugin
		c.decode([]string{"plugins", name}, v, &p)
		p.SHA256 = strings.ToLower(p.SHA256)
		cfg.Plugins[name] = p
	}
	for name, v := range asMap(norm["sinks"]) {
		cfg.Sinks[name] = c.sink(name, asMap(v), asMap(asMap(tree["sinks"])[name]), cfg, baseDir)
	}
	c.shareBuffer(norm, cfg)
	cfg.Feeds = c.feeds(asMap(norm["feeds"]), feedFiles, mainFile)

	defined := sortedKeys(asMap(tree["sinks"]))
	for _, name := range sortedKeys(asMap(norm["feeds"])) {
		if sinks, ok := asMap(asMap(norm["feeds"])[name])["sinks"].([]string); ok {
			c.feedSinks([]string{"feeds", name, "sinks"}, sinks, defined)
		}
	}
	return cfg
}

// feeds decodes normalized feeds over the feed defaults. A feed's config
// must survive the trip to the plugin as JSON.
func (c *checker) feeds(norm map[string]any, feedFiles map[string]string, defaultFile string) map[string]Feed {
	feeds := make(map[string]Feed, len(norm))
	for name, v := range norm {
		f := defaultFeed()
		c.decode([]string{"feeds", name}, v, &f)
		if f.Config == nil {
			f.Config = map[string]any{}
		}
		f.File = defaultFile
		if file, ok := feedFiles[name]; ok {
			f.File = file
		}
		c.checkEnvRefs(name, f)
		if _, err := json.Marshal(f.Config); err != nil {
			c.errs.add(&Error{File: f.File, Key: keyString([]string{"feeds", name, "config"}), Msg: "cannot be passed to the plugin as JSON: " + strings.TrimPrefix(err.Error(), "json: "), Err: err})
		}
		feeds[name] = f
	}
	return feeds
}

// checker decodes the walker's output and runs the checks that span keys.
type checker struct {
	errs    *errorList
	origins *origins
	types   map[string]*sinkType
	failed  map[string]bool // what the walker reported: see walker.failed
}

func (c *checker) errorf(path []string, format string, args ...any) {
	c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: fmt.Sprintf(format, args...)})
}

// shareBuffer gives each sink without its own max_buffer_bytes an equal
// share of what buffer.max_bytes leaves after the sinks that set one, and
// checks that every sink's bound fits in the whole.
func (c *checker) shareBuffer(norm map[string]any, cfg *Config) {
	total := cfg.Buffer.MaxBytes
	var set int64
	var shared []string
	for _, name := range sortedKeys(cfg.Sinks) {
		if n := cfg.Sinks[name].Pipeline.MaxBufferBytes; n > 0 {
			set += n
		} else {
			shared = append(shared, name)
		}
	}
	blame := []string{"buffer", "max_bytes"}
	if _, ok := asMap(norm["buffer"])["max_bytes"]; !ok {
		if _, ok := asMap(norm["pipeline"])["max_buffer_bytes"]; ok {
			blame = []string{"pipeline", "max_buffer_bytes"}
		}
	}
	switch {
	case set > total:
		c.errorf(blame, "the sinks' max_buffer_bytes add up to %d bytes, more than buffer.max_bytes (%d): raise buffer.max_bytes or lower the sinks' bounds", set, total)
		return
	case len(shared) > 0 && (total-set)/int64(len(shared)) < minSinkBufferBytes:
		c.errorf(blame, "leaves %d bytes of buffer.max_bytes (%d) to share among %d sinks without max_buffer_bytes (%s): each needs at least %d",
			total-set, total, len(shared), strings.Join(shared, ", "), minSinkBufferBytes)
		return
	}
	for _, name := range shared {
		s := cfg.Sinks[name]
		s.Pipeline.MaxBufferBytes = (total - set) / int64(len(shared))
		cfg.Sinks[name] = s
	}
}

// MaxTokenFileBytes caps a token file, and any secret file a sink type
// names (the secretfile tag option): a token is a line, and a path such
// as /dev/zero must fail, not exhaust memory.
const MaxTokenFileBytes = capread.Secret

// readSecretFile reads a secret from a file, trimmed. what names the file
// in messages ("token file"). Nothing read may reach a message.
func (c *checker) readSecretFile(path []string, file, what string) string {
	b, err := capread.File(file, MaxTokenFileBytes, "a "+what)
	if err != nil {
		c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: "cannot read " + what + ": " + err.Error(), Err: err})
		return ""
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		c.errorf(path, "%s %s is empty", what, file)
	}
	return secret
}

// order checks that a pipeline's values are in order, blaming a key that
// set holds (the keys set in the section being checked).
func (c *checker) order(path []string, set any, p Pipeline) {
	c.orderDurations(path, set, "retry_initial", "retry_max", p.RetryInitial, p.RetryMax)
}

func (c *checker) orderDurations(path []string, set any, lowKey, highKey string, low, high time.Duration) {
	if low <= high {
		return
	}
	keys := asMap(set)
	if _, ok := keys[lowKey]; ok {
		c.errorf(child(path, lowKey), "must not exceed %s (%s), got %s", highKey, high, low)
	} else if _, ok := keys[highKey]; ok {
		c.errorf(child(path, highKey), "must be at least %s (%s), got %s", lowKey, low, high)
	}
}

func (c *checker) feedSinks(path []string, sinks, defined []string) {
	if len(sinks) == 0 {
		c.errorf(path, "must list at least one sink")
	}
	for i, name := range sinks {
		switch {
		case slices.Contains(sinks[:i], name):
			c.errorf(path, "lists sink %q more than once", name)
		case !slices.Contains(defined, name) && len(defined) == 0:
			c.errorf(path, "unknown sink %q (no sinks are defined)", name)
		case !slices.Contains(defined, name):
			c.errorf(path, "unknown sink %q (defined: %s)", name, strings.Join(defined, ", "))
		}
	}
}

// decode decodes a normalized value over out. The walker has checked every
// key and type, so a failure here is a bug in this package.
func (c *checker) decode(path []string, in, out any) {
	if in == nil {
		return
	}
	m, ok := in.(map[string]any)
	err := fmt.Errorf("cannot decode a %T", in)
	if ok {
		err = decodeInto(out, m)
	}
	if err != nil {
		c.internal(path, err)
	}
}

func (c *checker) internal(path []string, err error) {
	c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: "internal error: " + err.Error(), Err: err})
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
