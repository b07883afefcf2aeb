package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/sluicehq/sluice/internal/capread"
	natssink "github.com/sluicehq/sluice/sinks/nats"
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
			FlushInterval:  0,
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

func defaultSQLite() SQLite {
	return SQLite{Path: "sluice.db", BusyTimeout: 5 * time.Second}
}

func defaultInfluxDB() InfluxDB {
	return InfluxDB{Precision: "ns", Gzip: true, Timeout: 10 * time.Second}
}

func defaultFeed() Feed {
	return Feed{QueueSize: 10_000, BatchSize: 500, FlushInterval: 100 * time.Millisecond}
}

// decode turns the walker's normalized tree into a Config over the
// defaults, resolves paths, reads token files and runs the checks that
// span keys. tree is the raw merged tree, for the names of sinks that did
// not check out (a feed naming one must not also get "unknown sink").
func decode(norm, tree map[string]any, feedFiles map[string]string, mainFile string, org *origins, errs *errorList) *Config {
	cfg := Default()
	top := make(map[string]any, len(norm))
	for k, v := range norm {
		if k != "plugins" && k != "sinks" && k != "feeds" {
			top[k] = v
		}
	}
	c := &checker{errs: errs, origins: org}
	k := koanf.New(".")
	err := k.Load(confmap.Provider(top, ""), nil)
	if err == nil {
		err = k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{DecoderConfig: decoderConfig()})
	}
	if err != nil {
		c.internal(nil, err)
	}

	baseDir := filepath.Dir(mainFile)
	cfg.DataDir = resolvePath(baseDir, cfg.DataDir)
	cfg.PluginDir = resolvePath(baseDir, cfg.PluginDir)
	cfg.FeedsDir = resolvePath(baseDir, cfg.FeedsDir)
	c.http(&cfg.HTTP, baseDir)

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

// checker runs the checks that span keys, after decoding.
type checker struct {
	errs    *errorList
	origins *origins
}

func (c *checker) errorf(path []string, format string, args ...any) {
	c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: fmt.Sprintf(format, args...)})
}

// sink decodes one sink. raw is its entry in the merged tree.
func (c *checker) sink(name string, norm, raw map[string]any, cfg *Config, baseDir string) Sink {
	path := []string{"sinks", name}
	s := Sink{Pipeline: cfg.Pipeline}
	s.Type, _ = norm["type"].(string)
	overrides := asMap(norm["pipeline"])
	c.decode(path, overrides, &s.Pipeline)
	// Only a sink's own keys can break the orders; the top-level pipeline
	// is checked on its own.
	c.order(path, overrides, s.Pipeline)

	switch s.Type {
	case "sqlite":
		sq := defaultSQLite()
		c.decode(path, norm["sqlite"], &sq)
		sq.Path = resolvePath(cfg.DataDir, sq.Path)
		s.SQLite = &sq
	case "influxdb":
		ix := defaultInfluxDB()
		c.decode(path, norm["influxdb"], &ix)
		// gzip pays for itself over a network; over loopback it only
		// costs CPU at both ends (BENCHMARKS.md: at 100k points/s, 8% of
		// influxd's CPU and 6% of the agent's).
		if _, set := asMap(norm["influxdb"])["gzip"]; !set {
			ix.Gzip = !loopbackURL(ix.URL)
		}
		ix.TokenFile = resolvePath(baseDir, ix.TokenFile)
		ix.TLS.CAFile = resolvePath(baseDir, ix.TLS.CAFile)
		ix.TLS.CertFile = resolvePath(baseDir, ix.TLS.CertFile)
		ix.TLS.KeyFile = resolvePath(baseDir, ix.TLS.KeyFile)
		// With both set the walker has complained; reading would only
		// add noise.
		if _, both := raw["token"]; ix.TokenFile != "" && !both {
			ix.Token = c.readToken(child(path, "token_file"), ix.TokenFile)
		}
		tls := child(path, "tls")
		if ix.TLS.CertFile != "" && ix.TLS.KeyFile == "" {
			c.errorf(child(tls, "key_file"), "missing: cert_file is set")
		}
		if ix.TLS.KeyFile != "" && ix.TLS.CertFile == "" {
			c.errorf(child(tls, "cert_file"), "missing: key_file is set")
		}
		s.InfluxDB = &ix
	case "nats":
		nc := natssink.DefaultConfig()
		c.decode(path, norm["nats"], &nc)
		nc.CredentialsFile = resolvePath(baseDir, nc.CredentialsFile)
		nc.NKeyFile = resolvePath(baseDir, nc.NKeyFile)
		nc.TLS.CAFile = resolvePath(baseDir, nc.TLS.CAFile)
		nc.TLS.CertFile = resolvePath(baseDir, nc.TLS.CertFile)
		nc.TLS.KeyFile = resolvePath(baseDir, nc.TLS.KeyFile)
		for _, e := range nc.Validate() {
			if p := fieldPath(path, e.Key); !c.errs.has(keyString(p)) {
				c.errorf(p, "%s", e.Msg)
			}
		}
		s.NATS = &nc
	}
	return s
}

// fieldPath is the path of a sink's key given as "tls.ca_file" or
// "stream_subjects[0]".
func fieldPath(base []string, key string) []string {
	p := slices.Clone(base)
	for _, part := range strings.Split(key, ".") {
		name, index, ok := strings.Cut(part, "[")
		p = append(p, name)
		if ok {
			p = append(p, "["+index)
		}
	}
	return p
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

// MaxTokenFileBytes caps a token file: a token is a line, and a path
// such as /dev/zero must fail, not exhaust memory.
const MaxTokenFileBytes = capread.Secret

// readToken reads a secret from a file. Nothing read may reach a message.
func (c *checker) readToken(path []string, file string) string {
	b, err := capread.File(file, MaxTokenFileBytes, "a token file")
	if err != nil {
		c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: "cannot read token file: " + err.Error(), Err: err})
		return ""
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		c.errorf(path, "token file %s is empty", file)
	}
	return token
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

func decoderConfig() *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		TagName:     "koanf",
		ErrorUnused: true,
		DecodeHook:  mapstructure.StringToTimeDurationHookFunc(),
	}
}

// decode decodes a normalized value over out. The walker has checked every
// key and type, so a failure here is a bug in this package.
func (c *checker) decode(path []string, in, out any) {
	if in == nil {
		return
	}
	dc := decoderConfig()
	dc.Result = out
	d, err := mapstructure.NewDecoder(dc)
	if err == nil {
		err = d.Decode(in)
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

// loopbackURL reports whether u names this host: localhost or a loopback
// address.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := pu.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
